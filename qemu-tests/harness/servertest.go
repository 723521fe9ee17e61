package harness

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// The test servers, for tests: started in the test's temporary
// directory, stopped at its end, their logs shown when it failed.

// needServers skips (or, for a missing package in strict mode, fails) a
// test that cannot run the servers here.
func needServers(t testing.TB, bin, pkg string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		fixture.Missing(t, "no %s: run scripts/install-deps (%s)", bin, pkg)
	}
	if os.Geteuid() != 0 {
		t.Skip("the test servers run as root")
	}
}

// SSHDFor starts sshd for t.
func SSHDFor(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	needServers(t, "/usr/sbin/sshd", "openssh-server")
	s, err := StartSSHD(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	return s
}

// GaneshaFor starts nfs-ganesha serving export for t.
func GaneshaFor(t testing.TB, export string) *Ganesha {
	t.Helper()
	needServers(t, "/usr/bin/ganesha.nfsd", "nfs-ganesha, nfs-ganesha-vfs")
	g, err := StartGanesha(t.TempDir(), export)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			l := strings.Split(strings.TrimRight(g.Log(), "\n"), "\n")
			t.Logf("ganesha log (tail):\n%s", strings.Join(l[max(0, len(l)-40):], "\n"))
		}
	})
	return g
}

// KeyShown reports whether text holds a line of the private key in
// keyFile: the key must never be printed.
func KeyShown(t testing.TB, keyFile, text string) bool {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if len(l) > 20 && !strings.HasPrefix(l, "-----") && strings.Contains(text, l) {
			return true
		}
	}
	return false
}

// VersityFor starts versitygw for t, with a bucket unless bucket is "",
// and a certificate for ips too; it is stopped at the test's end. A
// missing versitygw skips the test, or fails it in strict mode (CI).
func VersityFor(t testing.TB, bucket string, ips ...net.IP) *Versity {
	t.Helper()
	if _, err := VersityBinary(); err != nil {
		fixture.Missing(t, "%v", err)
	}
	v, err := StartVersity(t.TempDir(), ips...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("versitygw log:\n%s", v.Log())
		}
	})
	if bucket != "" {
		if err := v.MakeBucket(bucket); err != nil {
			t.Fatal(err)
		}
	}
	return v
}
