package sshdump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// maxKey bounds the private key file read.
const maxKey = 64 << 10

// LoadSigner reads an unencrypted private key (OpenSSH, PEM). The key's
// bytes never appear in an error.
func LoadSigner(path string) (ssh.Signer, error) {
	b, err := readSmall(path, maxKey)
	if err != nil {
		return nil, fmt.Errorf("sshdump: key: %w", err)
	}
	defer clear(b)
	return ParseSigner(path, b)
}

// ParseSigner parses the private key read from path; as LoadSigner.
func ParseSigner(path string, b []byte) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("sshdump: key %s is protected by a passphrase, which nobody can type after a crash: use a key without one (gokdump propagate makes one)", path)
		}
		return nil, fmt.Errorf("sshdump: key %s: not a private key gokdump can use (%T)", path, err)
	}
	return s, nil
}

// Options of Dial.
type Options struct {
	User     string
	HostPort string // host:port
	Signer   ssh.Signer
	HostKeys *HostKeys
	// Auth and HostKeyCallback, when set, replace Signer and HostKeys
	// (gokdump propagate logs in with the user's own credentials).
	Auth            []ssh.AuthMethod
	HostKeyCallback ssh.HostKeyCallback
	// Timeout bounds the TCP connection and the SSH handshake.
	Timeout time.Duration
}

// Conn is a logged-in SSH connection and, when the server has the SFTP
// subsystem, an SFTP client on it.
type Conn struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	// NoSFTP says why there is no SFTP client, when there is none.
	NoSFTP error
	// ServerVersion is the server's SSH version string.
	ServerVersion string
}

// Dial connects, checks the host key and logs in with the key; then it
// starts SFTP. A host key that does not match is ErrHostKeyChanged or
// ErrHostKeyUnknown, a refused key ErrAuth; other errors are about
// reaching the server (worth retrying).
func Dial(ctx context.Context, o Options) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", o.HostPort)
	if err != nil {
		return nil, fmt.Errorf("sshdump: connect to %s: %w", o.HostPort, err)
	}
	cfg := &ssh.ClientConfig{User: o.User, Auth: o.Auth, HostKeyCallback: o.HostKeyCallback, Timeout: o.Timeout}
	if cfg.Auth == nil {
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(o.Signer)}
	}
	if cfg.HostKeyCallback == nil {
		cfg.HostKeyCallback = o.HostKeys.Callback()
		cfg.HostKeyAlgorithms = o.HostKeys.Algorithms(o.HostPort)
	}
	// The handshake is bounded too: a server that accepts and says
	// nothing must not hold the capture.
	nc.SetDeadline(time.Now().Add(o.Timeout))
	cc, chans, reqs, err := ssh.NewClientConn(nc, o.HostPort, cfg)
	if err != nil {
		nc.Close()
		switch {
		case errors.Is(err, ErrHostKeyChanged), errors.Is(err, ErrHostKeyUnknown):
			return nil, err
		case strings.Contains(err.Error(), "unable to authenticate") && o.Signer != nil:
			return nil, fmt.Errorf("%w: %s@%s did not accept the key %s (%s); run gokdump propagate",
				ErrAuth, o.User, o.HostPort, o.Signer.PublicKey().Type(), ssh.FingerprintSHA256(o.Signer.PublicKey()))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%w: %s@%s: %v", ErrAuth, o.User, o.HostPort, err)
		}
		return nil, fmt.Errorf("sshdump: ssh handshake with %s: %w", o.HostPort, err)
	}
	nc.SetDeadline(time.Time{})
	c := &Conn{ssh: ssh.NewClient(cc, chans, reqs), ServerVersion: string(cc.ServerVersion())}
	c.sftp, c.NoSFTP = sftp.NewClient(c.ssh,
		sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(32), sftp.UseFstat(true))
	return c, nil
}

// Close ends the SFTP client and the connection.
func (c *Conn) Close() error {
	var errs []error
	if c.sftp != nil {
		errs = append(errs, c.sftp.Close())
	}
	errs = append(errs, c.ssh.Close())
	return errors.Join(errs...)
}

// HasSFTP reports whether the server runs SFTP for us.
func (c *Conn) HasSFTP() bool { return c.sftp != nil }

// Run runs cmd on the server (through the login shell) with stdin as its
// input; its standard error comes back in the error.
func (c *Conn) Run(cmd string, stdin io.Reader) error {
	s, err := c.ssh.NewSession()
	if err != nil {
		return fmt.Errorf("sshdump: session: %w", err)
	}
	defer s.Close()
	var stderr strings.Builder
	s.Stdin, s.Stderr = stdin, &limitWriter{w: &stderr, n: 4096}
	if err := s.Run(cmd); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("sshdump: %s: %w: %s", firstWord(cmd), err, msg)
		}
		return fmt.Errorf("sshdump: %s: %w", firstWord(cmd), err)
	}
	return nil
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

