// Command relay joins its standard input and output to a TCP connection:
// QEMU runs it for each connection the guest opens to a guestfwd address
// (-netdev user,restrict=on,guestfwd=tcp:ADDR:PORT-cmd:relay HOST:PORT),
// so that the guest reaches a test server on the host's loopback and
// nothing else.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: relay HOST:PORT")
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		os.Exit(2)
	}
	// Loopback only: the tests' servers are there, and nothing else may
	// be reached from a guest.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "relay: %s is not a loopback address\n", host)
		os.Exit(2)
	}
	c, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
	if err != nil {
		// The guest sees its connection closed, as if refused.
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		os.Exit(1)
	}
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(c, os.Stdin)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, err := io.Copy(os.Stdout, c)
		if err != nil && !strings.Contains(err.Error(), "closed") {
			fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		}
		os.Stdout.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}
