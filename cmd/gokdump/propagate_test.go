package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestPropagate runs gokdump propagate against OpenSSH's sshd on
// 127.0.0.1 (the harness's throwaway server), logging in the first time
// with a key the server already accepts, as a user with ssh-agent or
// ~/.ssh/id_* would.
func TestPropagate(t *testing.T) {
	home := t.TempDir()
	s := harness.SSHDFor(t, harness.SSHDOptions{Home: home})
	etc := t.TempDir()
	dumps := filepath.Join(t.TempDir(), "crash")
	cfg := config.Default()
	cfg.Target = fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", s.User, s.Port, dumps)
	cfg.SSHKey = filepath.Join(etc, "gokdump", "id_ed25519")
	cfg.KnownHosts = filepath.Join(etc, "gokdump", "known_hosts")
	f := &propagateFlags{identity: s.ClientKey, yes: true, timeout: 10 * time.Second}
	t.Setenv("SSH_AUTH_SOCK", "")

	var out strings.Builder
	if err := runPropagate(&cfg, f, strings.NewReader(""), &out); err != nil {
		t.Fatalf("%v\n%s\nsshd:\n%s", err, out.String(), s.Log())
	}
	say := out.String()
	for _, want := range []string{"created key " + cfg.SSHKey, "not pinned in", "added the key to ~/.ssh/authorized_keys",
		"accepts " + cfg.SSHKey, dumps + " is writable", "recorded the host key of 127.0.0.1:"} {
		if !strings.Contains(say, want) {
			t.Errorf("output lacks %q:\n%s", want, say)
		}
	}
	if st, err := os.Stat(cfg.SSHKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key %v %v", st, err)
	}
	pub, _ := os.ReadFile(cfg.SSHKey + ".pub")
	ak, _ := os.ReadFile(filepath.Join(home, ".ssh", "authorized_keys"))
	if len(pub) == 0 || strings.Count(string(ak), strings.Fields(string(pub))[1]) != 1 {
		t.Errorf("authorized_keys %q does not hold the public key %q once", ak, pub)
	}
	kh, _ := os.ReadFile(cfg.KnownHosts)
	if want := fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, s.HostKey); strings.TrimSpace(string(kh)) != want {
		t.Errorf("known_hosts %q, want %q", kh, want)
	}
	if ents, err := os.ReadDir(dumps); err != nil || len(ents) != 0 {
		t.Errorf("dump directory %v (%v), want it made and empty", ents, err)
	}

	// Again: nothing to do twice.
	out.Reset()
	f.identity = ""
	if err := runPropagate(&cfg, f, strings.NewReader(""), &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "already accepts") || !strings.Contains(out.String(), "is the one pinned") {
		t.Errorf("second run:\n%s", out.String())
	}
	ak, _ = os.ReadFile(filepath.Join(home, ".ssh", "authorized_keys"))
	kh2, _ := os.ReadFile(cfg.KnownHosts)
	if strings.Count(string(ak), strings.Fields(string(pub))[1]) != 1 || string(kh2) != string(kh) {
		t.Errorf("the second run changed authorized_keys or known_hosts")
	}

	// A server whose key changed: refused, nothing recorded.
	other := fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBOrTvuOsFmq/DNtEsG3fIP1MGG1kp5hV8P5k4rZmRZ+\n", s.Port)
	os.WriteFile(cfg.KnownHosts, []byte(other), 0o644)
	out.Reset()
	err := runPropagate(&cfg, f, strings.NewReader(""), &out)
	if err == nil || !strings.Contains(err.Error(), "host key changed") {
		t.Errorf("changed host key: %v\n%s", err, out.String())
	}
	// Unknown key, not a terminal, no --yes: asked, and "no" is the answer.
	os.Remove(cfg.KnownHosts)
	f.yes = false
	out.Reset()
	err = runPropagate(&cfg, f, strings.NewReader("n\n"), &out)
	if err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("refused host key: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(cfg.KnownHosts); err == nil {
		t.Error("a refused host key was recorded")
	}
}
