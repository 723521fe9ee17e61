package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/netup"
	"golang.org/x/crypto/ssh"
)

// netMachine is fakeMachine with a virtio NIC (enp0s3) that routes to
// every address, and the NFS client's and virtio_net's modules.
func netMachine(t *testing.T) *fakeMachine {
	m := newFakeMachine(t)
	pci := "devices/pci0000:00/0000:00:03.0"
	m.link(pci+"/driver", "bus/pci/drivers/virtio-pci") // the disk's driver too
	m.driver(pci+"/virtio0", "virtio", "virtio_net", "virtio_net")
	nd := pci + "/virtio0/net/enp0s3"
	m.write(filepath.Join(m.sys, nd, "address"), "52:54:00:aa:bb:cc\n")
	m.link(nd+"/device", pci+"/virtio0")
	m.link("class/net/enp0s3", nd)
	kdir := filepath.Join(m.modules, runningKVer)
	dep := filepath.Join(kdir, "modules.dep")
	extra := `kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko:
kernel/fs/nfs/nfs.ko: kernel/net/sunrpc/sunrpc.ko
kernel/fs/nfs/nfsv4.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko
kernel/fs/nfs/nfsv3.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko
kernel/net/sunrpc/sunrpc.ko:
`
	m.write(dep, readString(t, dep)+extra)
	for _, l := range strings.Split(extra, "\n") {
		if p, _, ok := strings.Cut(l, ":"); ok {
			m.write(filepath.Join(kdir, p), "module "+p)
		}
	}
	buildLookup = func(host string) ([]netip.Addr, error) {
		if host == "dumps.example.com" {
			return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil
		}
		return nil, fmt.Errorf("no such host %s", host)
	}
	buildRoute = func(netip.Addr) (string, error) { return "enp0s3", nil }
	t.Cleanup(func() { buildLookup, buildRoute = nil, routeInterface })
	return m
}

// sshFiles writes a key and a known_hosts pinning hostport.
func sshFiles(t *testing.T, dir, hostport string) (key, kh string) {
	_, priv, _ := ed25519.GenerateKey(nil)
	b, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	_, hostPriv, _ := ed25519.GenerateKey(nil)
	hs, _ := ssh.NewSignerFromKey(hostPriv)
	kh = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(strings.TrimSpace(hostport)+" "+string(ssh.MarshalAuthorizedKey(hs.PublicKey()))), 0o644); err != nil {
		t.Fatal(err)
	}
	return key, kh
}

