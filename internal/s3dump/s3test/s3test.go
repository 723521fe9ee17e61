// Package s3test runs a real S3-compatible server for tests: Versity's S3
// gateway (versitygw, built from the Go module proxy into .cache/tools by
// scripts/install-deps) serving a temporary directory on 127.0.0.1 over
// TLS, with a throwaway CA made for the test.
package s3test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/internal/s3dump"
)

// Version is the versitygw release scripts/install-deps builds.
const Version = "v1.8.0"

// Test keys of the gateway's root user.
const (
	AccessKey = "gokdumptest"
	SecretKey = "gokdump-test-secret-0123456789"
)

// A Server is a running versitygw.
type Server struct {
	Port  int
	Dir   string // what it serves: one directory per bucket
	CAPEM []byte // the CA that signed its certificate
	// CAFile holds CAPEM.
	CAFile string
	cmd    *exec.Cmd
	log    *lockedBuffer
	done   chan struct{}
}

// Binary finds versitygw: $GOKDUMP_VERSITYGW, else
// .cache/tools/versitygw-<Version>/versitygw in the repository that holds
// the working directory.
func Binary() (string, error) {
	if p := os.Getenv("GOKDUMP_VERSITYGW"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "tools", "versitygw-"+Version, "versitygw")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("s3test: no %s: scripts/install-deps builds it (go install github.com/versity/versitygw/cmd/versitygw@%s)", p, Version)
			}
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("s3test: not inside the repository")
		}
		dir = up
	}
}

// Start runs versitygw serving a new directory under dir on a free port
// of 127.0.0.1, with a certificate for 127.0.0.1, localhost and the
// addresses in ips (the guest-side address of a QEMU test), and waits
// until it answers.
func Start(dir string, ips ...net.IP) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: filepath.Join(dir, "root"), log: &lockedBuffer{}, done: make(chan struct{})}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	s.CAFile = filepath.Join(dir, "ca.pem")
	if s.CAPEM, err = makeCerts(s.CAFile, certFile, keyFile, append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...)); err != nil {
		return nil, err
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "--port", "127.0.0.1:"+strconv.Itoa(s.Port), "--cert", certFile, "--key", keyFile,
		"--region", config.DefaultS3Region, "--quiet", "posix", s.Dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	if err := s.run(bin); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts a stopped server again, on the same port, serving the
// same directory.
func (s *Server) Restart() error {
	args, env := s.cmd.Args, s.cmd.Env
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Env = env
	s.done = make(chan struct{})
	return s.run(args[0])
}

func (s *Server) run(bin string) error {
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("s3test: start %s: %w", bin, err)
	}
	done := s.done
	go func() { s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("s3test: versitygw exited: %s", s.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("s3test: versitygw did not listen on %s in 30 s: %s", s.Addr(), s.Log())
		}
	}
}

// Addr is 127.0.0.1:Port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Endpoint is the server as s3_endpoint names it.
func (s *Server) Endpoint() config.S3Endpoint {
	return config.S3Endpoint{Host: "127.0.0.1", Port: s.Port}
}

// Credentials are the root user's, or with a wrong secret.
func (s *Server) Credentials(wrongSecret bool) s3dump.Credentials {
	c := s3dump.Credentials{AccessKey: AccessKey, SecretKey: SecretKey}
	if wrongSecret {
		c.SecretKey = "not-the-secret"
	}
	return c
}

// CredentialsFile is the credentials in the file format of s3_credentials.
func CredentialsFile(c s3dump.Credentials) []byte {
	return fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", c.AccessKey, c.SecretKey)
}

// Client is a client of s, as the root user.
func (s *Server) Client() (*s3dump.Client, error) {
	return s3dump.New(s3dump.Options{Endpoint: s.Endpoint(), Creds: s.Credentials(false), CAPEM: s.CAPEM})
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	// Listening is not yet serving: a request right after the start was
	// once reset.
	return s3dump.Retry(context.Background(), time.Now().Add(30*time.Second), 10*time.Second, nil, func(ctx context.Context) error {
		return c.MakeBucket(ctx, name)
	})
}

// Stop kills the server (its own process, by PID) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Log is what the server printed.
func (s *Server) Log() string { return s.log.String() }

// For starts a server for t, with a bucket, stopped at the test's end. A
// missing versitygw skips the test, or fails it in strict mode (CI).
func For(t testing.TB, bucket string, ips ...net.IP) *Server {
	t.Helper()
	if _, err := Binary(); err != nil {
		fixture.Missing(t, "%v", err)
	}
	s, err := Start(t.TempDir(), ips...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw log:\n%s", s.Log())
		}
	})
	if bucket != "" {
		if err := s.MakeBucket(bucket); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// makeCerts writes a new CA (caFile) and a server certificate signed by
// it for ips and localhost.
func makeCerts(caFile, certFile, keyFile string, ips []net.IP) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gokdump test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gokdump test S3"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for _, f := range []struct {
		name string
		data []byte
	}{
		{caFile, caPEM},
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})},
	} {
		if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // enough to see what went wrong
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
