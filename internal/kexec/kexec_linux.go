//go:build linux && (amd64 || arm || arm64 || loong64 || ppc || ppc64 || ppc64le || riscv64 || s390x)

// The architectures above are those x/sys/unix has KexecFileLoad for.

package kexec

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Load checks the plan (Check) and loads its kernel and initrd as the
// capture kernel with kexec_file_load(2) and KEXEC_FILE_ON_CRASH, replacing
// any capture kernel loaded before, then verifies that
// kernel/kexec_crash_loaded under the plan's sysfs root reads 1 (when sysfs
// is mounted there). It execs nothing, so it works from a bare PID 1.
//
// A failure after the kernel started loading leaves no capture kernel
// loaded; the error says so.
func (p *Plan) Load() error {
	if err := p.Check(); err != nil {
		return err
	}
	kf, err := os.Open(p.Kernel)
	if err != nil {
		return fmt.Errorf("kexec: kernel: %w", err)
	}
	defer kf.Close()
	initrdFd, flags := -1, unix.KEXEC_FILE_ON_CRASH
	if p.Initrd == "" {
		flags |= unix.KEXEC_FILE_NO_INITRAMFS
	} else {
		f, err := os.Open(p.Initrd)
		if err != nil {
			return fmt.Errorf("kexec: initrd: %w", err)
		}
		defer f.Close()
		initrdFd = int(f.Fd())
	}
	if err := unix.KexecFileLoad(int(kf.Fd()), initrdFd, p.Cmdline, flags); err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			return fmt.Errorf("kexec: load %s: %w", p.Kernel, err)
		}
		return classify(errno, p, readEnv(p.sysfsRoot, "/proc"))
	}
	return verifyLoaded(p.sysfsRoot, true)
}

// UnloadCrash unloads the capture kernel (KEXEC_FILE_ON_CRASH |
// KEXEC_FILE_UNLOAD) and verifies /sys/kernel/kexec_crash_loaded reads 0.
// Unloading when none is loaded succeeds.
func UnloadCrash() error {
	if err := checkCrashSupport("/sys"); err != nil {
		return fmt.Errorf("kexec: unload: %w", err)
	}
	err := unix.KexecFileLoad(-1, -1, "", unix.KEXEC_FILE_ON_CRASH|unix.KEXEC_FILE_UNLOAD)
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			return fmt.Errorf("kexec: unload: %w", err)
		}
		return classify(errno, nil, readEnv("/sys", "/proc"))
	}
	return verifyLoaded("/sys", false)
}