func TestBuildNetworkTargets(t *testing.T) {
	m := netMachine(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	key, kh := sshFiles(t, dir, "dumps.example.com")
	cfg := m.config(fmt.Sprintf("target = \"ssh://kdump@dumps.example.com/var/crash\"\nssh_key = %q\nknown_hosts = %q\n", key, kh))

	var stdout, stderr strings.Builder
	out := filepath.Join(dir, "img")
	code := run([]string{"build", "-o", out, "--init", m.initPath, "--arch", "amd64", "--compress", "none", "--config", cfg}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	say := stderr.String()
	for _, want := range []string{
		"host-only: target ssh://kdump@dumps.example.com/var/crash (192.0.2.7) is reached through enp0s3",
		"virtio_net: driver virtio_net of devices/pci0000:00/0000:00:03.0/virtio0 (enp0s3)",
		"interface enp0s3, MAC 52:54:00:aa:bb:cc (virtio_net)",
		"ssh: key " + key + " (ssh-ed25519 SHA256:",
		"warning: " + out + " holds a secret key",
	} {
		if !strings.Contains(say, want) {
			t.Errorf("build output lacks %q:\n%s", want, say)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("image %v %v, want 0600", st, err)
	}
	b, _ := os.ReadFile(out)
	files := archiveFiles(t, b)
	k, ok := files[key]
	if !ok || k.Mode&0o777 != 0o600 {
		t.Fatalf("key not packed 0600: %v", k)
	}
	if _, ok := files[kh]; !ok {
		t.Errorf("known_hosts not packed")
	}
	r, ok := files[netup.RecordPath]
	if !ok {
		t.Fatal("no interface record")
	}
	rb := make([]byte, r.FileSize)
	r.ReadAt(rb, 0)
	rec, err := netup.ParseRecord(rb)
	if err != nil || !slices.Equal(rec.MACs(), []string{"52:54:00:aa:bb:cc"}) {
		t.Errorf("record %+v, %v", rec, err)
	}

	// NFS: the client's modules come along.
	mods, say, err := m.build("--config", m.config("target = \"dumps.example.com:/export/crash\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"virtio_net", "nfsv4", "nfsv3", "sunrpc"} {
		if !slices.Contains(mods, want) {
			t.Errorf("nfs image lacks %s: %v\n%s", want, mods, say)
		}
	}
	// Generic: a broad NIC set, whichever the tree has.
	mods, _, err = m.build("--no-hostonly", "--config", m.config("target = \"nfs://dumps.example.com/export\"\n"))
	if err != nil || !slices.Contains(mods, "virtio_net") || !slices.Contains(mods, "nfsv4") {
		t.Errorf("generic nfs image: %v, %v", mods, err)
	}

	// No host key pinned for the server: refused, never trust on first use.
	other := m.config(fmt.Sprintf("target = \"ssh://kdump@dumps.example.com:2222/var/crash\"\nssh_key = %q\nknown_hosts = %q\n", key, kh))
	if _, say, err := m.build("--config", other); err == nil || !strings.Contains(say, "pins no host key for [dumps.example.com]:2222") {
		t.Errorf("no pinned key: %v\n%s", err, say)
	}
	// A key others can read is refused.
	os.Chmod(key, 0o644)
	if _, say, err := m.build("--config", cfg); err == nil || !strings.Contains(say, "readable by others") {
		t.Errorf("world-readable key: %v\n%s", err, say)
	}
	os.Chmod(key, 0o600)
	// A server the route leads nowhere from.
	buildRoute = func(netip.Addr) (string, error) { return "lo", nil }
	m.link("class/net/lo", "devices/virtual/net/lo")
	os.MkdirAll(filepath.Join(m.sys, "devices/virtual/net/lo"), 0o755)
	if _, say, err := m.build("--config", cfg); err == nil || !strings.Contains(say, "through no network device") {
		t.Errorf("loopback route: %v\n%s", err, say)
	}
}

// TestStatusNetworkTarget: status checks an ssh target's key and pinned
// host key on this machine, and never looks for a block device.
func TestStatusNetworkTarget(t *testing.T) {
	dir := t.TempDir()
	key, kh := sshFiles(t, dir, "dumps.example.com")
	p := filepath.Join(dir, "gokdump.toml")
	write := func(target string) {
		os.WriteFile(p, []byte(fmt.Sprintf("target = %q\nssh_key = %q\nknown_hosts = %q\n", target, key, kh)), 0o644)
	}
	write("ssh://kdump@dumps.example.com/var/crash")
	st := checkSetup(&configFlag{path: p, set: true})
	if len(st.Problems) != 0 || st.TargetError != "" {
		t.Errorf("problems %q, target error %q", st.Problems, st.TargetError)
	}
	write("ssh://kdump@other.example.com/var/crash")
	st = checkSetup(&configFlag{path: p, set: true})
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "pins no host key") {
		t.Errorf("problems %q", st.Problems)
	}
	os.Remove(key)
	write("ssh://kdump@dumps.example.com/var/crash")
	st = checkSetup(&configFlag{path: p, set: true})
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "gokdump propagate") {
		t.Errorf("problems %q", st.Problems)
	}
	write("nfs://dumps.example.com/export")
	if st = checkSetup(&configFlag{path: p, set: true}); len(st.Problems) != 0 {
		t.Errorf("nfs: problems %q", st.Problems)
	}
	// s3: the credentials and the CA file build would pack.
	creds, ca := filepath.Join(dir, "s3-credentials"), filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, testCAPEM(t), 0o644)
	s3 := func() []string {
		os.WriteFile(p, fmt.Appendf(nil, "target = \"s3://dumps/x\"\ns3_endpoint = \"s3.example.com\"\ns3_credentials = %q\nca_file = %q\n", creds, ca), 0o644)
		return checkSetup(&configFlag{path: p, set: true}).Problems
	}
	if ps := s3(); len(ps) != 1 || !strings.Contains(ps[0], "s3 target s3://dumps/x: s3_credentials:") {
		t.Errorf("s3 without credentials: problems %q", ps)
	}
	os.WriteFile(creds, []byte("aws_access_key_id = AK\naws_secret_access_key = SK\n"), 0o600)
	if ps := s3(); len(ps) != 0 {
		t.Errorf("s3: problems %q", ps)
	}
}

// TestBuildS3Target: an s3 target's image holds the credentials (0600)
// and the CA file, reaches the endpoint's NIC, and refuses credentials
// others can read or that do not parse.
func TestBuildS3Target(t *testing.T) {
	m := netMachine(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "s3-credentials")
	os.WriteFile(creds, []byte("[default]\naws_access_key_id = AKIAEXAMPLEKEY\naws_secret_access_key = SECRET\n"), 0o600)
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, testCAPEM(t), 0o644)
	cfg := m.config(fmt.Sprintf("target = \"s3://dumps/fleet\"\ns3_endpoint = \"dumps.example.com:9000\"\ns3_credentials = %q\nca_file = %q\n", creds, ca))
	var stdout, stderr strings.Builder
	out := filepath.Join(dir, "img")
	if code := run([]string{"build", "-o", out, "--init", m.initPath, "--arch", "amd64", "--compress", "none", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	say := stderr.String()
	for _, want := range []string{
		"host-only: target s3://dumps/fleet (192.0.2.7) is reached through enp0s3",
		"s3: credentials " + creds + " (access key AKIA******EKEY) packed 0600, CAs of " + ca,
	} {
		if !strings.Contains(say, want) {
			t.Errorf("build output lacks %q:\n%s", want, say)
		}
	}
	if strings.Contains(say, "SECRET") {
		t.Error("the build printed the secret")
	}
	b, _ := os.ReadFile(out)
	files := archiveFiles(t, b)
	if f, ok := files[creds]; !ok || f.Mode&0o777 != 0o600 {
		t.Errorf("credentials not packed 0600: %v", f)
	}
	if _, ok := files[ca]; !ok {
		t.Errorf("ca_file not packed")
	}
	os.Chmod(creds, 0o644)
	if _, say, err := m.build("--config", cfg); err == nil || !strings.Contains(say, "readable by others") {
		t.Errorf("world-readable credentials: %v\n%s", err, say)
	}
	os.Chmod(creds, 0o600)
	os.WriteFile(creds, []byte("aws_access_key_id = AK\n"), 0o600)
	if _, say, err := m.build("--config", cfg); err == nil || !strings.Contains(say, "needs aws_access_key_id and aws_secret_access_key") {
		t.Errorf("credentials without a secret: %v\n%s", err, say)
	}
}

// testCAPEM is a self-signed CA certificate, as a ca_file holds.
func testCAPEM(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestInitHasS3: an init built with -tags nos3 is refused for an s3
// target; the default one, and a file that is no Go binary, are not.
func TestInitHasS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the capture init twice")
	}
	dir := t.TempDir()
	for _, tags := range []string{"", "nos3"} {
		out := filepath.Join(dir, "init-"+tags)
		cmd := exec.Command("go", "build", "-tags="+tags, "-o", out, "./initramfs")
		cmd.Dir, cmd.Env = repoRoot, append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		err := initHasS3(out)
		if (tags == "nos3") != (err != nil) {
			t.Errorf("tags %q: %v", tags, err)
		}
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("#!/bin/sh\n"), 0o755)
	if err := initHasS3(junk); err != nil {
		t.Errorf("not a Go binary: %v", err)
	}
}

// TestFindS3Init: the init with the S3 client is found beside gokdump as
// gokdump-init-s3 and under ../lib/gokdump/init-s3, and only if it is a
// usable init.
func TestFindS3Init(t *testing.T) {
	m := newFakeMachine(t)
	elfInit, err := os.ReadFile(m.initPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "gokdump")
	os.MkdirAll(filepath.Join(dir, "lib", "gokdump"), 0o755)
	os.MkdirAll(filepath.Dir(exe), 0o755)
	if _, err := os.Stat("/usr/lib/gokdump/init-s3"); err == nil {
		t.Skip("this machine has /usr/lib/gokdump/init-s3")
	}
	if got := findS3Init(exe, "amd64"); got != "" {
		t.Errorf("none there: %q", got)
	}
	lib := filepath.Join(dir, "lib", "gokdump", "init-s3")
	os.WriteFile(lib, elfInit, 0o755)
	if got := findS3Init(exe, "amd64"); got != lib {
		t.Errorf("under lib: %q", got)
	}
	beside := filepath.Join(dir, "bin", "gokdump-init-s3")
	os.WriteFile(beside, []byte("not an ELF"), 0o755)
	if got := findS3Init(exe, "amd64"); got != lib {
		t.Errorf("an unusable one beside gokdump is skipped: %q", got)
	}
	os.WriteFile(beside, elfInit, 0o755)
	if got := findS3Init(exe, "amd64"); got != beside {
		t.Errorf("beside: %q", got)
	}
	// Another architecture's: in ARCH/ beside gokdump (make's bin/arm64/),
	// the host's gokdump-init-s3 skipped as the wrong machine.
	arm := filepath.Join(dir, "bin", "arm64", "gokdump-init-s3")
	os.MkdirAll(filepath.Dir(arm), 0o755)
	os.WriteFile(arm, mustRead(t, writeTestInitFor(t, "arm64")), 0o755)
	if got := findS3Init(exe, "arm64"); got != arm {
		t.Errorf("arm64: %q, want %s", got, arm)
	}
}
