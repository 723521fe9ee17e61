package s3dump

import (
	"fmt"
	"os"

	"github.com/gokdump/gokdump/internal/config"
)

// FromConfig makes a client of the config's s3_endpoint, with the keys of
// s3_credentials and the CAs of ca_file (the system's when it is empty).
// read reads a file (os.ReadFile when nil).
func FromConfig(cfg *config.Config, read func(string) ([]byte, error)) (*Client, error) {
	if read == nil {
		read = os.ReadFile
	}
	ep, err := config.ParseS3Endpoint(cfg.S3Endpoint)
	if err != nil {
		return nil, fmt.Errorf("s3_endpoint: %w", err)
	}
	b, err := read(cfg.S3Credentials)
	if err != nil {
		return nil, fmt.Errorf("s3_credentials: %w", err)
	}
	creds, err := ParseCredentials(cfg.S3Credentials, b)
	if err != nil {
		return nil, err
	}
	o := Options{Endpoint: ep, Region: cfg.S3Region, Creds: creds}
	if cfg.CAFile != "" {
		if o.CAPEM, err = read(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
	}
	return New(o)
}
