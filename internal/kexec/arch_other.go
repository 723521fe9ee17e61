//go:build linux && !amd64 && !arm64

package kexec

// kexecArchThis is KEXEC_ARCH_DEFAULT: the kernel's own machine.
const kexecArchThis = 0
