package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/s3dump"
)

// The S3 server of the s3-target tests: Versity's S3 gateway (versitygw,
// built from the Go module proxy into .cache/tools by scripts/install-deps;
// Debian packages no S3 server) serving a temporary directory on
// 127.0.0.1 over TLS, with a throwaway CA made for the test.

// VersityVersion is the versitygw release scripts/install-deps builds.
const VersityVersion = "v1.8.0"

// Keys of the gateway's root user in the tests.
const (
	S3AccessKey = "gokdumptest"
	S3SecretKey = "gokdump-test-secret-0123456789"
)

// Versity is a running versitygw.
type Versity struct {
	*server
	Port  int
	Dir   string // what it serves: one directory per bucket
	CAPEM []byte // the CA that signed its certificate
	// CAFile holds CAPEM.
	CAFile string
	args   []string
	logDir string
}

// VersityBinary finds versitygw: $GOKDUMP_VERSITYGW, else
// .cache/tools/versitygw-<VersityVersion>/versitygw in the repository
// that holds the working directory.
func VersityBinary() (string, error) {
	if p := os.Getenv("GOKDUMP_VERSITYGW"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".cache", "tools", "versitygw-"+VersityVersion, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("harness: no %s: scripts/install-deps builds it (go install github.com/versity/versitygw/cmd/versitygw@%s)", p, VersityVersion)
	}
	return p, nil
}

// StartVersity runs versitygw serving a new directory under dir on a free
// port of 127.0.0.1, with a certificate for 127.0.0.1, localhost and the
// addresses in ips (the guest-side address of a QEMU test), and waits
// until it listens.
func StartVersity(dir string, ips ...net.IP) (*Versity, error) {
	bin, err := VersityBinary()
	if err != nil {
		return nil, err
	}
	v := &Versity{Dir: filepath.Join(dir, "root"), logDir: dir}
	if err := os.MkdirAll(v.Dir, 0o700); err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	v.CAFile = filepath.Join(dir, "ca.pem")
	if v.CAPEM, err = makeCerts(v.CAFile, certFile, keyFile, append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...)); err != nil {
		return nil, err
	}
	if v.Port, err = freePort(); err != nil {
		return nil, err
	}
	v.args = []string{bin, "--access", S3AccessKey, "--secret", S3SecretKey, "--port", "127.0.0.1:" + strconv.Itoa(v.Port),
		"--cert", certFile, "--key", keyFile, "--region", config.DefaultS3Region, "--quiet", "posix", v.Dir}
	return v, v.start()
}

func (v *Versity) start() error {
	s, err := startServer(filepath.Join(v.logDir, "versitygw.log"), v.args[0], v.args[1:]...)
	if err != nil {
		return fmt.Errorf("harness: start versitygw: %w", err)
	}
	v.server = s
	if err := waitListen(v.Port, s.exited, 30*time.Second); err != nil {
		s.stop()
		return fmt.Errorf("harness: versitygw: %w: %s", err, s.Log())
	}
	return nil
}

// Stop ends the server and waits for it.
func (v *Versity) Stop() { v.server.stop() }

// Restart starts a stopped server again, on the same port, serving the
// same directory.
func (v *Versity) Restart() error { return v.start() }

// Addr is 127.0.0.1:Port.
func (v *Versity) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(v.Port)) }

// Endpoint is the server as s3_endpoint names it.
func (v *Versity) Endpoint() config.S3Endpoint {
	return config.S3Endpoint{Host: "127.0.0.1", Port: v.Port}
}

// Credentials are the root user's, or with a wrong secret.
func (v *Versity) Credentials(wrongSecret bool) s3dump.Credentials {
	c := s3dump.Credentials{AccessKey: S3AccessKey, SecretKey: S3SecretKey}
	if wrongSecret {
		c.SecretKey = "not-the-secret"
	}
	return c
}

// S3CredentialsFile is c in the file format of s3_credentials.
func S3CredentialsFile(c s3dump.Credentials) []byte {
	return fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", c.AccessKey, c.SecretKey)
}

// Client is a client of v, as the root user.
func (v *Versity) Client() (*s3dump.Client, error) {
	return s3dump.New(s3dump.Options{Endpoint: v.Endpoint(), Creds: v.Credentials(false), CAPEM: v.CAPEM})
}

// MakeBucket creates a bucket.
func (v *Versity) MakeBucket(name string) error {
	c, err := v.Client()
	if err != nil {
		return err
	}
	// Listening is not yet serving: a request right after the start was
	// once reset.
	return s3dump.Retry(context.Background(), time.Now().Add(30*time.Second), 10*time.Second, nil, func(ctx context.Context) error {
		return c.MakeBucket(ctx, name)
	})
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
