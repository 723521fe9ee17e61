package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/guest"
)

// Disk is a disk image to make.
type Disk struct {
	Bus     string // nvme or virtio: how the guest sees it
	FS      string // ext4, xfs, vfat, btrfs, or raw (no filesystem)
	Label   string
	UUID    string // for mkfs; empty lets mkfs choose
	SizeMiB int
}

// DevicePath is the guest's name for disk i of buses (each disk's bus, in
// command-line order): NVMe controllers and virtio disks are numbered in
// that order, each bus on its own.
func DevicePath(buses []string, i int) string {
	n := 0
	for j := 0; j < i; j++ {
		if buses[j] == buses[i] {
			n++
		}
	}
	if buses[i] == "virtio" {
		return "/dev/vd" + string(rune('a'+n))
	}
	return fmt.Sprintf("/dev/nvme%dn1", n)
}

// MakeDisk creates the image of d at path, with the files of the
// directory stage in it when stage is not "" (ext4 and btrfs only).
func MakeDisk(d Disk, path, stage string) error {
	size := fmt.Sprintf("%dM", d.SizeMiB)
	var args []string
	switch d.FS {
	case "ext4":
		args = []string{"mkfs.ext4", "-q", "-F"}
		args = withOpt(args, "-L", d.Label)
		args = withOpt(args, "-U", d.UUID)
		args = withOpt(args, "-d", stage)
		args = append(args, path, size)
	case "btrfs", "xfs", "vfat", "raw":
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(d.SizeMiB) << 20)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		switch d.FS {
		case "btrfs":
			args = []string{"mkfs.btrfs", "-q", "-f"}
			args = withOpt(args, "-L", d.Label)
			args = withOpt(args, "-U", d.UUID)
			args = withOpt(args, "--rootdir", stage)
			args = append(args, path)
		case "xfs":
			args = []string{"mkfs.xfs", "-q", "-f"}
			args = withOpt(args, "-L", d.Label)
			if d.UUID != "" {
				args = append(args, "-m", "uuid="+d.UUID)
			}
			args = append(args, path)
		case "vfat":
			args = []string{"mkfs.vfat"}
			args = withOpt(args, "-n", d.Label)
			if d.UUID != "" {
				// blkid shows a FAT serial as XXXX-XXXX; mkfs takes it bare.
				args = append(args, "-i", strings.ReplaceAll(d.UUID, "-", ""))
			}
			args = append(args, path)
		case "raw":
			return nil
		}
	default:
		return fmt.Errorf("vm: unknown filesystem %q", d.FS)
	}
	return Run(args[0], args[1:]...)
}

// WriteCacheFile writes mib MiB of random data with a CACHE marker of run
// id per MiB: the page-cache workload the dump level's cache bits drop.
func WriteCacheFile(path, id string, mib int) error {
	b := make([]byte, mib<<20)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	for i := 0; i < mib; i++ {
		copy(b[i<<20+200:], guest.Marker("CACHE", id, i))
	}
	return os.WriteFile(path, b, 0o644)
}

// NewID returns a random run id, for the markers of a run.
func NewID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// Run runs a program that must succeed within two minutes; the error
// holds its output.
func Run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// ExtractFrom copies a file out of an ext4 image with debugfs (no root
// needed) into dst, created 0600 (debugfs would leave it to the umask):
// a dump holds the guest's secrets.
func ExtractFrom(img, path, dst string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if err := os.Chmod(dst, 0o600); err != nil {
		return err
	}
	cmd := exec.Command("debugfs", "-R", fmt.Sprintf("dump %s %s", path, dst), img)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs dump %s: %v\n%s", path, err, b)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() == 0 {
		return fmt.Errorf("debugfs could not extract %s from %s (%v)", path, img, err)
	}
	return nil
}

// Entry is a directory entry of an ext4 image.
type Entry struct {
	Mode uint32
	Size int64
}

// LsFrom lists a directory of an ext4 image with debugfs: name → entry.
func LsFrom(img, dir string) (map[string]Entry, error) {
	b, err := exec.Command("debugfs", "-R", "ls -p "+dir, img).Output()
	if err != nil {
		return nil, fmt.Errorf("debugfs ls %s: %v", dir, err)
	}
	// Lines: /inode/mode/uid/gid/name/size/
	out := map[string]Entry{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." {
			continue
		}
		var e Entry
		fmt.Sscanf(f[2], "%o", &e.Mode)
		e.Size, _ = strconv.ParseInt(f[6], 10, 64)
		out[f[5]] = e
	}
	return out, nil
}

// MoveFile renames src to dst, or copies it where they are on different
// filesystems; dst is 0600.
func MoveFile(src, dst string) error {
	if err := os.Chmod(src, 0o600); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Remove(src)
}

// withOpt appends flag and value to args unless value is "".
func withOpt(args []string, flag, value string) []string {
	if value == "" {
		return args
	}
	return append(args, flag, value)
}
