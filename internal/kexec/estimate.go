package kexec

import (
	"fmt"
	"strings"
)

// The terms of the crashkernel= estimate. Measured in QEMU (qemu-tests
// TestEstimate and its calibration run) with Debian 6.1 and 6.12 cloud
// kernels and gokdump's Go init.
const (
	// runtimeMemory is what the booted capture kernel and the capture
	// need beyond the loaded segments and the unpacked initramfs: the
	// kernel's own allocations, the Go runtime (its heap is capped by the
	// init) and dirty page cache while the dump is written.
	runtimeMemory = 28 << 20
	// defaultUnpacked stands for the unpacked initramfs when its size is
	// not known: a host-only image of gokdump's init and a few modules.
	defaultUnpacked = 5 << 20
	// perTiB covers what grows with the crashed machine's memory in the
	// capture kernel: the ELF core header and /proc/vmcore's range list
	// and the page tables of the mmap windows. gokdump's own memory does
	// not grow with it (its bitmaps are processed in bounded chunks).
	perTiB = 8 << 20
	// estimateAlign rounds the recommendation.
	estimateAlign = 16 << 20
)

// Estimate is a recommended crashkernel= size and how it was reached.
type Estimate struct {
	Load     uint64 // the loaded segments (Plan.Need)
	Unpacked uint64 // the initramfs unpacked into the capture kernel's rootfs
	Runtime  uint64 // room for the capture kernel to run
	RAM      uint64 // the machine's memory
	PerRAM   uint64 // the term growing with RAM
	Total    uint64 // rounded up
}

// EstimateCrashkernel recommends a reservation for loading p on a machine
// with ram bytes of memory, its initramfs unpacking to unpacked bytes (0:
// unknown; a typical host-only image is assumed).
func EstimateCrashkernel(p *Plan, ram, unpacked uint64) Estimate {
	if unpacked == 0 && p.Initrd != "" {
		unpacked = defaultUnpacked
	}
	e := Estimate{Load: p.Need(), Unpacked: unpacked, Runtime: runtimeMemory, RAM: ram}
	e.PerRAM = alignUp(ram, 1<<40) >> 40 * perTiB
	e.Total = alignUp(e.Load+e.Unpacked+e.Runtime+e.PerRAM, estimateAlign)
	return e
}

// Value is the crashkernel= value, such as "96M".
func (e Estimate) Value() string { return fmt.Sprintf("%dM", e.Total>>20) }

// Formula explains the estimate term by term.
func (e Estimate) Formula() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  loaded kernel, initrd and kexec segments  %s\n", MiB(e.Load))
	fmt.Fprintf(&b, "+ initramfs unpacked into the rootfs        %s\n", MiB(e.Unpacked))
	fmt.Fprintf(&b, "+ capture kernel and capture at run time   %s\n", MiB(e.Runtime))
	fmt.Fprintf(&b, "+ %s per TiB of RAM (%s of RAM)       %s\n", MiB(perTiB), MiB(e.RAM), MiB(e.PerRAM))
	fmt.Fprintf(&b, "= %s, rounded up to %s: crashkernel=%s\n", MiB(e.Load+e.Unpacked+e.Runtime+e.PerRAM), MiB(estimateAlign), e.Value())
	return b.String()
}
