// Package boot holds what a Go program running as PID 1 in an initramfs
// needs before it can do its job: the pseudo-filesystems, kernel modules,
// the console, and a way out (reboot, power off, halt) that cannot hang.
//
// The capture /init uses it, and so does the first-stage init of the QEMU
// crash tests.
package boot
