package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/blockdev"
	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/config"
	"github.com/gokdump/gokdump/capture/dump"
	"github.com/gokdump/gokdump/capture/dumpdir"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/initramfs/boot"
	"golang.org/x/sys/unix"
)

// Result is what a successful capture reports.
type Result struct {
	Path    string // dump path as seen on the target filesystem
	Bytes   int64
	Seconds float64
}

const (
	vmcorePath = "/proc/vmcore"
	mountPoint = "/mnt/target"
)

func capture(cfg *config.Config) (*Result, error) {
	if cfg.TestPanic == "capture" {
		panic("test_panic=capture: injected panic")
	}
	if _, err := os.Stat(vmcorePath); err != nil {
		return nil, fmt.Errorf("no %s: this kernel was not booted by a crash (%v)", vmcorePath, err)
	}
	if err := boot.LoadModules(boot.ModuleList, logf); err != nil {
		logf("some modules failed to load; going on: %v", err)
	}
	targets, err := cfg.Targets()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range targets {
		res, err := captureTo(cfg, t)
		if err == nil {
			return res, nil
		}
		logf("target %s: %v", t, err)
		errs = append(errs, fmt.Errorf("target %s: %w", t, err))
	}
	return nil, errors.Join(errs...)
}

// captureTo saves the dump to one target.
func captureTo(cfg *config.Config, t config.Target) (*Result, error) {
	if t.Raw {
		return nil, errors.New("raw device targets are not supported yet")
	}
	mnt, err := mountTarget(cfg, t)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Unmount so the filesystem is clean: a reader that does not
		// replay the journal (debugfs, a rescue tool) sees the dump.
		unix.Sync()
		if err := unix.Unmount(mnt, 0); err != nil {
			logf("unmount %s: %v", mnt, err)
		}
	}()
	return save(cfg, mnt)
}

func mountTarget(cfg *config.Config, t config.Target) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DeviceTimeout)
	defer cancel()
	logf("waiting up to %v for %s", cfg.DeviceTimeout, t)
	dev, err := blockdev.Wait(ctx, t.Spec.String(), 100*time.Millisecond)
	if err != nil {
		return "", err
	}
	fstype := cfg.FSType
	if fstype == "" && dev.FS != nil {
		fstype = dev.FS.FSType
	}
	logf("target %s is %s (%s)", t, dev.Path, fstype)
	if err := os.MkdirAll(mountPoint, 0o700); err != nil {
		return "", err
	}
	if err := unix.Mount(dev.Path, mountPoint, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, cfg.MountOptions); err != nil {
		return "", fmt.Errorf("mount %s (%s) on %s: %w", dev.Path, fstype, mountPoint, err)
	}
	return mountPoint, nil
}

// save writes the dump into a new dated directory under the mounted target.
func save(cfg *config.Config, mnt string) (*Result, error) {
	src, err := vmcore.Open(vmcorePath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	crashTime := time.Now()
	if info := src.VMCOREINFO; info != nil {
		if t, ok := info.CrashTime(); ok {
			crashTime = time.Unix(t, 0)
		}
		logf("crashed kernel %s, %d MiB of memory", info.OSRelease(), src.MaxPFN()*uint64(src.PageSize)>>20)
	}
	dir, err := dumpdir.Create(filepath.Join(mnt, cfg.Path), crashTime)
	if err != nil {
		return nil, err
	}
	if cfg.Dmesg {
		// The log first: it is small and tells the story even if the dump
		// does not fit.
		if err := saveDmesg(src, dir); err != nil {
			logf("vmcore-dmesg.txt: %v", err)
		}
	}
	f, err := dumpdir.CreateFile(dir, dumpdir.VMCoreIncomplete)
	if err != nil {
		return nil, err
	}
	logf("saving to %s", strings.TrimPrefix(dir, mnt))
	c, err := codec.Parse(string(cfg.Compress))
	if err != nil {
		return nil, err
	}
	level := cfg.DumpLevel[0]
	st, err := dump.Save(src, f, dump.Options{
		Level:  level,
		Codec:  c,
		Format: dump.Format(cfg.Format),
		Logf:   logf,
	})
	if st != nil {
		logf("%s", st.Summary())
	}
	if err != nil {
		// An incomplete dump stays as vmcore-incomplete: readable, and
		// flagged so nobody mistakes it for a whole one.
		f.Sync()
		f.Close()
		return nil, err
	}
	if err := dumpdir.Commit(f, dir, dumpdir.VMCore); err != nil {
		return nil, err
	}
	return &Result{
		Path:    strings.TrimPrefix(filepath.Join(dir, dumpdir.VMCore), mnt),
		Bytes:   st.BytesOut,
		Seconds: time.Since(start).Seconds(),
	}, nil
}

// saveDmesg writes the crashed kernel's log to vmcore-dmesg.txt in dir,
// synced, in makedumpfile --dump-dmesg's format.
func saveDmesg(src *vmcore.File, dir string) error {
	mem, err := kmem.New(src, src.VMCOREINFO, src.Machine)
	if err != nil {
		return err
	}
	l, err := printk.Read(mem)
	if err != nil {
		return err
	}
	f, err := dumpdir.CreateFile(dir, dumpdir.DmesgFile)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = l.WriteDmesg(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if l.Skipped > 0 {
		logf("kernel log: %d records, %d damaged ones skipped", len(l.Records), l.Skipped)
	}
	if reason, _ := l.Panic(); reason != "" {
		logf("crash reason: %s", reason)
	}
	return dumpdir.SyncDir(dir)
}
