package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ReadBack copies every file of disk i's filesystem into dst, without
// mounting where the filesystem's tools allow: debugfs for ext4, mtools
// for vfat, btrfs restore for btrfs. xfs has no such tool: it is mounted
// read-only through a loop device, which needs root.
func (r *Run) ReadBack(i int, dst string) error {
	if i >= len(r.Disks) {
		return fmt.Errorf("harness: no disk %d", i)
	}
	img, fs := r.Disks[i], r.Spec.Disks[i].FS
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	switch fs {
	case "ext4":
		return run("debugfs", "-R", "rdump / "+dst, img)
	case "vfat":
		return run("mcopy", "-s", "-n", "-i", img, "::/*", dst+"/")
	case "btrfs":
		return run("btrfs", "restore", "-i", img, dst)
	case "xfs":
		if os.Geteuid() != 0 {
			return errors.New("harness: reading an xfs image back needs root (a loop mount)")
		}
		mnt, err := os.MkdirTemp("", "gokdump-xfs-")
		if err != nil {
			return err
		}
		defer os.Remove(mnt)
		if err := run("mount", "-o", "loop,ro,norecovery", img, mnt); err != nil {
			return err
		}
		defer exec.Command("umount", mnt).Run()
		return run("cp", "-a", mnt+"/.", dst)
	}
	return fmt.Errorf("harness: cannot read back a %s disk", fs)
}

// FindFile returns the path under root of the file the capture reported
// as p (a path on the target filesystem).
func FindFile(root, p string) (string, error) {
	f := filepath.Join(root, filepath.FromSlash(p))
	if _, err := os.Stat(f); err != nil {
		return "", err
	}
	return f, nil
}
