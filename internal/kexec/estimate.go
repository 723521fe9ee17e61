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
	// runtimeMemoryArm64 is runtimeMemory for an arm64 capture kernel
	// with 4 KiB pages. Measured in QEMU (qemu-tests TestEstimate/arm64,
	// GOKDUMP_CALIBRATE=1): Debian's arm64 6.12 cloud kernel loaded with
	// kexec_load, gokdump's host-only image (3.2 MiB, 8.5 MiB unpacked),
	// 1 GiB and 2 GiB guests, crashkernel= in 4 MiB steps: 72M saved the
	// dump (MemTotal 38.2 MiB, 15.5 MiB available at the init's start,
	// 14.7 MiB once saved), 68M did not (the capture kernel ran out of
	// memory at boot, unpacking the initramfs: 11,013 of its 17,408
	// pages reserved). The other terms come to 50.7 MiB, so the run
	// needed 17.3-21.3 MiB. x86_64's 6.12 by the same reckoning (61.5
	// MiB loaded, 9.1 unpacked; 84M saved, 80M not) needs 8.4-12.4: its
	// init_size includes room to decompress that the booted kernel
	// frees, where an arm64 Image runs in place. The same at 2 GiB
	// (MemAvailable within 0.2 MiB): the capture kernel maps only its
	// reservation (linux,usable-memory-range). 36 MiB keeps the margin
	// of about 15 MiB that runtimeMemory keeps over the x86_64 need.
	// 16 and 64 KiB page kernels are not measured.
	runtimeMemoryArm64 = 36 << 20
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
	// PerCPU is what each CPU beyond the first costs (capture_cpus).
	// Measured with Debian's 7.3 cloud kernel as the capture kernel in
	// QEMU -smp 4, nr_cpus=1, 2 and 4 (qemu-tests
	// TestCaptureCPUsCalibrate, GOKDUMP_CALIBRATE=1; the capture init
	// logs meminfo): each CPU takes 0.2-0.3 MiB off MemTotal (per-CPU
	// areas reserved at boot), 0.2-0.5 MiB more of Percpu and 0.1-0.2
	// MiB of KernelStack once the capture is done; the save runs a
	// worker per CPU, 1.0 MiB of peak RSS each (gokdump save --workers
	// 1 to 8 on a 1 GiB vmcore: 14.2 to 21.3 MiB). 1.6-2.0 MiB in all.
	// MemAvailable at the init's start did not fall with more CPUs
	// (39.2, 41.3, 43.0 MiB): its run-to-run spread, ±1.5 MiB, hides
	// terms this small.
	PerCPU = 2 << 20
	// EstimateAlign rounds the recommendation up to a multiple of it.
	EstimateAlign = 16 << 20
)

// Estimate is a recommended crashkernel= size and how it was reached.
type Estimate struct {
	Arch     string // the kernel's machine (Plan.Arch); "" when its format was not recognised
	Load     uint64 // the loaded segments (Plan.Need)
	Unpacked uint64 // the initramfs unpacked into the capture kernel's rootfs
	Runtime  uint64 // room for the capture kernel to run
	CPUs     int    // the capture kernel's CPUs (capture_cpus)
	CPUTerm  uint64 // PerCPU for each CPU beyond the first
	RAM      uint64 // the machine's memory
	PerRAM   uint64 // the term growing with RAM
	Sum      uint64 // the terms added
	Total    uint64 // Sum rounded up to a multiple of EstimateAlign
}

// EstimateCrashkernel recommends a reservation for loading p on a machine
// with ram bytes of memory, its initramfs unpacking to unpacked bytes (0:
// unknown; a typical host-only image is assumed), the capture kernel
// bringing up cpus CPUs (below 1: 1).
func EstimateCrashkernel(p *Plan, ram, unpacked uint64, cpus int) Estimate {
	if unpacked == 0 && p.Initrd != "" {
		unpacked = defaultUnpacked
	}
	cpus = max(cpus, 1)
	e := Estimate{Arch: p.Arch, Load: p.Need(), Unpacked: unpacked, Runtime: runtimeFor(p.Arch), RAM: ram, CPUs: cpus}
	e.PerRAM = ramTerm(ram)
	e.CPUTerm = uint64(cpus-1) * PerCPU
	e.Sum = e.Load + e.Unpacked + e.Runtime + e.PerRAM + e.CPUTerm
	e.Total = alignUp(e.Sum, EstimateAlign)
	return e
}

// runtimeFor is the runtime term for a capture kernel of arch (a
// Plan.Arch); a kernel not recognised is taken for an x86_64 one.
func runtimeFor(arch string) uint64 {
	if arch == ArchARM64 {
		return runtimeMemoryArm64
	}
	return runtimeMemory
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
	kernel := map[string]string{ArchX86_64: "init_size", ArchARM64: "image_size"}[e.Arch]
	if kernel == "" {
		kernel = "file size"
	}
	runtime := "capture kernel and capture at run time"
	if e.Arch == ArchARM64 {
		runtime += " (arm64)"
	}
	fmt.Fprintf(&b, "  %-48s %s\n", "loaded kernel ("+kernel+"), initrd, kexec segments", mib(e.Load))
	fmt.Fprintf(&b, "+ %-48s %s\n", unpacked, mib(e.Unpacked))
	fmt.Fprintf(&b, "+ %-48s %s\n", runtime, mib(e.Runtime))
	fmt.Fprintf(&b, "+ %-48s %s\n", fmt.Sprintf("%s per TiB of RAM, for %s", size.Size(perTiB), size.Size(e.RAM)), mib(e.PerRAM))
	if e.CPUs > 1 {
		fmt.Fprintf(&b, "+ %-48s %s\n", fmt.Sprintf("%s per CPU beyond the first, for %d CPUs", size.Size(PerCPU), e.CPUs), mib(e.CPUTerm))
	}
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
