package main

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/gokdump/gokdump/internal/crashdir"
	"golang.org/x/sys/unix"
)

var (
	vmcorePath = "/proc/vmcore"
	mountPoint = "/mnt/target"
)

func failedf(format string, args ...any) Result {
	return Result{Status: StatusFailed, Reason: fmt.Sprintf(format, args...)}
}

// capture saves the dump to the first target that takes it.
func capture(cfg *config.Config) Result {
	inject(cfg, "capture")
	if _, err := os.Stat(vmcorePath); err != nil {
		return failedf("no %s: this kernel was not booted by a crash (%v)", vmcorePath, err)
	}
	if err := boot.LoadModules(boot.ModuleList, logf); err != nil {
		logf("some modules failed to load; going on: %v", err)
	}
	targets, err := cfg.Targets()
	if err != nil {
		return failedf("%v", err)
	}
	src := openSource(cfg)
	defer src.close()
	var best *Result
	var reasons []string
	for i, t := range targets {
		if i > 0 {
			logf("trying the fallback target %s", t)
		}
		res := captureTo(cfg, t, src)
		switch res.Status {
		case StatusSaved:
			return res
		case StatusIncomplete:
			logf("target %s: the dump is incomplete: %s", t, res.Reason)
			if best == nil {
				best = &res
			}
		default:
			logf("target %s: %s", t, res.Reason)
		}
		reasons = append(reasons, fmt.Sprintf("target %s: %s", t, res.Reason))
	}
	if best != nil {
		return *best
	}
	return Result{Status: StatusFailed, Reason: strings.Join(reasons, "; ")}
}

// source is /proc/vmcore as the capture sees it: parsed, or, when it
// cannot be parsed, to be saved as a raw copy.
type source struct {
	f         *vmcore.File // nil when it cannot be parsed
	parseErr  error
	crashTime time.Time
	dmesg     []byte // the kernel log, nil when it cannot be read
}

func openSource(cfg *config.Config) *source {
	s := &source{crashTime: time.Now()}
	var err error
	if cfg.TestPanic == "vmcore" {
		err = errors.New("test_panic=vmcore: parsing refused on purpose")
	} else {
		s.f, err = vmcore.Open(vmcorePath)
	}
	if err != nil {
		s.parseErr = err
		logf("cannot parse %s: %v; it will be saved as a raw copy (nothing lost, nothing filtered)", vmcorePath, err)
		return s
	}
	if s.f.NoteErr != nil {
		logf("%s: damaged notes: %v; the %d notes before the damage (and VMCOREINFO, if found past it) are kept", vmcorePath, s.f.NoteErr, len(s.f.Notes))
	}
	if info := s.f.VMCOREINFO; info != nil {
		if t, ok := info.CrashTime(); ok {
			s.crashTime = time.Unix(t, 0)
		}
		logf("crashed kernel %s, %d MiB of memory", info.OSRelease(), s.f.MaxPFN()*uint64(s.f.PageSize)>>20)
	} else {
		logf("%s has no VMCOREINFO: pages cannot be filtered and the kernel log cannot be found; every page is kept", vmcorePath)
	}
	if cfg.Dmesg && s.f.VMCOREINFO != nil {
		d, err := readDmesg(s.f)
		if err != nil {
			logf("kernel log: %v", err)
		}
		s.dmesg = d
	}
	return s
}

func (s *source) close() {
	if s.f != nil {
		s.f.Close()
	}
}

// readDmesg returns the crashed kernel's log in makedumpfile --dump-dmesg's
// format.
func readDmesg(f *vmcore.File) ([]byte, error) {
	l, err := printk.ReadDump(f, f.VMCOREINFO, f.Machine)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := l.WriteDmesg(&b); err != nil {
		return nil, err
	}
	if l.Skipped > 0 {
		logf("kernel log: %d records, %d damaged ones skipped", len(l.Records), l.Skipped)
	}
	if reason, _ := l.Panic(); reason != "" {
		logf("crash reason: %s", reason)
	}
	return b.Bytes(), nil
}

// captureTo saves the dump to one target.
func captureTo(cfg *config.Config, t config.Target, src *source) Result {
	dev, err := waitDevice(cfg, t)
	if err != nil {
		return failedf("%v", err)
	}
	if t.Raw {
		return captureRaw(cfg, t, dev, src)
	}
	mnt, err := mountTarget(cfg, t, dev)
	if err != nil {
		return failedf("%v", err)
	}
	defer func() {
		// Unmount so the filesystem is clean: a reader that does not
		// replay the journal (debugfs, a rescue tool) sees the dump.
		unix.Sync()
		if err := unix.Unmount(mnt, 0); err != nil {
			logf("unmount %s: %v", mnt, err)
		}
	}()
	return saveTo(cfg, mnt, src)
}

// waitDevice waits, at most device_timeout, for the target's device. On
// timeout the error lists every block device that was there.
func waitDevice(cfg *config.Config, t config.Target) (*blockdev.Device, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DeviceTimeout)
	defer cancel()
	logf("waiting up to %v for %s", cfg.DeviceTimeout, t)
	dev, err := blockdev.Wait(ctx, t.Spec.String(), 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return dev, nil
}

