package config

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/gokdump/gokdump/internal/blockdev"
)

// RawPrefix marks a target written as a raw device rather than mounted.
const RawPrefix = "raw:"

// Prefixes of network targets.
const (
	SSHPrefix = "ssh://"
	NFSPrefix = "nfs://"
	S3Prefix  = "s3://"
)

// TargetKind says how a target is reached.
type TargetKind string

const (
	// KindBlock is a block device with a filesystem, mounted.
	KindBlock TargetKind = "block"
	// KindRaw is a block device written raw (the flattened stream).
	KindRaw TargetKind = "raw"
	// KindSSH is a directory on an SSH server, written over SFTP.
	KindSSH TargetKind = "ssh"
	// KindNFS is an NFS export, mounted by the kernel's NFS client.
	KindNFS TargetKind = "nfs"
	// KindS3 is a bucket of an S3-compatible object store (s3_endpoint),
	// written with multipart uploads.
	KindS3 TargetKind = "s3"
)

// DefaultSSHPort and DefaultSSHUser apply when an ssh:// target names
// none.
const (
	DefaultSSHPort = 22
	DefaultSSHUser = "root"
)

// A Target is a parsed target or fallback_target value.
type Target struct {
	Kind TargetKind
	// Spec finds the device of a block or raw target.
	Spec blockdev.Spec
	// Raw means the device has no filesystem: the dump is written onto
	// the device itself as makedumpfile's flattened stream.
	Raw bool

	// Host is the server of a network target: a name, an IPv4 address or
	// an IPv6 address (without brackets).
	Host string
	// Port is the SSH server's port (ssh only).
	Port int
	// User is the SSH user (ssh only).
	User string
	// Dir is the directory on the server: for ssh the directory that
	// holds the dump directories ("" means the path key), for nfs the
	// export path that is mounted and holds them, for s3 the key prefix
	// (no leading or trailing slash; "" for none).
	Dir string
	// Bucket is the bucket of an s3 target. Its Host and Port are those
	// of s3_endpoint, filled in by Config.Targets.
	Bucket string
}

// hostName is a DNS name or an IPv4 address; IPv6 is checked with
// net.ParseIP.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$`)

// remoteDirChars are the characters a network target's path may hold: a
// URL needs no escapes for them, and neither does mount(2)'s source.
var remoteDirChars = regexp.MustCompile(`^[A-Za-z0-9._~+@=/-]*$`)

// ParseTarget parses a target value: a device spec, "raw:" and a device
// spec, ssh://[user@]host[:port][/path], nfs://host/export/path or
// host:/export/path. A raw device has no filesystem to carry a UUID or
// LABEL, so those are refused after "raw:".
func ParseTarget(s string) (Target, error) {
	switch {
	case strings.HasPrefix(s, SSHPrefix):
		return parseSSH(s)
	case strings.HasPrefix(s, NFSPrefix):
		return parseNFSURL(s)
	case strings.HasPrefix(s, S3Prefix):
		return ParseS3URL(s)
	}
	if host, dir, ok := nfsShort(s); ok {
		return parseNFS(s, host, dir)
	}
	t := Target{Kind: KindBlock}
	if rest, ok := strings.CutPrefix(s, RawPrefix); ok {
		t.Raw, t.Kind = true, KindRaw
		s = rest
	}
	spec, err := blockdev.ParseSpec(s)
	if err != nil {
		return Target{}, valueErr("%s", strings.TrimPrefix(err.Error(), "blockdev: "))
	}
	if t.Raw && (spec.Kind == blockdev.ByUUID || spec.Kind == blockdev.ByLabel) {
		return Target{}, valueErr("%s: a raw device has no filesystem %s; use a /dev path, PARTUUID= or PARTLABEL=", quote(RawPrefix+s), spec.Kind)
	}
	t.Spec = spec
	return t, nil
}

// nfsShort splits host:/path, the form of fstab and mount(8). A device
// spec (UUID=…, /dev/…) never has a colon before its first slash.
func nfsShort(s string) (host, dir string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:/")
		if end < 0 {
			return "", "", false
		}
		return s[1:end], s[end+2:], true
	}
	host, dir, ok = strings.Cut(s, ":/")
	if !ok || host == "" || strings.ContainsAny(host, "=/") || host+":" == RawPrefix {
		return "", "", false
	}
	return host, "/" + dir, true
}

func checkHost(orig, host string) error {
	if host == "" {
		return valueErr("%s names no server", quote(orig))
	}
	if strings.Contains(host, ":") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return valueErr("%s: %q is not an IPv6 address", quote(orig), host)
		}
		return nil
	}
	if !hostName.MatchString(host) {
		return valueErr("%s: %q is not a host name or address", quote(orig), host)
	}
	return nil
}

// checkRemoteDir checks the directory part of a network target.
func checkRemoteDir(orig, dir string) error {
	if !remoteDirChars.MatchString(dir) {
		return valueErr("%s: the path may hold letters, digits and . _ ~ + @ = - / only", quote(orig))
	}
	for _, e := range strings.Split(dir, "/") {
		if e == ".." {
			return valueErr("%s: the path has a \"..\" element", quote(orig))
		}
	}
	if len(dir) > 1024 {
		return valueErr("%s: the path is longer than 1024 bytes", quote(orig))
	}
	return nil
}

// secretInURL matches the password of scheme://user:password@.
var secretInURL = regexp.MustCompile(`(://[^/@:]*):[^/@]*@`)

// MaskSecrets replaces a password in a URL-like value with "xxxxx", for
// messages and gokdump show: a value is echoed in errors, and a password
// must not be.
func MaskSecrets(s string) string { return secretInURL.ReplaceAllString(s, "${1}:xxxxx@") }

