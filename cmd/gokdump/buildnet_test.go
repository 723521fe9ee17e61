package main

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
		"warning: " + out + " holds the ssh key",
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
}