// mountTarget mounts the target's filesystem read-write on mountPoint.
func mountTarget(cfg *config.Config, t config.Target, dev *blockdev.Device) (string, error) {
	fstype := cfg.FSType
	if fstype == "" && dev.FS != nil {
		fstype = dev.FS.FSType
	}
	if fstype == "" {
		return "", fmt.Errorf("no filesystem found on %s (%s); set fstype, or use raw:%s to write the device itself", dev.Path, dev, dev.Path)
	}
	logf("target %s is %s (%s)", t, dev.Path, fstype)
	ro := readOnlyDevice(dev)
	if err := os.MkdirAll(mountPoint, 0o700); err != nil {
		return "", err
	}
	err := unix.Mount(dev.Path, mountPoint, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, cfg.MountOptions)
	switch {
	case err == nil:
		return mountPoint, nil
	case ro || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES):
		return "", fmt.Errorf("target %s (%s) is read-only: mount %s read-write: %w", t, dev.Path, fstype, err)
	}
	return "", fmt.Errorf("mount %s (%s) on %s: %w", dev.Path, fstype, mountPoint, err)
}

// readOnlyDevice reports whether the kernel marks the device read-only.
func readOnlyDevice(dev *blockdev.Device) bool {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", dev.Name, "ro"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// saveTo writes the dump into a new dated directory under cfg.Path on the
// filesystem mounted at mnt.
func saveTo(cfg *config.Config, mnt string, src *source) Result {
	base, err := crashdir.OpenBase(mnt, cfg.Path)
	if err != nil {
		return failedf("%v", err)
	}
	defer base.Close()
	rel := func(p string) string { return "/" + strings.TrimPrefix(strings.TrimPrefix(p, mnt), "/") }
	reportLeftovers(base, rel)

	dir, err := base.Create(src.crashTime)
	if err != nil {
		return failedf("%v", err)
	}
	defer dir.Close()
	f, err := dir.CreateFile(crashdir.VMCoreIncomplete)
	if err != nil {
		return failedf("%v", err)
	}
	if err := dir.Sync(); err != nil {
		logf("%v", err)
	}
	logf("saving to %s", rel(dir.Path()))
	if cfg.Keep > 0 {
		// After the new dump exists (locked, in progress): it counts, and
		// Prune never removes it.
		removed, err := base.Prune(cfg.Keep)
		for _, d := range removed {
			logf("keep = %d: removed the older dump %s", cfg.Keep, rel(d.Dir))
		}
		if err != nil {
			logf("keep = %d: %v", cfg.Keep, err)
		}
	}
	if src.dmesg != nil {
		// The log first: it is small and tells the story even if the dump
		// does not fit.
		if err := writeDmesg(dir, src.dmesg); err != nil {
			logf("%s: %v", crashdir.DmesgFile, err)
		}
	}
	free := freeSpace(mnt)
	var res Result
	if src.f == nil {
		res = rawCopy(cfg, f, free, f.Truncate)
	} else {
		res = saveDump(cfg, src, f, free, cfg.Format, func() {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				logf("fdatasync %s: %v", crashdir.VMCoreIncomplete, err)
			}
		})
	}
	switch res.Status {
	case StatusSaved:
		if err := dir.Commit(f, crashdir.VMCore); err != nil {
			// The data is written; only the name says otherwise.
			res.Status, res.Reason = StatusIncomplete, err.Error()
			res.Path = rel(filepath.Join(dir.Path(), crashdir.VMCoreIncomplete))
			return res
		}
		res.Path = rel(filepath.Join(dir.Path(), crashdir.VMCore))
	case StatusIncomplete:
		// It stays vmcore-incomplete: readable, and flagged so nobody
		// mistakes it for a whole one.
		if err := f.Sync(); err != nil {
			logf("fsync %s: %v", crashdir.VMCoreIncomplete, err)
		}
		f.Close()
		dir.Sync()
		res.Path = rel(filepath.Join(dir.Path(), crashdir.VMCoreIncomplete))
	default:
		st, _ := f.Stat()
		f.Close()
		if st != nil && st.Size() == 0 {
			dir.Remove(crashdir.VMCoreIncomplete)
		}
		dir.Sync()
	}
	return res
}

// reportLeftovers prints a LEFTOVER line for each earlier dump that did
// not finish, so that nobody mistakes it for a whole one.
func reportLeftovers(base *crashdir.Base, rel func(string) string) {
	ds, err := base.Scan()
	if err != nil {
		logf("scan %s: %v", base.Path(), err)
		return
	}
	complete := 0
	for _, d := range ds {
		switch d.State {
		case crashdir.Complete:
			complete++
		case crashdir.Incomplete, crashdir.InProgress:
			result("LEFTOVER %s state=%s bytes=%d", rel(d.File), d.State, d.Size)
		}
	}
	if len(ds) > 0 {
		logf("%d earlier dumps in %s, %d complete", len(ds), rel(base.Path()), complete)
	}
}

// writeDmesg writes the log to vmcore-dmesg.txt in dir, synced.
func writeDmesg(dir *crashdir.Dir, text []byte) error {
	f, err := dir.CreateFile(crashdir.DmesgFile)
	if err != nil {
		return err
	}
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return dir.Sync()
}

// freeSpace returns the bytes free on the filesystem at path, -1 if
// unknown. It counts the blocks reserved for root: the capture is root.
func freeSpace(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		logf("statfs %s: %v", path, err)
		return -1
	}
	return int64(st.Bfree) * st.Bsize
}
