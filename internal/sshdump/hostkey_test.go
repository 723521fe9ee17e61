package sshdump

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newKey(t testing.TB, rsaKey bool) ssh.PublicKey {
	var s ssh.Signer
	var err error
	if rsaKey {
		k, _ := rsa.GenerateKey(rand.Reader, 1024)
		s, err = ssh.NewSignerFromKey(k)
	} else {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		s, err = ssh.NewSignerFromKey(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey()
}

func TestHostKeys(t *testing.T) {
	ed, rs, other, revoked := newKey(t, false), newKey(t, true), newKey(t, false), newKey(t, false)
	data := knownhosts.Line([]string{"dumps.example.com"}, ed) + "\n" +
		knownhosts.Line([]string{"[dumps.example.com]:2222"}, rs) + "\n" +
		"@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(revoked))) + "\n"
	hk, err := ParseHostKeys("/etc/gokdump/known_hosts", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := hk.Algorithms("dumps.example.com:22"); !slices.Equal(got, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("port 22: %v", got)
	}
	if got := hk.Algorithms("dumps.example.com:2222"); !slices.Equal(got, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}) {
		t.Errorf("port 2222: %v", got)
	}
	if got := hk.Algorithms("other.example.com:22"); len(got) != 0 {
		t.Errorf("unknown host: %v", got)
	}
	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 22}
	cb := hk.Callback()
	if err := cb("dumps.example.com:22", addr, ed); err != nil {
		t.Errorf("the pinned key: %v", err)
	}
	err = cb("dumps.example.com:22", addr, other)
	if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(ed)) ||
		!strings.Contains(err.Error(), ssh.FingerprintSHA256(other)) || !strings.Contains(err.Error(), "/etc/gokdump/known_hosts:1") {
		t.Errorf("another key: %v", err)
	}
	if err := cb("dumps.example.com:22", addr, revoked); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked key: %v", err)
	}
	if err := cb("other.example.com:22", addr, ed); !errors.Is(err, ErrHostKeyUnknown) {
		t.Errorf("an unknown host: %v", err)
	}
	if _, err := ParseHostKeys("x", []byte("not a known_hosts line\n")); err == nil {
		t.Error("garbage accepted")
	}
}

func FuzzParseHostKeys(f *testing.F) {
	f.Add([]byte("dumps.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBOrTvuOsFmq/DNtEsG3fIP1MGG1kp5hV8P5k4rZmRZ+\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hk, err := ParseHostKeys("fuzz", b)
		if err != nil {
			return
		}
		hk.Algorithms("dumps.example.com:22")
	})
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"/var/crash": "'/var/crash'", "it's": `'it'\''s'`, "": "''"} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
