package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/netup"
	"github.com/gokdump/gokdump/internal/sshdump"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// What host-only detection of a network target asks of this machine;
// tests replace them.
var (
	// buildLookup resolves a target's server.
	buildLookup = func(host string) ([]netip.Addr, error) {
		if a, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{a}, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	// buildRoute names the interface this machine reaches addr through.
	buildRoute = routeInterface
)

// detectNetTarget finds the NIC that routes to a network target's server
// and the modules behind it (and the NFS client's for an nfs target).
func detectNetTarget(t config.Target, stderr io.Writer) (required []string, nics []netup.Interface, err error) {
	if t.Kind == config.KindNFS {
		fmt.Fprintf(stderr, "  %s: the NFS client, for %s\n", strings.Join(builder.NFSModules, ", "), t)
		required = append(required, builder.NFSModules...)
	}
	ips, err := buildLookup(t.Host)
	if err != nil || len(ips) == 0 {
		return nil, nil, fmt.Errorf("host-only: resolve %s of target %s: %v (build with --no-hostonly for a generic image)", t.Host, t, err)
	}
	ifname, err := buildRoute(ips[0])
	if err != nil {
		return nil, nil, fmt.Errorf("host-only: route to %s (%s): %w", t.Host, ips[0], err)
	}
	fmt.Fprintf(stderr, "gokdump build: host-only: target %s (%s) is reached through %s\n", t, ips[0], ifname)
	det, err := builder.DetectNetDrivers(buildSys.SysDir, ifname)
	if err != nil {
		return nil, nil, fmt.Errorf("host-only: %w", err)
	}
	if len(det.NICs) == 0 {
		return nil, nil, fmt.Errorf("host-only: %s reaches %s through no network device (%s); build with --no-hostonly, or --drivers none --module NAME",
			t, ips[0], strings.Join(det.Notes, "; "))
	}
	required = append(required, printDrivers(stderr, &det.Detection)...)
	for _, n := range det.Notes {
		fmt.Fprintf(stderr, "  note: %s\n", n)
	}
	for _, nic := range det.NICs {
		fmt.Fprintf(stderr, "  interface %s, MAC %s (%s): the capture looks for this MAC\n", nic.Name, nic.MAC, nic.Driver)
		nics = append(nics, netup.Interface{Name: nic.Name, MAC: nic.MAC, Driver: nic.Driver, Target: t.String()})
	}
	return required, nics, nil
}

// netFiles adds what a network target needs to the image: the ssh key
// (0600) and the pinned host keys, checked to cover each ssh target. It
// reports whether the image holds a key. read reads a file of the
// machine (or of --sysroot's tree).
func netFiles(cfg *config.Config, opts *builder.Options, read func(string) ([]byte, error), stderr io.Writer) (holdsKey bool, err error) {
	if cfg == nil {
		return false, nil
	}
	var targets []config.Target
	for _, t := range cfg.NetworkTargets() {
		if t.Kind == config.KindSSH {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return false, nil
	}
	key, err := read(cfg.SSHKey)
	if err != nil {
		return false, fmt.Errorf("ssh_key: %w (gokdump propagate creates it)", err)
	}
	signer, err := sshdump.ParseSigner(cfg.SSHKey, key)
	if err != nil {
		return false, err
	}
	kh, err := read(cfg.KnownHosts)
	if err != nil {
		return false, fmt.Errorf("known_hosts: %w (gokdump propagate records the server's key)", err)
	}
	hk, err := sshdump.ParseHostKeys(cfg.KnownHosts, kh)
	if err != nil {
		return false, err
	}
	for _, t := range targets {
		if len(hk.Algorithms(t.HostPort())) == 0 {
			return false, fmt.Errorf("%s pins no host key for %s (target %s): gokdump propagate records it; the capture never trusts a key it does not know",
				cfg.KnownHosts, knownhosts.Normalize(t.HostPort()), t)
		}
	}
	opts.Extra = append(opts.Extra,
		builder.File{Path: cfg.SSHKey, Data: key, Mode: 0o600},
		builder.File{Path: cfg.KnownHosts, Data: kh, Mode: 0o644})
	fmt.Fprintf(stderr, "gokdump build: ssh: key %s (%s %s) and the host keys of %s packed\n",
		cfg.SSHKey, signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), cfg.KnownHosts)
	return true, nil
}

// warnKeyDir warns when the directory of an image holding a key can be
// read by anyone: the image itself is 0600, but copies, backups and
// the next build's temporary file sit there too.
func warnKeyDir(out string, stderr io.Writer) {
	dir := filepath.Dir(out)
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o004 != 0 {
		fmt.Fprintf(stderr, "gokdump build: warning: %s holds a secret key (ssh or s3); the image is 0600, but its directory %s is world-readable (%v): keep it where only root can look\n",
			out, dir, fi.Mode().Perm())
	}
}

// hostRead reads a file of this machine for the image, refusing
// anything but a small regular file.
func hostRead(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
		return nil, fmt.Errorf("%s: not a regular file of at most 1 MiB", path)
	}
	if fi.Mode().Perm()&0o077 != 0 && strings.Contains(filepath.Base(path), "id_") {
		return nil, fmt.Errorf("%s is readable by others (%v): chmod 600 it", path, fi.Mode().Perm())
	}
	return os.ReadFile(path)
}

// printDrivers says which drivers a detection found (built-in ones too)
// and why each module is needed, and returns the modules.
func printDrivers(stderr io.Writer, det *builder.Detection) []string {
	for _, bd := range det.Drivers {
		if bd.Module == "" {
			fmt.Fprintf(stderr, "  %s: driver %s of %s, built in\n", bd.Driver, bd.Driver, bd.Device)
		}
	}
	var mods []string
	for _, n := range det.Needs {
		fmt.Fprintf(stderr, "  %s: %s\n", n.Module, n.Why)
		mods = append(mods, n.Module)
	}
	return mods
}
