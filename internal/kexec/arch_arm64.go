//go:build linux

package kexec

import "golang.org/x/sys/unix"

// kexecArchThis is kexec_load's KEXEC_ARCH_* for this build's machine.
const kexecArchThis = unix.KEXEC_ARCH_AARCH64
