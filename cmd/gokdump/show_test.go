package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/crypto/ssh"
)

func TestShow(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gokdump.toml")
	if err := os.WriteFile(p, []byte("# test\ntarget = \"LABEL=DUMPS\"\nkeep = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runShow(&out, &configFlag{path: p, set: true}, "quiet gokdump.keep=7 gokdump.dump_level=1,31"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`target          = "LABEL=DUMPS"`, "# from " + p + ":2",
		"keep            = 7", "dump_level      = [1, 31]", "# from cmdline",
		`path            = "/var/crash"`, "# from default",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// One line per key, and one saying what capture_cpus = "auto" is here.
	if n := strings.Count(out.String(), "\n"); n != len(config.Keys())+1 {
		t.Errorf("%d lines, want one per key (%d) and one more:\n%s", n, len(config.Keys()), out.String())
	}
	if !strings.Contains(out.String(), "# capture_cpus: ") || !strings.Contains(out.String(), " on this machine (capture_cpus = \"auto\", from default: one per 32 GiB") {
		t.Errorf("output does not say what capture_cpus = \"auto\" is here:\n%s", out.String())
	}

	// On a machine of 256 GiB, "auto" is 8; a number needs no note.
	kexecFixture(t, map[string]string{"proc/meminfo": "MemTotal:  264000000 kB\n"})
	out.Reset()
	if err := runShow(&out, &configFlag{path: p, set: true}, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# capture_cpus: 8 on this machine (") {
		t.Errorf("256 GiB: output lacks capture_cpus 8:\n%s", out.String())
	}
	out.Reset()
	if err := runShow(&out, &configFlag{path: p, set: true}, "gokdump.capture_cpus=3"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "capture_cpus    = 3 ") || strings.Contains(out.String(), "# capture_cpus") {
		t.Errorf("capture_cpus = 3:\n%s", out.String())
	}

	// A missing default file shows the defaults; a missing file named on
	// the command line is an error.
	out.Reset()
	if err := runShow(&out, &configFlag{path: filepath.Join(dir, "none.toml")}, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "from "+dir) || !strings.Contains(out.String(), "# from default") {
		t.Errorf("missing file output:\n%s", out.String())
	}
	out.Reset()
	if err := runShow(&out, &configFlag{path: filepath.Join(dir, "none.toml"), set: true}, ""); err == nil || out.Len() != 0 {
		t.Errorf("missing explicit file: %v, output %q", err, out.String())
	}

	// An invalid combination is printed, then reported.
	out.Reset()
	err := runShow(&out, &configFlag{path: p, set: true}, "gokdump.failure_action=fallback gokdump.bogus=1")
	if err == nil || !strings.Contains(err.Error(), "failure_action") || !strings.Contains(err.Error(), "gokdump.bogus: unknown key") {
		t.Errorf("error = %v", err)
	}
	if !strings.Contains(out.String(), `failure_action  = "fallback"`) {
		t.Errorf("invalid config not printed:\n%s", out.String())
	}

	// A bad file is an error naming its line, with nothing printed.
	if err := os.WriteFile(p, []byte("keep = 1\ndump_level = 99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runShow(&out, &configFlag{path: p, set: true}, "")
	if err == nil || !strings.Contains(err.Error(), p+":2: dump_level") || out.Len() != 0 {
		t.Errorf("error = %v, output %q", err, out.String())
	}
}

// TestShowSecrets: a password in a target never shows, in the values or
// in the errors; the ssh key shows as its fingerprint.
func TestShowSecrets(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	_, priv, _ := ed25519.GenerateKey(nil)
	pem, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pemEncode(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "gokdump.toml")
	os.WriteFile(p, []byte("target = \"ssh://kdump@dumps.example.com/var/crash\"\nssh_key = \""+key+"\"\n"), 0o644)
	var out bytes.Buffer
	err = runShow(&out, &configFlag{path: p, set: true}, "gokdump.fallback_target=ssh://u:hunter2@h/x")
	all := out.String() + fmt.Sprint(err)
	if strings.Contains(all, "hunter2") || !strings.Contains(all, "xxxxx") {
		t.Errorf("the password shows or is not masked:\n%s", all)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	if !strings.Contains(out.String(), "# ssh_key: ssh-ed25519 "+ssh.FingerprintSHA256(signer.PublicKey())) {
		t.Errorf("no key fingerprint:\n%s", out.String())
	}
	if strings.Contains(out.String(), "PRIVATE") {
		t.Errorf("the key shows:\n%s", out.String())
	}
	os.WriteFile(p, []byte("target = \"ssh://u:hunter2@h/x\"\n"), 0o644)
	out.Reset()
	err = runShow(&out, &configFlag{path: p, set: true}, "")
	if err == nil || strings.Contains(err.Error()+out.String(), "hunter2") {
		t.Errorf("a password in the file: %v\n%s", err, out.String())
	}
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

func TestShowCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	p := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(p, []byte("compress = \"lz4\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"show", "--config", p}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "gokdump show: config: "+p+":1: compress") {
		t.Errorf("stderr %q", stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"show", "--config", p + ".typo"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("--config of a missing file: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"show", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}
