package collect

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// The ssh target against a real OpenSSH sshd on 127.0.0.1 (the harness
// starts it with a throwaway config): everything but the capture
// kernel's network, which netWorld fakes.

// netWorld is newWorld with a network that is already up, and the real
// ssh client.
func netWorld(t *testing.T, core string, disks ...*disk) (*Env, *world, *atomic.Int32) {
	env, w := newWorld(t, core, disks...)
	dials := &atomic.Int32{}
	env.ReadLog = logOf(panicLog...)
	env.NetUp = func(cfg *config.Config, deadline time.Time) error {
		env.Console.Logf("network: (test) up")
		return nil
	}
	env.LookupIP = lookupIP
	env.DialSSH = func(cfg *config.Config, t config.Target, timeout time.Duration) (Remote, error) {
		dials.Add(1)
		return dialSSH(cfg, t, timeout)
	}
	return env, w, dials
}

// sshConfig is a config whose target is s, dumps under dir, with s's
// key and host key pinned for 127.0.0.1:port (port 0: s's).
func sshConfig(t *testing.T, s *harness.SSHD, dir string, port int, set func(*config.Config)) *config.Config {
	if port == 0 {
		port = s.Port
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(s.KnownHosts("127.0.0.1", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	return testConfig(func(c *config.Config) {
		c.Target = fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", s.User, port, dir)
		c.SSHKey, c.KnownHosts = s.ClientKey, kh
		c.DumpLevel = []filter.Level{1}
		c.DeviceTimeout = 5 * time.Second
		if set != nil {
			set(c)
		}
	})
}

// noKey checks that the console never shows the private key.
func noKey(t *testing.T, s *harness.SSHD, console string) {
	t.Helper()
	if harness.KeyShown(t, s.ClientKey, console) {
		t.Fatal("the console shows a line of the private key")
	}
}

func TestSSHTargetSFTP(t *testing.T) {
	s := harness.SSHDFor(t, harness.SSHDOptions{})
	env, w, _ := netWorld(t, testCore(t, 600))
	dumps := filepath.Join(t.TempDir(), "crash")
	// An earlier dump that did not finish is reported.
	old := filepath.Join(dumps, "2025-01-03-00:00:00")
	os.MkdirAll(old, 0o700)
	os.WriteFile(filepath.Join(old, crashdir.VMCoreIncomplete), []byte("old"), 0o600)
	cfg := sshConfig(t, s, dumps, 0, nil)
	res := Capture(env, cfg)
	if res.Status != StatusSaved {
		t.Fatalf("result %+v", res)
	}
	want := filepath.Join(dumps, "2025-11-27-12:20:00", crashdir.VMCore)
	if res.Path != want {
		t.Errorf("path %q, want %q", res.Path, want)
	}
	con := w.con.String()
	if !strings.Contains(con, "gokdump: LEFTOVER "+filepath.Join(old, crashdir.VMCoreIncomplete)+" state=incomplete bytes=3") {
		t.Errorf("no LEFTOVER line for the earlier dump")
	}
	st, err := os.Stat(want)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != res.Bytes {
		t.Fatalf("vmcore %v (%v), reported %d bytes", st, err, res.Bytes)
	}
	if st, _ := os.Stat(filepath.Dir(want)); st == nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dump dir: %v", st)
	}
	if st, err := os.Stat(filepath.Join(filepath.Dir(want), crashdir.DmesgFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v", crashdir.DmesgFile, st, err)
	}
	d, err := anydump.Open(want)
	if err != nil {
		t.Fatalf("the dump written over SFTP does not open: %v", err)
	}
	defer d.Close()
	if d.Format != anydump.Kdump || d.Incomplete {
		t.Errorf("dump %s, incomplete %v", d.Format, d.Incomplete)
	}
	noKey(t, s, con)
}

// TestSSHHostKeyChanged: a server whose host key is not the pinned one
// gets nothing, and is not asked twice.
func TestSSHHostKeyChanged(t *testing.T) {
	s := harness.SSHDFor(t, harness.SSHDOptions{})
	other := harness.SSHDFor(t, harness.SSHDOptions{}) // another host key
	env, w, dials := netWorld(t, testCore(t, 100))
	dumps := filepath.Join(t.TempDir(), "crash")
	cfg := sshConfig(t, other, dumps, s.Port, nil) // other's key pinned, s answers
	res := Capture(env, cfg)
	if res.Status != StatusFailed || !strings.Contains(res.Reason, "host key changed") || !strings.Contains(res.Reason, "nothing was sent") {
		t.Fatalf("result %+v", res)
	}
	// Both fingerprints are named, so that someone can compare them.
	for _, k := range []string{s.HostKey, other.HostKey} {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Reason, ssh.FingerprintSHA256(pk)) {
			t.Errorf("the reason does not name %s", ssh.FingerprintSHA256(pk))
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a wrong host key is not retried", n)
	}
	if _, err := os.Stat(dumps); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dump directory exists on the server: %v", err)
	}
	if strings.Contains(s.Log(), "Accepted publickey") {
		t.Errorf("the server saw a login:\n%s", s.Log())
	}
	// No key pinned at all: the same, never trust on first use.
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o644)
	cfg.KnownHosts = empty
	res = Capture(env, cfg)
	if res.Status != StatusFailed || !strings.Contains(res.Reason, "host key unknown") {
		t.Fatalf("result with no key pinned %+v", res)
	}
	noKey(t, s, w.con.String())
}

// TestSSHServerDown: nothing listens; the capture retries with backoff
// until device_timeout, then saves on the fallback disk.
func TestSSHServerDown(t *testing.T) {
	s := harness.SSHDFor(t, harness.SSHDOptions{})
	port := s.Port
	s.Stop()
	spare := dirDisk(t, "vdb", "SPARE")
	env, w, dials := netWorld(t, testCore(t, 100), spare)
	cfg := sshConfig(t, s, "/var/crash", port, func(c *config.Config) {
		c.DeviceTimeout = 6 * time.Second
		c.FailureAction = config.ActionFallback
		c.FallbackTarget = "LABEL=SPARE"
	})
	t0 := time.Now()
	res := Capture(env, cfg)
	if res.Status != StatusSaved || !strings.HasPrefix(res.Path, "/var/crash/") {
		t.Fatalf("result %+v", res)
	}
	if n := dials.Load(); n < 2 {
		t.Errorf("%d connections: no retry", n)
	}
	if el := time.Since(t0); el < 3*time.Second || el > 15*time.Second {
		t.Errorf("gave up after %v with device_timeout 6s", el)
	}
	con := w.con.String()
	for _, s := range []string{"trying again in 1s", "trying again in 2s", "connection refused", "trying the fallback target LABEL=SPARE"} {
		if !strings.Contains(con, s) {
			t.Errorf("console lacks %q", s)
		}
	}
	if _, err := os.Stat(filepath.Join(spare.dir, res.Path)); err != nil {
		t.Errorf("no dump on the fallback disk: %v", err)
	}
}

// TestSSHNoSFTP: a server without the SFTP subsystem gets the flattened
// stream through cat, which unflattens into a dump that opens.
func TestSSHNoSFTP(t *testing.T) {
	s := harness.SSHDFor(t, harness.SSHDOptions{NoSFTP: true})
	env, w, _ := netWorld(t, testCore(t, 600))
	dumps := filepath.Join(t.TempDir(), "crash")
	res := Capture(env, sshConfig(t, s, dumps, 0, nil))
	want := filepath.Join(dumps, "2025-11-27-12:20:00", FlatComplete)
	if res.Status != StatusSaved || res.Format != "kdump-flattened" || res.Path != want {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(w.con.String(), "no SFTP subsystem") {
		t.Errorf("the console does not say why the dump is flattened")
	}
	for _, f := range []string{FlatComplete, crashdir.DmesgFile} {
		st, err := os.Stat(filepath.Join(filepath.Dir(want), f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	if st, err := os.Stat(want); err != nil || st.Size() != res.Bytes {
		t.Fatalf("%s: %v, reported %d bytes", want, err, res.Bytes)
	}
	in, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), "vmcore")
	of, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := diskdump.Unflatten(in, of); err != nil {
		t.Fatalf("unflatten: %v", err)
	}
	of.Close()
	d, err := anydump.Open(out)
	if err != nil {
		t.Fatalf("the unflattened dump does not open: %v", err)
	}
	d.Close()

	// gokdump savecore takes the file as it takes a raw device.
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := harness.Gokdump(root)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if b, err := exec.Command(cli, "savecore", want, dst).CombinedOutput(); err != nil {
		t.Fatalf("gokdump savecore %s: %v\n%s", want, err, b)
	}
	d, err = anydump.Open(filepath.Join(dst, "2025-11-27-12:20:00", crashdir.VMCore))
	if err != nil {
		t.Fatalf("savecore's vmcore: %v", err)
	}
	d.Close()
}

// TestSSHServerFull: the server's filesystem fills: the dump is
// incomplete, flagged and readable, and the result says why.
func TestSSHServerFull(t *testing.T) {
	s := harness.SSHDFor(t, harness.SSHDOptions{})
	dumps := tmpfs(t, 256<<10)
	env, _, _ := netWorld(t, testCore(t, 2000))
	cfg := sshConfig(t, s, dumps, 0, func(c *config.Config) { c.Compress = config.CompressNone; c.Dmesg = false })
	res := Capture(env, cfg)
	if res.Status != StatusIncomplete || !strings.Contains(res.Reason, "full") {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasSuffix(res.Path, "/"+crashdir.VMCoreIncomplete) {
		t.Errorf("path %q", res.Path)
	}
	d, err := anydump.Open(res.Path)
	if err != nil {
		t.Fatalf("the incomplete dump does not open: %v", err)
	}
	defer d.Close()
	if !d.Incomplete {
		t.Errorf("the dump is not flagged incomplete")
	}
}

// TestNFSVersions: the versions are tried 4.1 first (see nfsVersions), a refused one
// gives way to the next at once, and mount_options can pin one.
func TestNFSVersions(t *testing.T) {
	env, w := newWorld(t, testCore(t, 100))
	mnt := t.TempDir()
	var tried []string
	refuse := map[string]bool{"4.2": true, "4.1": true}
	env.NetUp = func(*config.Config, time.Time) error { return nil }
	env.LookupIP = func(string, time.Duration) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil
	}
	env.MountNFS = func(source, opts string, timeout time.Duration) (string, error) {
		tried = append(tried, opts)
		v, _ := pinnedVers(opts)
		if source != "nfs.example.com:/export/crash" {
			return "", fmt.Errorf("source %q", source)
		}
		if refuse[v] {
			return "", unix.EPROTONOSUPPORT
		}
		return mnt, nil
	}
	cfg := testConfig(func(c *config.Config) { c.Target = "nfs://nfs.example.com/export/crash"; c.MountOptions = "noac" })
	res := Capture(env, cfg)
	if res.Status != StatusSaved || !strings.HasPrefix(res.Path, "/2025-11-27-12:20:00/") {
		t.Fatalf("result %+v", res)
	}
	want := []string{
		"vers=4.1,addr=192.0.2.7,proto=tcp,soft,timeo=600,retrans=2,noac",
		"vers=4.2,addr=192.0.2.7,proto=tcp,soft,timeo=600,retrans=2,noac",
		"vers=4.0,addr=192.0.2.7,proto=tcp,soft,timeo=600,retrans=2,noac",
	}
	if strings.Join(tried, "\n") != strings.Join(want, "\n") {
		t.Errorf("mounts tried:\n%s\nwant:\n%s", strings.Join(tried, "\n"), strings.Join(want, "\n"))
	}
	if u := w.Unmounted(); len(u) != 1 || u[0] != mnt {
		t.Errorf("unmounted %v", u)
	}
	if _, err := os.Stat(filepath.Join(mnt, res.Path)); err != nil {
		t.Error(err)
	}

	// Pinned to 3: nolock, and nothing else tried.
	tried = nil
	cfg.MountOptions = "vers=3"
	if res := Capture(env, cfg); res.Status != StatusSaved {
		t.Fatalf("vers=3: %+v", res)
	}
	if len(tried) != 1 || tried[0] != "vers=3,addr=192.0.2.7,proto=tcp,soft,timeo=600,retrans=2,nolock,mountproto=tcp" {
		t.Errorf("vers=3: tried %q", tried)
	}

	// A server that refuses connections is tried again (not with
	// another version), until device_timeout.
	tried = nil
	cfg.MountOptions = ""
	cfg.DeviceTimeout = 5 * time.Second
	env.MountNFS = func(source, opts string, timeout time.Duration) (string, error) {
		tried = append(tried, opts)
		return "", unix.ECONNREFUSED
	}
	res = Capture(env, cfg)
	if res.Status != StatusFailed || !strings.Contains(res.Reason, "connection refused") || len(tried) < 2 {
		t.Fatalf("refused: %+v after %d mounts", res, len(tried))
	}
	for _, o := range tried {
		if !strings.HasPrefix(o, "vers=4.1,") {
			t.Errorf("a refused connection moved on to %q", o)
		}
	}
}

// TestRetryBackoff: the waits double up to the cap and stop before the
// deadline.
func TestRetryBackoff(t *testing.T) {
	env, w := newWorld(t, testCore(t, 10))
	env.Clock = newStepClock()
	start := env.Clock.Now()
	tries := 0
	err := retry(env, "test", start.Add(40*time.Second), func(error) bool { return false }, func(time.Duration) error {
		tries++
		return errors.New("down")
	})
	if err == nil || !strings.Contains(err.Error(), "tries; device_timeout ran out") {
		t.Fatalf("err %v", err)
	}
	con := w.con.String()
	for _, want := range []string{"in 1s", "in 2s", "in 4s", "in 8s"} {
		if !strings.Contains(con, "trying again "+want) {
			t.Errorf("no wait %s:\n%s", want, con)
		}
	}
	// 1+2+4+8+8+8 = 31 s, then 9 s left: one more wait would leave less
	// than a try's worth.
	if tries != 7 {
		t.Errorf("%d tries, want 7", tries)
	}
	perm := errors.New("permanent")
	tries = 0
	err = retry(env, "test", start.Add(time.Hour), func(e error) bool { return e == perm }, func(time.Duration) error { tries++; return perm })
	if err != perm || tries != 1 {
		t.Errorf("a permanent error: %v after %d tries", err, tries)
	}
}
