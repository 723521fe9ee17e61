package main

import (
	"crypto/x509"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/s3dump"
)

// systemCABundle is Debian's (and Ubuntu's) bundle of trusted CAs, where
// Go's crypto/x509 looks first: the image holds a copy when ca_file is
// empty, the capture having no other.
const systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// s3Files adds what an s3 target needs to the image: the credentials
// (0600), the CAs that may sign the endpoint's certificate, and the
// machine id for meta.json. It reports whether the image holds a secret.
func s3Files(cfg *config.Config, opts *builder.Options, read func(string) ([]byte, error), stderr io.Writer) (bool, error) {
	if cfg == nil {
		return false, nil
	}
	any := false
	for _, t := range cfg.NetworkTargets() {
		any = any || t.Kind == config.KindS3
	}
	if !any {
		return false, nil
	}
	if opts.Sysroot == nil {
		if fi, err := os.Stat(cfg.S3Credentials); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return false, fmt.Errorf("s3_credentials: %s is readable by others (%v): chmod 600 it", cfg.S3Credentials, fi.Mode().Perm())
		}
	}
	cb, err := read(cfg.S3Credentials)
	if err != nil {
		return false, fmt.Errorf("s3_credentials: %w (the file holds aws_access_key_id and aws_secret_access_key)", err)
	}
	creds, err := s3dump.ParseCredentials(cfg.S3Credentials, cb)
	if err != nil {
		return false, err
	}
	caPath := cfg.CAFile
	if caPath == "" {
		caPath = systemCABundle
	}
	ca, err := read(caPath)
	if err != nil {
		if cfg.CAFile == "" {
			return false, fmt.Errorf("no system CA bundle to pack (%w): install ca-certificates, or set ca_file", err)
		}
		return false, fmt.Errorf("ca_file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return false, fmt.Errorf("%s holds no PEM certificate", caPath)
	}
	opts.Extra = append(opts.Extra,
		builder.File{Path: cfg.S3Credentials, Data: cb, Mode: 0o600},
		builder.File{Path: caPath, Data: ca, Mode: 0o644})
	if id, err := read(s3dump.MachineIDPath); err == nil && len(id) < 256 {
		opts.Extra = append(opts.Extra, builder.File{Path: s3dump.MachineIDPath, Data: id, Mode: 0o644})
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "gokdump build: s3: no machine id for meta.json: %v\n", err)
	}
	key := creds.AccessKey
	if len(key) > 8 {
		key = key[:4] + strings.Repeat("*", len(key)-8) + key[len(key)-4:]
	}
	fmt.Fprintf(stderr, "gokdump build: s3: credentials %s (access key %s) packed 0600, CAs of %s\n", cfg.S3Credentials, key, caPath)
	return true, nil
}

// initHasS3 refuses an init built with -tags nos3 (which leaves the S3
// client out) for an s3 target: its captures would fail. An init whose
// build information cannot be read (stripped of it, or not Go) is taken
// as it is.
func initHasS3(path string) error {
	if path == "" {
		return nil // compiled from source, with the default tags
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil
	}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "nos3") {
			return fmt.Errorf("the capture init %s was built with -tags nos3, without the S3 client, and the config names an s3 target: "+
				"install gokdump-init-s3 beside gokdump or as /usr/lib/gokdump/init-s3 (make builds it), or pass --init PATH of an init built without the tag", path)
		}
	}
	return nil
}

// s3InitPaths are where the capture init for arch with the S3 client is
// looked for when the config names an s3 target and --init is not given:
// beside gokdump as gokdump-init-s3 (what make puts in bin/), then in
// arch/ there, ../lib/gokdump/init-s3 relative to it, then
// ../lib/gokdump/arch/init-s3, /usr/lib/gokdump/init-s3, then
// /usr/lib/gokdump/arch/init-s3 (builder.InstalledPaths). The plain
// gokdump-init leaves the client out (-tags nos3): 3.5 MB less to unpack in
// every other capture kernel.
func s3InitPaths(exe, arch string) []string {
	return builder.InstalledPaths(exe, arch, "gokdump-init-s3", "init-s3")
}

// findS3Init returns the first usable s3InitPaths(exe, arch), or "".
func findS3Init(exe, arch string) string {
	for _, p := range s3InitPaths(exe, arch) {
		if builder.CheckInit(p, arch) == nil {
			return filepath.Clean(p)
		}
	}
	return ""
}
