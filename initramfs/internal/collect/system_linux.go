package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/initramfs/boot"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
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
