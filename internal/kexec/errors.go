package kexec

import "errors"

// Errors a load or unload can fail with. They are wrapped with the details
// (sizes, paths, the errno); test for them with errors.Is.
var (
	// ErrNoReservation: the running kernel reserved no memory for a capture
	// kernel (/sys/kernel/kexec_crash_size is 0): it was booted without
	// crashkernel=, or the reservation failed.
	ErrNoReservation = errors.New("no memory reserved for a capture kernel")

	// ErrTooLarge: the kernel (with the room it needs to decompress) and
	// the initrd do not fit in the crashkernel= reservation.
	ErrTooLarge = errors.New("capture kernel and initrd do not fit the crashkernel reservation")

	// ErrNotKernel: the kernel file is not an image this kernel can load
	// (not a bzImage, truncated, another architecture, too old).
	ErrNotKernel = errors.New("not a loadable kernel image")

	// ErrCmdlineTooLong: the command line, plus the elfcorehdr= the kernel
	// appends to it, exceeds what the capture kernel accepts.
	ErrCmdlineTooLong = errors.New("capture kernel command line too long")

	// ErrNotPermitted: EPERM. The caller lacks CAP_SYS_BOOT, kexec was
	// disabled (kernel.kexec_load_disabled, kexec_load_limit_panic), or the
	// kernel is locked down and the image is not signed by a trusted key.
	ErrNotPermitted = errors.New("kexec not permitted")

	// ErrSignature: the kernel enforces signed kexec images
	// (CONFIG_KEXEC_SIG_FORCE) and the image's signature is missing or
	// not trusted.
	ErrSignature = errors.New("kernel image signature rejected")

	// ErrBusy: EBUSY. Another kexec load or unload holds the kexec lock.
	ErrBusy = errors.New("kexec busy")

	// ErrUnsupported: the running kernel (or this build) has no
	// kexec_file_load(2) or no crash dump support.
	ErrUnsupported = errors.New("crash kernel loading not supported")

	// ErrNotLoaded: the system call succeeded but
	// /sys/kernel/kexec_crash_loaded does not read 1 (or, after an unload,
	// still reads 1).
	ErrNotLoaded = errors.New("capture kernel not loaded")
)
