// Package kexec loads the capture kernel that the running kernel boots into
// when it panics, and reports whether a crash would be caught.
//
// Loading uses kexec_file_load(2) with KEXEC_FILE_ON_CRASH: the running
// kernel reads, verifies and places the kernel and initrd itself, so no
// kexec-tools, purgatory or shell are needed and a static Go PID 1 can load
// a capture kernel. Before the system call the package checks what it can
// (a crashkernel= reservation exists, the images fit it, the kernel file is a
// bzImage, the command line is short enough), because a failed load with
// KEXEC_FILE_ON_CRASH leaves no capture kernel loaded at all, and the
// kernel's own answer is a bare errno.
//
// Where the running kernel has no kexec_file_load (Debian's arm64 kernels
// are built without CONFIG_KEXEC_FILE), Load uses the classic kexec_load(2)
// with KEXEC_ON_CRASH, and this package does what the kernel would: it
// reads the memory layout (ReadCrashInfo: /proc/iomem, the per-CPU
// crash_notes, VMCOREINFO), builds the ELF core header and places the
// kernel, initrd, boot parameters and a generated purgatory in the
// reservation (BuildX86). Lockdown refuses kexec_load; only kexec_file_load
// checks signatures.
//
// The parsers here (bzImage headers, command lines, the sysfs status files)
// are pure and take their inputs or root directories as arguments, so they
// can be tested against fixtures on any machine.
package kexec
