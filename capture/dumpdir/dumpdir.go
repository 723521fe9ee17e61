package dumpdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// File names inside a dump directory.
const (
	VMCore           = "vmcore"
	VMCoreIncomplete = "vmcore-incomplete"
	DmesgFile        = "vmcore-dmesg.txt"
)

// TimeLayout names dump directories, as kdump-tools and kdumpctl do
// (minus the IP prefix).
const TimeLayout = "2006-01-02-15:04:05"

// Create makes base (0700, parents as needed) and a new directory in it
// named for t. If that name is taken (two crashes in one second, a clock
// reset), a suffix -1, -2, … is added: an older dump is never reused.
func Create(base string, t time.Time) (string, error) {
	if err := mkdirAllNoFollow(base); err != nil {
		return "", err
	}
	name := t.UTC().Format(TimeLayout)
	for i := 0; i < 1000; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s-%d", name, i)
		}
		dir := filepath.Join(base, n)
		err := unix.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("dumpdir: mkdir %s: %w", dir, err)
		}
	}
	return "", fmt.Errorf("dumpdir: no free name for %s in %s", name, base)
}

// mkdirAllNoFollow creates every missing component of path with mode 0700
// and refuses symlinks on the way, so a link planted on the dump target
// cannot send the dump elsewhere.
func mkdirAllNoFollow(path string) error {
	path = filepath.Clean(path)
	if path == "/" || path == "." {
		return nil
	}
	if err := mkdirAllNoFollow(filepath.Dir(path)); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("dumpdir: %s is a symlink; refusing to follow it", path)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("dumpdir: %s is not a directory", path)
		}
		return nil
	}
	if err := unix.Mkdir(path, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("dumpdir: mkdir %s: %w", path, err)
	}
	return nil
}

// CreateFile creates name in dir for writing: 0600, exclusive, no symlink
// following.
func CreateFile(dir, name string) (*os.File, error) {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dumpdir: %w", err)
	}
	return f, nil
}

// Commit syncs f, closes it, renames it from its name in dir to final and
// syncs dir, so that final exists only with all its data on disk.
func Commit(f *os.File, dir, final string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dumpdir: fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dumpdir: close %s: %w", f.Name(), err)
	}
	dst := filepath.Join(dir, final)
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("dumpdir: %w", err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so renames and new entries in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("dumpdir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("dumpdir: fsync %s: %w", dir, err)
	}
	return nil
}
