package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/sshdump"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/term"
)

type propagateFlags struct {
	identity string
	yes      bool
	timeout  time.Duration
}

func init() {
	register(&command{
		name:  "propagate",
		short: "set up an ssh target: create the key, install it on the server, pin the host key",
		long: `For each ssh target of the config (target, fallback_target): creates ssh_key
(ed25519, 0600) if it is missing; connects to the server and, when its host
key is not pinned in known_hosts yet, shows its fingerprint and asks whether
to trust it (--yes: do without asking); logs in with ssh-agent, the user's
own keys (~/.ssh/id_*, --identity) or a password asked once, and appends the
public key to the server's ~/.ssh/authorized_keys; logs in again with the key
alone; checks that the dump directory can be written; records the host key
in known_hosts. Then rebuild the capture image (gokdump rebuild) to pack
both.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var cf configFlag
			var f propagateFlags
			cf.define(fs, config.DefaultPath, "configuration `FILE`")
			fs.StringVar(&f.identity, "identity", "", "private key `FILE` to log in with the first time (as ssh -i)")
			fs.BoolVar(&f.yes, "yes", false, "trust the server's host key without asking when none is pinned yet")
			fs.DurationVar(&f.timeout, "timeout", 20*time.Second, "connection `TIMEOUT`")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				cfg, err := cf.load()
				if err != nil {
					return err
				}
				return runPropagate(cfg, &f, s.in, s.out)
			}
		},
	})
}

func runPropagate(cfg *config.Config, f *propagateFlags, in io.Reader, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var targets []config.Target
	for _, t := range cfg.NetworkTargets() {
		if t.Kind == config.KindSSH {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return errors.New("the config has no ssh target (target = \"ssh://user@host/path\")")
	}
	signer, err := ensureKey(cfg.SSHKey, out)
	if err != nil {
		return err
	}
	ask := newAsker(in, out)
	for _, t := range targets {
		if err := propagateTo(cfg, t, signer, f, ask, out); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	fmt.Fprintf(out, "done: now rebuild the capture image (gokdump rebuild) so that it holds %s and %s\n", cfg.SSHKey, cfg.KnownHosts)
	return nil
}

// ensureKey loads the key at p, or creates an ed25519 one (0600, its
// public half beside it as p.pub).
func ensureKey(p string, out io.Writer) (ssh.Signer, error) {
	if _, err := os.Stat(p); err == nil {
		s, err := sshdump.LoadSigner(p)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "key %s: %s %s\n", p, s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey()))
		return s, nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	block, err := ssh.MarshalPrivateKey(priv, "gokdump@"+host)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	kf, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := kf.Write(pem.EncodeToMemory(block)); err != nil {
		kf.Close()
		return nil, err
	}
	if err := kf.Close(); err != nil {
		return nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " gokdump@" + host + "\n"
	if err := os.WriteFile(p+".pub", []byte(pub), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "created key %s: %s %s\n", p, s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey()))
	return s, nil
}

// asker asks questions on the terminal (or reads answers from in).
type asker struct {
	in       *bufio.Reader
	fd       int // the terminal, or -1
	out      io.Writer
	password *string
}

func newAsker(in io.Reader, out io.Writer) *asker {
	a := &asker{in: bufio.NewReader(in), fd: -1, out: out}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		a.fd = int(f.Fd())
	}
	return a
}

func (a *asker) line(prompt string) (string, error) {
	fmt.Fprint(a.out, prompt)
	s, err := a.in.ReadString('\n')
	if err != nil && s == "" {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// secret asks for the password once; later calls return it again.
func (a *asker) secret(prompt string) (string, error) {
	if a.password != nil {
		return *a.password, nil
	}
	if a.fd < 0 {
		return "", errors.New("a password is needed and standard input is not a terminal (use ssh-agent or --identity)")
	}
	fmt.Fprint(a.out, prompt)
	b, err := term.ReadPassword(a.fd)
	fmt.Fprintln(a.out)
	if err != nil {
		return "", err
	}
	p := string(b)
	a.password = &p
	return p, nil
}

// hostKey returns the server's host key: the pinned one (checked), or,
// when none is pinned, the one it offers once the user (or --yes) trusts
// it. pinned reports which.
func hostKey(cfg *config.Config, t config.Target, f *propagateFlags, ask *asker, out io.Writer) (key ssh.PublicKey, pinned bool, err error) {
	hostport := t.HostPort()
	var hk *sshdump.HostKeys
	if _, err := os.Stat(cfg.KnownHosts); err == nil {
		if hk, err = sshdump.LoadHostKeys(cfg.KnownHosts); err != nil {
			return nil, false, err
		}
	}
	// A handshake that only looks at the key.
	errSeen := errors.New("seen")
	var offered ssh.PublicKey
	cb := func(_ string, _ net.Addr, k ssh.PublicKey) error { offered = k; return errSeen }
	o := sshdump.Options{User: t.User, HostPort: hostport, Auth: []ssh.AuthMethod{}, HostKeyCallback: cb, Timeout: f.timeout}
	if hk != nil && len(hk.Algorithms(hostport)) > 0 {
		o.HostKeyCallback = func(h string, r net.Addr, k ssh.PublicKey) error {
			offered = k
			if err := hk.Callback()(h, r, k); err != nil {
				return err
			}
			return errSeen
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	_, err = sshdump.Dial(ctx, o)
	switch {
	case errors.Is(err, errSeen) && o.HostKeyCallback != nil && hk != nil && len(hk.Algorithms(hostport)) > 0:
		fmt.Fprintf(out, "%s: host key %s %s is the one pinned in %s\n", hostport, offered.Type(), ssh.FingerprintSHA256(offered), cfg.KnownHosts)
		return offered, true, nil
	case errors.Is(err, errSeen):
	case err != nil:
		return nil, false, err
	}
	fmt.Fprintf(out, "%s offers host key %s %s, not pinned in %s yet\n", hostport, offered.Type(), ssh.FingerprintSHA256(offered), cfg.KnownHosts)
	if !f.yes {
		a, err := ask.line("Is that the server's key (compare with ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on it)? [y/N] ")
		if err != nil || !strings.EqualFold(a, "y") && !strings.EqualFold(a, "yes") {
			return nil, false, errors.New("host key not trusted; nothing done")
		}
	}
	return offered, false, nil
}

// userAuth is how the user logs in the first time: ssh-agent, their
// keys, a password asked once.
func userAuth(f *propagateFlags, ask *asker) []ssh.AuthMethod {
	var signers []ssh.Signer
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			if ss, err := agent.NewClient(c).Signers(); err == nil {
				signers = append(signers, ss...)
			}
		}
	}
	files := []string{f.identity}
	if home, err := os.UserHomeDir(); err == nil && f.identity == "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			files = append(files, filepath.Join(home, ".ssh", n))
		}
	}
	for _, p := range files {
		if p == "" {
			continue
		}
		if s, err := sshdump.LoadSigner(p); err == nil {
			signers = append(signers, s)
		}
	}
	pw := func() (string, error) { return ask.secret("password: ") }
	return []ssh.AuthMethod{
		ssh.PublicKeys(signers...),
		ssh.PasswordCallback(pw),
		ssh.KeyboardInteractive(func(_, _ string, qs []string, echos []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range qs {
				p, err := pw()
				if err != nil {
					return nil, err
				}
				ans[i] = p
			}
			return ans, nil
		}),
	}
}

func propagateTo(cfg *config.Config, t config.Target, signer ssh.Signer, f *propagateFlags, ask *asker, out io.Writer) error {
	hostport := t.HostPort()
	key, pinned, err := hostKey(cfg, t, f, ask, out)
	if err != nil {
		return err
	}
	dial := func(auth []ssh.AuthMethod) (*sshdump.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		return sshdump.Dial(ctx, sshdump.Options{User: t.User, HostPort: hostport, Auth: auth,
			HostKeyCallback: ssh.FixedHostKey(key), Timeout: f.timeout})
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if b, err := os.ReadFile(cfg.SSHKey + ".pub"); err == nil {
		if fs := strings.Fields(string(b)); len(fs) >= 2 && fs[1] == strings.Fields(pub)[1] {
			pub = strings.TrimSpace(string(b))
		}
	}
	c, err := dial([]ssh.AuthMethod{ssh.PublicKeys(signer)})
	if err == nil {
		fmt.Fprintf(out, "%s@%s already accepts %s\n", t.User, hostport, cfg.SSHKey)
	} else {
		if !errors.Is(err, sshdump.ErrAuth) {
			return err
		}
		fmt.Fprintf(out, "logging in to %s@%s to install the key\n", t.User, hostport)
		uc, err := dial(userAuth(f, ask))
		if err != nil {
			return err
		}
		if uc.HasSFTP() {
			added, err := uc.AppendLine(".ssh/authorized_keys", pub)
			if err != nil {
				uc.Close()
				return err
			}
			if added {
				fmt.Fprintf(out, "added the key to ~/.ssh/authorized_keys of %s\n", t.User)
			}
		} else if err := uc.Run("umask 077 && mkdir -p .ssh && { grep -qxF "+sshdump.Quote(pub)+" .ssh/authorized_keys 2>/dev/null || cat >> .ssh/authorized_keys; }",
			strings.NewReader(pub+"\n")); err != nil {
			uc.Close()
			return err
		}
		uc.Close()
		if c, err = dial([]ssh.AuthMethod{ssh.PublicKeys(signer)}); err != nil {
			return fmt.Errorf("the key was installed, but logging in with it fails: %w (does the server read ~/.ssh/authorized_keys?)", err)
		}
		fmt.Fprintf(out, "%s@%s accepts %s\n", t.User, hostport, cfg.SSHKey)
	}
	defer c.Close()
	base := t.Dir
	if base == "" {
		base = cfg.Path
	}
	if err := checkWritable(c, base, out); err != nil {
		return err
	}
	if !pinned {
		if err := recordHostKey(cfg.KnownHosts, hostport, key); err != nil {
			return err
		}
		fmt.Fprintf(out, "recorded the host key of %s in %s\n", hostport, cfg.KnownHosts)
	}
	return nil
}

// checkWritable makes the dump directory and a file in it, and removes
// the file.
func checkWritable(c *sshdump.Conn, dir string, out io.Writer) error {
	probe := path.Join(dir, fmt.Sprintf(".gokdump-propagate-%d", os.Getpid()))
	if !c.HasSFTP() {
		q := sshdump.Quote
		if err := c.Run(fmt.Sprintf("mkdir -p -- %s && : > %s && rm -f -- %s", q(dir), q(probe), q(probe)), nil); err != nil {
			return fmt.Errorf("the dump directory %s cannot be written: %w", dir, err)
		}
		fmt.Fprintf(out, "%s is writable (no SFTP on the server: dumps will be flattened streams, for gokdump savecore)\n", dir)
		return nil
	}
	if err := c.MkdirAll(dir); err != nil {
		return fmt.Errorf("the dump directory: %w", err)
	}
	f, err := c.Create(probe)
	if err != nil {
		return fmt.Errorf("the dump directory %s cannot be written: %w", dir, err)
	}
	_, werr := f.Write([]byte("gokdump\n"))
	f.Close()
	if err := errors.Join(werr, c.Remove(probe)); err != nil {
		return fmt.Errorf("the dump directory %s: %w", dir, err)
	}
	free := "free space unknown"
	if n, err := c.FreeSpace(dir); err == nil {
		free = fmt.Sprintf("%.1f GiB free", float64(n)/(1<<30))
	}
	fmt.Fprintf(out, "%s is writable (%s)\n", dir, free)
	return nil
}

// recordHostKey appends the host key line for hostport to the known_hosts
// file, 0644, its directory made 0755 if missing.
func recordHostKey(file, hostport string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	kf, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(kf, knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key))
	return errors.Join(err, kf.Close())
}
