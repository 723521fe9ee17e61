package collect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/initramfs/boot"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/netup"
	"github.com/gokdump/gokdump/internal/sshdump"
	"golang.org/x/sys/unix"
)

// The capture kernel's places.
const (
	VmcorePath = "/proc/vmcore"
	MountPoint = "/mnt/target"
)

// System is the capture kernel's Env: /proc/vmcore, sysfs, mount(2) on
// MountPoint, reboot(2).
func System(con *Console) *Env {
	return &Env{
		Console:     con,
		Clock:       RealClock{},
		Vmcore:      VmcorePath,
		OpenVmcore:  vmcore.Open,
		ReadLog:     printk.ReadDump,
		LoadModules: func(logf func(string, ...any)) error { return boot.LoadModules(boot.ModuleList, logf) },
		WaitDevice: func(spec blockdev.Spec, timeout time.Duration) (*blockdev.Device, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return blockdev.Wait(ctx, spec.String(), 100*time.Millisecond)
		},
		ReadOnly: sysReadOnly,
		Mount:    mountOn,
		Unmount:  func(mnt string) error { return unix.Unmount(mnt, 0) },
		OpenDevice: func(path string) (*os.File, error) {
			// O_EXCL on a block device: refused while it is mounted or in use.
			return os.OpenFile(path, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
		},
		Sync:      unix.Sync,
		Fdatasync: func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) },
		FreeSpace: freeSpace,
		Act:       func(a config.Action) { boot.Finish(boot.Action(a)) },
		NetUp: func(cfg *config.Config, deadline time.Time) error {
			seedRNG(con.Logf, VmcorePath)
			return netUp(con, cfg, deadline)
		},
		LookupIP: lookupIP,
		DialSSH:  dialSSH,
		MountNFS: mountNFS,
	}
}

// netUp brings up the interface recorded in the image (netup.RecordPath)
// as the config says.
func netUp(con *Console, cfg *config.Config, deadline time.Time) error {
	var rec *netup.Record
	switch b, err := os.ReadFile(netup.RecordPath); {
	case err == nil:
		if rec, err = netup.ParseRecord(b); err != nil {
			con.Logf("%v; any Ethernet interface will do", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		con.Logf("network: %v", err)
	}
	plan, err := netup.PlanFor(cfg)
	if err != nil {
		return err
	}
	con.Logf("network: bringing up the interface (%s) within %.0fs", plan, time.Until(deadline).Seconds())
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	res, err := netup.Up(ctx, plan, rec, con.Logf)
	if err != nil {
		return err
	}
	var as []string
	for _, a := range res.Addrs {
		as = append(as, a.String())
	}
	con.Logf("network: %s (%s, %s) is up with %s in %.2fs", res.Interface, res.Driver, res.MAC, strings.Join(as, " "), res.Took.Seconds())
	return nil
}

func lookupIP(host string, timeout time.Duration) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// dialSSH logs in to an ssh target with the image's key, checking the
// server's key against the image's known_hosts.
func dialSSH(cfg *config.Config, t config.Target, timeout time.Duration) (Remote, error) {
	hk, err := sshdump.LoadHostKeys(cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (gokdump propagate records it)", sshdump.ErrHostKeyUnknown, err)
	}
	signer, err := sshdump.LoadSigner(cfg.SSHKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", sshdump.ErrAuth, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := sshdump.Dial(ctx, sshdump.Options{User: t.User, HostPort: t.HostPort(), Signer: signer, HostKeys: hk, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return sshRemote{c}, nil
}

// sshRemote is an sshdump.Conn as a Remote.
type sshRemote struct{ *sshdump.Conn }

func (r sshRemote) Create(name string) (RemoteFile, error) {
	f, err := r.Conn.Create(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// nfsMounts counts NFS mount points: each try gets its own, so a mount
// that completes after its try gave up is never stacked on.
var nfsMounts int

// mountNFS mounts an NFS export under /mnt with the kernel's NFS client,
// giving up after timeout (the mount(2) left behind finishes or fails on
// its own).
func mountNFS(source, options string, timeout time.Duration) (string, error) {
	nfsMounts++
	mnt := fmt.Sprintf("/mnt/nfs%d", nfsMounts)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() {
		done <- unix.Mount(source, mnt, "nfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, options)
	}()
	select {
	case err := <-done:
		if err != nil {
			return "", fmt.Errorf("mount %s: %w", source, err)
		}
		return mnt, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("mount %s: no answer in %v: %w", source, timeout, unix.ETIMEDOUT)
	}
}

// sysReadOnly reports whether the kernel marks the device read-only.
func sysReadOnly(dev *blockdev.Device) bool {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", dev.Name, "ro"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// mountOn mounts dev read-write on MountPoint, for nothing but the
// dump: no device nodes, no set-uid, no execution.
func mountOn(dev *blockdev.Device, fstype, options string) (string, error) {
	if err := os.MkdirAll(MountPoint, 0o700); err != nil {
		return "", err
	}
	err := unix.Mount(dev.Path, MountPoint, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, options)
	if err != nil {
		return "", fmt.Errorf("mount on %s: %w", MountPoint, err)
	}
	return MountPoint, nil
}

// freeSpace returns the bytes free on the filesystem at path, counting the
// blocks reserved for root: the capture is root.
func freeSpace(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bfree) * st.Bsize, nil
}
