package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/blockdev"
	"github.com/gokdump/gokdump/capture/config"
	"github.com/gokdump/gokdump/capture/dump"
	"github.com/gokdump/gokdump/capture/dumpdir"
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
	if cfg.Target == "" {
		return nil, errors.New("no dump target configured (set target in gokdump.toml or gokdump.target= on the command line)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DeviceTimeout)
	defer cancel()
	logf("waiting up to %v for %s", cfg.DeviceTimeout, cfg.Target)
	dev, err := blockdev.Wait(ctx, cfg.Target, 100*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("dump target: %w", err)
	}
	fstype := cfg.FSType
	if fstype == "" && dev.FS != nil {
		fstype = dev.FS.FSType
	}
	logf("target %s is %s (%s)", cfg.Target, dev.Path, fstype)
	if err := os.MkdirAll(mountPoint, 0o700); err != nil {
		return nil, err
	}
	if err := unix.Mount(dev.Path, mountPoint, fstype, 0, cfg.MountOptions); err != nil {
		return nil, fmt.Errorf("mount %s (%s) on %s: %w", dev.Path, fstype, mountPoint, err)
	}
	defer func() {
		unix.Sync()
		if err := unix.Unmount(mountPoint, 0); err != nil {
			logf("unmount %s: %v", mountPoint, err)
		}
	}()

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
	base := filepath.Join(mountPoint, cfg.Path)
	dir, err := dumpdir.Create(base, crashTime)
	if err != nil {
		return nil, err
	}
	f, err := dumpdir.CreateFile(dir, dumpdir.VMCoreIncomplete)
	if err != nil {
		return nil, err
	}
	logf("saving to %s", strings.TrimPrefix(dir, mountPoint))
	st, err := dump.CopyELF(src, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := dumpdir.Commit(f, dir, dumpdir.VMCore); err != nil {
		return nil, err
	}
	logf("%d pages, %d zero, %d MiB in %.2fs", st.PagesTotal, st.PagesZero, st.BytesIn>>20, st.Duration.Seconds())
	return &Result{
		Path:    strings.TrimPrefix(filepath.Join(dir, dumpdir.VMCore), mountPoint),
		Bytes:   st.BytesOut,
		Seconds: time.Since(start).Seconds(),
	}, nil
}
