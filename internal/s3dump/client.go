package s3dump

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Options say which server and how to authenticate.
type Options struct {
	Endpoint config.S3Endpoint
	Region   string
	Creds    Credentials
	// CAPEM, when set, holds the only CAs trusted for the endpoint's
	// certificate; nil means the system's.
	CAPEM []byte
	// DialTimeout bounds connecting and the TLS handshake (default 10 s).
	DialTimeout time.Duration
}

// A Client talks to one S3-compatible server.
type Client struct {
	core     minio.Core
	endpoint string
}

// New makes a client. It does not touch the network.
func New(o Options) (*Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CAPEM) {
			return nil, errors.New("s3dump: ca_file holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	dt := o.DialTimeout
	if dt <= 0 {
		dt = 10 * time.Second
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dt, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   dt,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       time.Minute,
		DisableCompression:    true,
	}
	region := o.Region
	if region == "" {
		region = config.DefaultS3Region
	}
	mc, err := minio.New(o.Endpoint.HostPort(), &minio.Options{
		Creds:        credentials.NewStaticV4(o.Creds.AccessKey, o.Creds.SecretKey, o.Creds.SessionToken),
		Secure:       true,
		Transport:    tr,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		// Retries are the caller's, bounded by its deadline.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("s3dump: %s: %w", o.Endpoint.HostPort(), err)
	}
	return &Client{core: minio.Core{Client: mc}, endpoint: "https://" + o.Endpoint.HostPort()}, nil
}

// Endpoint is the server's URL, for messages.
func (c *Client) Endpoint() string { return c.endpoint }

// Sentinel errors callers test with errors.Is.
var (
	// ErrAuth: the server refused the credentials or their rights; trying
	// again does not help.
	ErrAuth = errors.New("s3dump: credentials refused")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("s3dump: no such bucket")
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("s3dump: no such object")
)

// An Error is a failed request: what was asked, of which server, and the
// S3 error code when the server answered with one.
type Error struct {
	Op       string // "put vmcore part 3", "list", …
	Endpoint string
	Code     string // S3's error code (AccessDenied, …); "" without an answer
	Status   int    // HTTP status; 0 without an answer
	Err      error
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("s3dump: %s at %s: %s (HTTP %d): %v", e.Op, e.Endpoint, e.Code, e.Status, e.Err)
	}
	return fmt.Sprintf("s3dump: %s at %s: %v", e.Op, e.Endpoint, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes an Error match the sentinel of its code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAuth:
		switch e.Code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
			"InvalidToken", "InvalidSecurity", "AuthorizationHeaderMalformed", "AllAccessDisabled", "AccountProblem":
			return true
		}
		return e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized
	case ErrNoBucket:
		return e.Code == "NoSuchBucket"
	case ErrNotFound:
		return e.Code == "NoSuchKey" || (e.Code == "" && e.Status == http.StatusNotFound)
	}
	return false
}

// wrap turns a minio-go error into an *Error.
func (c *Client) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Endpoint: c.endpoint, Err: err}
	if r := minio.ToErrorResponse(err); r.StatusCode != 0 || r.Code != "" {
		e.Code, e.Status = r.Code, r.StatusCode
		if r.Message != "" {
			e.Err = errors.New(r.Message)
		}
	}
	return e
}

// Permanent reports whether err does not get better by trying again: the
// credentials, the bucket, a certificate that does not verify, a request
// the server calls bad.
func Permanent(err error) bool {
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrNoBucket) || errors.Is(err, ErrCredentials) {
		return true
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) {
		return true
	}
	var e *Error
	if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests {
		return true
	}
	return false
}

// Backoff between tries: it doubles from the first to the last.
const (
	firstBackoff = time.Second
	maxBackoff   = 8 * time.Second
)

// Retry calls try until it succeeds, fails for good (Permanent), or the
// deadline leaves no time for another try, sleeping with backoff in
// between. Each try gets a context ending at min(now+perTry, deadline).
// note, if set, hears of each failed try that is retried.
func Retry(ctx context.Context, deadline time.Time, perTry time.Duration, note func(try int, err error, wait time.Duration), try func(ctx context.Context) error) error {
	wait := firstBackoff
	for n := 1; ; n++ {
		end := time.Now().Add(perTry)
		if end.After(deadline) {
			end = deadline
		}
		tctx, cancel := context.WithDeadline(ctx, end)
		err := try(tctx)
		cancel()
		if err == nil || Permanent(err) || ctx.Err() != nil {
			return err
		}
		if time.Until(deadline) < wait+time.Second {
			return fmt.Errorf("%w (%d tries; out of time)", err, n)
		}
		if note != nil {
			note(n, err, wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, maxBackoff)
	}
}
