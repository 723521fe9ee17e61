//go:build linux && (amd64 || arm || arm64 || loong64 || ppc || ppc64 || ppc64le || riscv64 || s390x)

// The architectures above are those x/sys/unix has KexecFileLoad for.

package kexec

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load checks the plan (Check) and loads its kernel and initrd as the
// capture kernel, replacing any capture kernel loaded before, with the
// system call p.Syscall names: by default kexec_file_load(2) with
// KEXEC_FILE_ON_CRASH, and kexec_load(2) with KEXEC_ON_CRASH where the
// kernel has no kexec_file_load (ENOSYS). It then verifies that
// kernel/kexec_crash_loaded under the plan's sysfs root reads 1 (when
// sysfs is mounted there) and sets p.Used. It execs nothing, so it works
// from a bare PID 1.
//
// A failure after the kernel started loading leaves no capture kernel
// loaded; the error says so.
func (p *Plan) Load() error {
	if err := p.Check(); err != nil {
		return err
	}
	switch p.Syscall {
	case SyscallFile:
		return p.loadFile()
	case SyscallClassic:
		return p.loadClassic()
	case "":
		err := p.loadFile()
		if errors.Is(err, unix.ENOSYS) {
			return p.loadClassic()
		}
		return err
	}
	return fmt.Errorf("kexec: unknown system call %q (want %q or %q)", p.Syscall, SyscallFile, SyscallClassic)
}

func (p *Plan) loadFile() error {
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
	p.Used = SyscallFile
	return verifyLoaded(p.sysfsRoot, true)
}

// kexecSegment is struct kexec_segment of include/uapi/linux/kexec.h.
type kexecSegment struct {
	buf   unsafe.Pointer
	bufsz uintptr
	mem   uintptr
	memsz uintptr
}

// loadClassic lays the load out (BuildX86) and hands it to kexec_load(2).
func (p *Plan) loadClassic() error {
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if machine == 0 {
		return fmt.Errorf("kexec: %w: gokdump's kexec_load loader places x86-64 and arm64 kernels only (this is %s)", ErrUnsupported, runtime.GOARCH)
	}
	ci, err := ReadCrashInfo("/proc", p.sysfsRoot, machine)
	if err != nil {
		return err
	}
	kernel, err := os.ReadFile(p.Kernel)
	if err != nil {
		return fmt.Errorf("kexec: kernel: %w", err)
	}
	var initrd []byte
	if p.Initrd != "" {
		if initrd, err = os.ReadFile(p.Initrd); err != nil {
			return fmt.Errorf("kexec: initrd: %w", err)
		}
	}
	var l *ClassicLoad
	switch machine {
	case elf.EM_X86_64:
		l, err = BuildX86(ci, kernel, p.Image, initrd, p.Cmdline)
	case elf.EM_AARCH64:
		var img *Arm64Image
		if img, err = ParseArm64Image(kernel); err != nil {
			return fmt.Errorf("kexec: kernel %s: %w", p.Kernel, err)
		}
		dtb, rerr := os.ReadFile(filepath.Join(p.sysfsRoot, "firmware/fdt"))
		if rerr != nil {
			return fmt.Errorf("kexec: the running kernel's device tree (an ACPI-only machine has none to copy): %w", rerr)
		}
		l, err = BuildArm64(ci, img, dtb, initrd, p.Cmdline)
	}
	if err != nil {
		return err
	}
	if err := kexecLoad(l, kexecArchThis); err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			return fmt.Errorf("kexec: load %s: %w", p.Kernel, err)
		}
		if errno == unix.EPERM || errno == unix.ENOSYS {
			e := readEnv(p.sysfsRoot, "/proc")
			if e.lockdown == "integrity" || e.lockdown == "confidentiality" {
				return fmt.Errorf("kexec: load %s with kexec_load: %w: kernel lockdown (%s) refuses kexec_load; only kexec_file_load of a signed kernel works (%w)",
					p.Kernel, ErrNotPermitted, e.lockdown, errno)
			}
			if errno == unix.ENOSYS {
				return fmt.Errorf("kexec: load %s: %w: the running kernel has neither kexec_file_load nor kexec_load (CONFIG_KEXEC), or a seccomp filter hides them (%w)",
					p.Kernel, ErrUnsupported, errno)
			}
		}
		return fmt.Errorf("%w (kexec_load)", classify(errno, p, readEnv(p.sysfsRoot, "/proc")))
	}
	p.Used = SyscallClassic
	p.Cmdline = l.Cmdline
	return verifyLoaded(p.sysfsRoot, true)
}

// kexecLoad calls kexec_load(2) with KEXEC_ON_CRASH and arch.
func kexecLoad(l *ClassicLoad, arch uintptr) error {
	segs := make([]kexecSegment, len(l.Segments))
	for i, s := range l.Segments {
		segs[i] = kexecSegment{bufsz: uintptr(len(s.Buf)), mem: uintptr(s.Mem), memsz: uintptr(s.MemSz)}
		if len(s.Buf) > 0 {
			segs[i].buf = unsafe.Pointer(&s.Buf[0])
		}
	}
	_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, uintptr(l.Entry), uintptr(len(segs)),
		uintptr(unsafe.Pointer(&segs[0])), unix.KEXEC_ON_CRASH|arch, 0, 0)
	runtime.KeepAlive(segs)
	runtime.KeepAlive(l)
	if errno != 0 {
		return errno
	}
	return nil
}

// UnloadCrash unloads the capture kernel (KEXEC_FILE_ON_CRASH |
// KEXEC_FILE_UNLOAD, or kexec_load with no segments where the kernel has
// no kexec_file_load) and verifies /sys/kernel/kexec_crash_loaded reads 0.
// Unloading when none is loaded succeeds.
func UnloadCrash() error {
	if err := checkCrashSupport("/sys"); err != nil {
		return fmt.Errorf("kexec: unload: %w", err)
	}
	err := unix.KexecFileLoad(-1, -1, "", unix.KEXEC_FILE_ON_CRASH|unix.KEXEC_FILE_UNLOAD)
	if errors.Is(err, unix.ENOSYS) {
		// kexec_load with nr_segments 0 unloads (kernel/kexec.c).
		_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, unix.KEXEC_ON_CRASH|kexecArchThis, 0, 0)
		err = nil
		if errno != 0 {
			err = errno
		}
	}
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			return fmt.Errorf("kexec: unload: %w", err)
		}
		return classify(errno, nil, readEnv("/sys", "/proc"))
	}
	return verifyLoaded("/sys", false)
}