type limitWriter struct {
	w *strings.Builder
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if r := l.n - l.w.Len(); r > 0 {
		l.w.Write(p[:min(len(p), r)])
	}
	return len(p), nil
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// The SFTP operations the capture needs. Each requires HasSFTP.

// AppendLine adds line to the file name (created 0600 with its
// directory 0700 when missing) unless the file already holds it; it
// reports whether it added it.
func (c *Conn) AppendLine(name, line string) (bool, error) {
	if dir := path.Dir(name); dir != "." {
		if err := c.sftp.MkdirAll(dir); err != nil {
			return false, wrap("mkdir -p", dir, err)
		}
		c.sftp.Chmod(dir, 0o700)
	}
	var b []byte
	if f, err := c.sftp.Open(name); err == nil {
		b, err = io.ReadAll(io.LimitReader(f, 4<<20))
		f.Close()
		if err != nil {
			return false, wrap("read", name, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) == strings.TrimSpace(line) {
				return false, nil
			}
		}
	}
	f, err := c.sftp.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return false, wrap("open", name, err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return false, wrap("chmod", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		return false, wrap("stat", name, err)
	}
	add := strings.TrimSpace(line) + "\n"
	if len(b) > 0 && b[len(b)-1] != '\n' {
		add = "\n" + add
	}
	// O_APPEND is not honoured by every server: write at the end.
	if _, err := f.WriteAt([]byte(add), st.Size()); err != nil {
		return false, wrap("write", name, err)
	}
	return true, nil
}

// MkdirAll creates dir and its missing parents.
func (c *Conn) MkdirAll(dir string) error { return wrap("mkdir -p", dir, c.sftp.MkdirAll(dir)) }

// Mkdir creates dir, mode 0700; fs.ErrExist when it exists.
func (c *Conn) Mkdir(dir string) error {
	if err := c.sftp.Mkdir(dir); err != nil {
		if _, serr := c.sftp.Lstat(dir); serr == nil {
			return fmt.Errorf("sshdump: mkdir %s: %w", dir, fs.ErrExist)
		}
		return wrap("mkdir", dir, err)
	}
	return wrap("chmod", dir, c.sftp.Chmod(dir, 0o700))
}

// ReadDir lists dir.
func (c *Conn) ReadDir(dir string) ([]fs.FileInfo, error) {
	fi, err := c.sftp.ReadDir(dir)
	return fi, wrap("list", dir, err)
}

// Create creates name exclusively, mode 0600, for reading and writing.
func (c *Conn) Create(name string) (*File, error) {
	f, err := c.sftp.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, wrap("create", name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		c.sftp.Remove(name)
		return nil, wrap("chmod", name, err)
	}
	return &File{f: f, c: c}, nil
}

// Rename renames old to new, atomically where the server has
// posix-rename@openssh.com.
func (c *Conn) Rename(old, new string) error {
	if _, ok := c.sftp.HasExtension("posix-rename@openssh.com"); ok {
		return wrap("rename", old, c.sftp.PosixRename(old, new))
	}
	return wrap("rename", old, c.sftp.Rename(old, new))
}

// Remove removes a file or an empty directory.
func (c *Conn) Remove(name string) error { return wrap("remove", name, c.sftp.Remove(name)) }

// FreeSpace is the space the login user may fill on dir's filesystem
// (statvfs@openssh.com); an error where the server has no such extension.
func (c *Conn) FreeSpace(dir string) (int64, error) {
	if _, ok := c.sftp.HasExtension("statvfs@openssh.com"); !ok {
		return 0, errors.New("sshdump: the server has no statvfs@openssh.com")
	}
	st, err := c.sftp.StatVFS(dir)
	if err != nil {
		return 0, wrap("statvfs", dir, err)
	}
	return int64(st.Bavail * st.Frsize), nil
}

func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sshdump: %s %s: %w", op, name, err)
}

// File is a file on the server.
type File struct {
	f *sftp.File
	c *Conn
}

func (f *File) WriteAt(p []byte, off int64) (int, error) { return f.f.WriteAt(p, off) }
func (f *File) ReadAt(p []byte, off int64) (int, error)  { return f.f.ReadAt(p, off) }
func (f *File) Write(p []byte) (int, error)              { return f.f.Write(p) }
func (f *File) Close() error                             { return f.f.Close() }

// Preallocate writes zeros over [off, off+size): SFTP has no fallocate,
// and the kdump writer reserves its descriptor area this way so that a
// server that fills up can still take the descriptors of the pages it
// holds (diskdump.Preallocator).
func (f *File) Preallocate(off, size int64) error {
	zero := make([]byte, min(size, 1<<20))
	for size > 0 {
		n := min(size, int64(len(zero)))
		if _, err := f.f.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("sshdump: reserve %d bytes at %#x: %w", n, off, err)
		}
		off += n
		size -= n
	}
	return nil
}

// Sync asks the server to flush the file (fsync@openssh.com); a server
// without the extension is not an error: its close is all there is.
func (f *File) Sync() error {
	if _, ok := f.c.sftp.HasExtension("fsync@openssh.com"); !ok {
		return nil
	}
	return f.f.Sync()
}
