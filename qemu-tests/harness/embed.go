package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// BuiltKernel is a dedicated capture kernel made by
// scripts/build-capture-kernel.
type BuiltKernel struct {
	Path      string // the bzImage
	Version   string // its release, e.g. 6.1.192
	Initramfs string // the archive embedded in it
	Seconds   int    // how long make took
}

// CaptureKernelCached reports whether scripts/build-capture-kernel has
// built a kernel before, so that embedding another initramfs only relinks
// it (a minute) instead of compiling it (about half an hour on two
// contended cores).
func CaptureKernelCached(root string) bool {
	m, _ := filepath.Glob(filepath.Join(root, ".cache", "capture-kernel", "*", "build", "vmlinux"))
	return len(m) > 0
}

// BuildCaptureKernel runs scripts/build-capture-kernel to build a
// dedicated capture kernel with initramfs (an uncompressed newc archive)
// built in, and writes it to out. It merges configs/kdump.config, as make
// test-kernel does for gokdump vmtest (which boots the kernel as the first
// kernel too): the two builds share one configuration and object tree, so
// a new initramfs only relinks.
func BuildCaptureKernel(root, initramfs, out string) (BuiltKernel, error) {
	kv, stdout, err := runKeyValues(exec.Command(filepath.Join(root, "scripts", "build-capture-kernel"),
		"--fragment", filepath.Join(root, "configs", "kdump.config"), "--initramfs", initramfs, "-o", out))
	if err != nil {
		return BuiltKernel{}, fmt.Errorf("build-capture-kernel: %w", err)
	}
	k := BuiltKernel{Path: kv["KERNEL"], Version: kv["KERNEL_VERSION"], Initramfs: kv["INITRAMFS"]}
	k.Seconds, _ = strconv.Atoi(kv["SECONDS"])
	if k.Path == "" {
		return BuiltKernel{}, fmt.Errorf("build-capture-kernel printed no KERNEL=\n%s", stdout)
	}
	if _, err := os.Stat(k.Path); err != nil {
		return BuiltKernel{}, err
	}
	return k, nil
}
