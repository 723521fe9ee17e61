package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// built in, and writes it to out.
func BuildCaptureKernel(root, initramfs, out string) (BuiltKernel, error) {
	cmd := exec.Command(filepath.Join(root, "scripts", "build-capture-kernel"), "--initramfs", initramfs, "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return BuiltKernel{}, fmt.Errorf("build-capture-kernel: %v\n%s", err, stderr.String())
	}
	var k BuiltKernel
	for _, l := range strings.Split(string(stdout), "\n") {
		key, val, _ := strings.Cut(l, "=")
		switch key {
		case "KERNEL":
			k.Path = val
		case "KERNEL_VERSION":
			k.Version = val
		case "INITRAMFS":
			k.Initramfs = val
		case "SECONDS":
			k.Seconds, _ = strconv.Atoi(val)
		}
	}
	if k.Path == "" {
		return BuiltKernel{}, fmt.Errorf("build-capture-kernel printed no KERNEL=\n%s%s", stdout, stderr.String())
	}
	if _, err := os.Stat(k.Path); err != nil {
		return BuiltKernel{}, err
	}
	return k, nil
}
