package kexec

import (
	"fmt"
	"strings"

	"github.com/gokdump/gokdump/internal/size"
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
	// It is charged in proportion, rounded up to a whole MiB: 1 MiB for
	// up to 128 GiB.
	perTiB = 8 << 20
	// EstimateAlign rounds the recommendation up to a multiple of it.
	EstimateAlign = 16 << 20
)

// Estimate is a recommended crashkernel= size and how it was reached.
type Estimate struct {
	Load     uint64 // the loaded segments (Plan.Need)
	Unpacked uint64 // the initramfs unpacked into the capture kernel's rootfs
	Runtime  uint64 // room for the capture kernel to run
	RAM      uint64 // the machine's memory
	PerRAM   uint64 // the term growing with RAM
	Sum      uint64 // the terms added
	Total    uint64 // Sum rounded up to a multiple of EstimateAlign
}

// EstimateCrashkernel recommends a reservation for loading p on a machine
// with ram bytes of memory, its initramfs unpacking to unpacked bytes (0:
// unknown; a typical host-only image is assumed).
func EstimateCrashkernel(p *Plan, ram, unpacked uint64) Estimate {
	if unpacked == 0 && p.Initrd != "" {
		unpacked = defaultUnpacked
	}
	e := Estimate{Load: p.Need(), Unpacked: unpacked, Runtime: runtimeMemory, RAM: ram}
	e.PerRAM = ramTerm(ram)
	e.Sum = e.Load + e.Unpacked + e.Runtime + e.PerRAM
	e.Total = alignUp(e.Sum, EstimateAlign)
	return e
}

// Value is the crashkernel= value, such as "96M".
func (e Estimate) Value() string { return fmt.Sprintf("%dM", e.Total>>20) }

// ramTerm is perTiB in proportion to ram bytes of RAM, rounded up to a
// whole MiB.
func ramTerm(ram uint64) uint64 {
	// ram*perTiB/2^40 without overflow: perTiB is 2^23.
	return alignUp((ram+1<<17-1)>>17, 1<<20)
}

// Formula explains the estimate term by term.
func (e Estimate) Formula() string {
	var b strings.Builder
	mib := func(n uint64) string { return fmt.Sprintf("%9s", MiB(n)) }
	unpacked := "initramfs unpacked into the rootfs"
	if e.Unpacked == 0 {
		unpacked = "no separate initramfs to unpack"
	}
	fmt.Fprintf(&b, "  %-48s %s\n", "loaded kernel (init_size), initrd, kexec segments", mib(e.Load))
	fmt.Fprintf(&b, "+ %-48s %s\n", unpacked, mib(e.Unpacked))
	fmt.Fprintf(&b, "+ %-48s %s\n", "capture kernel and capture at run time", mib(e.Runtime))
	fmt.Fprintf(&b, "+ %-48s %s\n", fmt.Sprintf("%s per TiB of RAM, for %s", size.Size(perTiB), size.Size(e.RAM)), mib(e.PerRAM))
	fmt.Fprintf(&b, "= %-48s %s\n", "", mib(e.Sum))
	fmt.Fprintf(&b, "  rounded up to a multiple of %s: crashkernel=%s\n", size.Size(EstimateAlign), e.Value())
	return b.String()
}

// CMASplit divides the estimate for a kernel that can reserve part of it
// as CMA (crashkernel=SIZE,cma, Status.CMACapable): the standard part
// must hold what is loaded (kernel, initrd, kexec's segments), rounded
// up to EstimateAlign; the rest, which the capture kernel needs only once
// it runs, can be CMA, lent to the running system until a crash. ok is
// false when nothing would be left for CMA.
func (e Estimate) CMASplit() (std, cma uint64, ok bool) {
	std = alignUp(e.Load, EstimateAlign)
	if std >= e.Total {
		return e.Total, 0, false
	}
	return std, e.Total - std, true
}