func parseSSH(s string) (Target, error) {
	s0 := s
	s = MaskSecrets(s)
	if s != s0 {
		return Target{}, valueErr("%s holds a password: gokdump authenticates with a key (ssh_key); run gokdump propagate", quote(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, valueErr("%s is not an ssh://user@host[:port]/path URL: %v", quote(s), unwrapURLErr(err))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Target{}, valueErr("%s: an ssh target takes no query, fragment or opaque part", quote(s))
	}
	t := Target{Kind: KindSSH, Host: u.Hostname(), Port: DefaultSSHPort, User: DefaultSSHUser, Dir: u.Path}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return Target{}, valueErr("%s holds a password: gokdump authenticates with a key (ssh_key); run gokdump propagate", quote(MaskSecrets(u.Redacted())))
		}
		t.User = u.User.Username()
		if t.User == "" || strings.ContainsAny(t.User, " \t/:@") {
			return Target{}, valueErr("%s: bad user name %q", quote(s), t.User)
		}
	}
	if err := checkHost(s, t.Host); err != nil {
		return Target{}, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, valueErr("%s: port %q is not 1..65535", quote(s), p)
		}
		t.Port = n
	}
	if t.Dir == "/" {
		t.Dir = ""
	}
	if err := checkRemoteDir(s, t.Dir); err != nil {
		return Target{}, err
	}
	return t, nil
}

func parseNFSURL(s string) (Target, error) {
	s = MaskSecrets(s)
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, valueErr("%s is not an nfs://server/export/path URL: %v", quote(s), unwrapURLErr(err))
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Target{}, valueErr("%s: an nfs target is nfs://server/export/path (mount options go in mount_options)", quote(s))
	}
	return parseNFS(s, u.Hostname(), u.Path)
}

func parseNFS(orig, host, dir string) (Target, error) {
	if err := checkHost(orig, host); err != nil {
		return Target{}, err
	}
	if dir == "" || dir[0] != '/' {
		return Target{}, valueErr("%s names no export path", quote(orig))
	}
	if err := checkRemoteDir(orig, dir); err != nil {
		return Target{}, err
	}
	return Target{Kind: KindNFS, Host: host, Dir: dir}, nil
}

// bucketName is an S3 bucket name as AWS and every compatible store
// accept it (no upper case, no underscores).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseS3URL parses s3://bucket[/prefix]: an s3 target, or what gokdump
// ls and fetch are given. The prefix loses its slashes at both ends.
func ParseS3URL(s string) (Target, error) {
	rest, ok := strings.CutPrefix(s, S3Prefix)
	if !ok {
		return Target{}, valueErr("%s is not an s3://bucket/prefix URL", quote(s))
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") {
		return Target{}, valueErr("%s: %q is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", quote(s), bucket)
	}
	prefix = strings.Trim(prefix, "/")
	// The crashes' keys hold the time with colons, as the dump
	// directories on a disk do: a crash's URL has them.
	if err := checkRemoteDir(s, strings.ReplaceAll(prefix, ":", "")); err != nil {
		return Target{}, err
	}
	for _, e := range strings.Split(prefix, "/") {
		if prefix != "" && (e == "" || e == ".") {
			return Target{}, valueErr("%s: the prefix has an empty or \".\" element", quote(s))
		}
	}
	return Target{Kind: KindS3, Bucket: bucket, Dir: prefix}, nil
}

func unwrapURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Network reports whether the target is reached over the network.
func (t Target) Network() bool { return t.Kind == KindSSH || t.Kind == KindNFS || t.Kind == KindS3 }

// HostPort is host:port of an ssh target, bracketed for IPv6.
func (t Target) HostPort() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// String returns the target as ParseTarget reads it.
func (t Target) String() string {
	switch t.Kind {
	case KindSSH:
		host := t.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if t.Port != DefaultSSHPort {
			host += ":" + strconv.Itoa(t.Port)
		}
		return SSHPrefix + t.User + "@" + host + t.Dir
	case KindNFS:
		host := t.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return NFSPrefix + host + t.Dir
	case KindS3:
		if t.Dir == "" {
			return S3Prefix + t.Bucket
		}
		return S3Prefix + t.Bucket + "/" + t.Dir
	}
	if t.Raw {
		return RawPrefix + t.Spec.String()
	}
	return t.Spec.String()
}

// Targets returns the targets the capture tries, in order: target, then
// fallback_target if failure_action is "fallback". An empty target is
// ErrNoTarget: the capture has nowhere to write.
func (c *Config) Targets() ([]Target, error) {
	if c.Target == "" {
		return nil, &Error{Source: c.Source("target"), Key: "target", Err: ErrNoTarget}
	}
	var ts []Target
	for _, k := range []string{"target", "fallback_target"} {
		v := c.Target
		if k == "fallback_target" {
			if c.FailureAction != ActionFallback || c.FallbackTarget == "" {
				break
			}
			v = c.FallbackTarget
		}
		t, err := ParseTarget(v)
		if err != nil {
			return nil, &Error{Source: c.Source(k), Key: k, Err: err}
		}
		if t.Kind == KindS3 {
			ep, err := ParseS3Endpoint(c.S3Endpoint)
			if err != nil {
				return nil, &Error{Source: c.Source("s3_endpoint"), Key: "s3_endpoint", Err: err}
			}
			t.Host, t.Port = ep.Host, ep.Port
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// NetworkTargets returns the targets of Targets reached over the network.
func (c *Config) NetworkTargets() []Target {
	ts, _ := c.Targets()
	var out []Target
	for _, t := range ts {
		if t.Network() {
			out = append(out, t)
		}
	}
	return out
}
