package config

import (
	"net"
	"regexp"
	"strconv"
	"strings"
)

// An S3Endpoint is a parsed s3_endpoint: the server an s3 target's bucket
// is on, always reached over TLS.
type S3Endpoint struct {
	Host string // a name or an address, IPv6 without brackets
	Port int
}

// HostPort is host:port, bracketed for IPv6.
func (e S3Endpoint) HostPort() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// ParseS3Endpoint parses host[:port] or https://host[:port] (port 443
// unless given). Plain http is refused: the dump holds the machine's
// memory, secrets included, and goes over the network.
func ParseS3Endpoint(s string) (S3Endpoint, error) {
	if s == "" {
		return S3Endpoint{}, valueErr("an s3:// target needs s3_endpoint (host[:port] of the S3-compatible server)")
	}
	if strings.HasPrefix(s, "http://") {
		return S3Endpoint{}, valueErr("%s: plain http is not allowed (the dump holds the machine's secrets); use https, with ca_file for a private CA", quote(s))
	}
	hp := strings.TrimSuffix(strings.TrimPrefix(s, "https://"), "/")
	if strings.ContainsAny(hp, "/?#@") {
		return S3Endpoint{}, valueErr("%s is not host[:port] or https://host[:port]", quote(s))
	}
	e := S3Endpoint{Host: hp, Port: 443}
	if h, p, err := net.SplitHostPort(hp); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return S3Endpoint{}, valueErr("%s: port %q is not 1..65535", quote(s), p)
		}
		e.Host, e.Port = h, n
	} else if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
		e.Host = hp[1 : len(hp)-1]
	}
	if err := checkHost(s, e.Host); err != nil {
		return S3Endpoint{}, err
	}
	return e, nil
}

func checkS3Endpoint(s string) error {
	if s == "" {
		return nil // needed only by an s3 target: Validate says so
	}
	_, err := ParseS3Endpoint(s)
	return err
}

var regionName = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

func checkS3Region(s string) error {
	if !regionName.MatchString(s) {
		return valueErr("%s is not a region name such as \"us-east-1\"", quote(s))
	}
	return nil
}
