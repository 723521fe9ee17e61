package elfcore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// KernelMap is a source's program headers with the kernel virtual
// addresses a physical-only source lacks added (see KernelSegments).
type KernelMap struct {
	// Segments are the PT_LOADs to write (Options.Segments): the kernel
	// image's first, then the source's, in its order.
	Segments []vmcore.Segment
	// Image counts the kernel-image PT_LOADs added; Linear the source
	// PT_LOADs given their direct-map (linear map) address.
	Image, Linear int
	// Warnings say what could not be added and why; the PT_LOADs are then
	// written as the source has them.
	Warnings []string
}

// kernelFacts is what a machine's VMCOREINFO says of its kernel mappings.
type kernelFacts struct {
	// imageStart is the first virtual address of the kernel image to
	// map; imageOff is virtual - physical there (mod 2^64).
	imageStart, imageOff uint64
	// linear lists candidate offsets, virtual - physical, of the direct
	// map, each valid for physical addresses in [lo, hi); the page tables
	// decide which, if any, is true.
	linear []linearMap
}

type linearMap struct{ off, lo, hi uint64 }

// kernelArchs reads a machine's kernel mapping facts, by ELF machine.
var kernelArchs = map[uint16]func(*vmcoreinfo.Info) (kernelFacts, error){}

// maxImageScan bounds the virtual addresses searched for the kernel
// image, from its start: more than any kernel image (Debian's arm64 6.12
// is 34 MiB, x86_64's KERNEL_IMAGE_SIZE is at most 1 GiB).
const maxImageScan = 1 << 30

// linearSamples bounds the pages whose direct-map address is checked
// against the page tables: per PT_LOAD, and over all of them (however many
// PT_LOADs a hostile header has).
const (
	linearSamples      = 1024
	linearSamplesTotal = 1 << 16
)

// KernelSegments returns the PT_LOADs to write for src. A dump the kernel
// wrote (/proc/vmcore) has a PT_LOAD mapping the kernel image's virtual
// addresses and gives its RAM PT_LOADs their direct-map addresses; QEMU's
// dump-guest-memory cores have physical addresses only. Readers such as
// drgn before 0.0.27 read the top page table (swapper_pg_dir, in the
// image) by its virtual address, so without an image PT_LOAD they cannot
// translate any address.
//
// When src has no PT_LOAD covering the image's start, one is added for
// each run of the image that the dump's own page tables map at the
// address VMCOREINFO gives (arm64: kimage_voffset; x86_64: phys_base and
// __START_KERNEL_map), page by page. Source PT_LOADs without a kernel
// virtual address get their direct-map one where the page tables confirm
// it on sampled pages (arm64: PAGE_OFFSET from VA_BITS, PHYS_OFFSET;
// x86_64's direct map moves with KASLR and VMCOREINFO does not say
// where, so those stay as they are). Nothing is guessed: what cannot be
// confirmed is left as the source has it, and Warnings say so.
func KernelSegments(src *vmcore.File) KernelMap {
	km := KernelMap{Segments: slices.Clone(src.Segments)}
	factsOf := kernelArchs[uint16(src.Machine)]
	if factsOf == nil {
		return km
	}
	hasImage, needLinear := false, false
	for _, s := range src.Segments {
		if s.MemSize == 0 {
			continue
		}
		if !kernelVA(s.VirtAddr) {
			needLinear = true
		}
	}
	warn := func(format string, args ...any) {
		km.Warnings = append(km.Warnings, "ELF output: "+fmt.Sprintf(format, args...))
	}
	if src.VMCOREINFO == nil {
		if needLinear {
			warn("no VMCOREINFO, so no kernel virtual addresses are added to the physical-only PT_LOADs")
		}
		return km
	}
	facts, err := factsOf(src.VMCOREINFO)
	if err == nil {
		hasImage = coversVA(src.Segments, facts.imageStart)
	} else {
		// Without the facts, a source that maps some kernel address is
		// taken to be the kernel's own, as complete as it is.
		hasImage = !needLinear
	}
	if hasImage && !needLinear {
		return km
	}
	if err != nil {
		warn("no kernel-image PT_LOAD added: %v", err)
		return km
	}
	mem, err := kmem.New(src, src.VMCOREINFO, src.Machine)
	if err != nil {
		warn("no kernel virtual addresses added: the page tables cannot be walked: %v", err)
		return km
	}
	tr := mem.Translate
	if needLinear && len(facts.linear) > 0 {
		samples := uint64(min(linearSamples, max(16, linearSamplesTotal/len(km.Segments))))
		for i, s := range km.Segments {
			if s.MemSize == 0 || kernelVA(s.VirtAddr) {
				continue
			}
			if off, ok := confirmLinear(tr, s, facts.linear, uint64(src.PageSize), samples); ok {
				km.Segments[i].VirtAddr = s.PhysAddr + off
				km.Linear++
			}
		}
		if n := countLinearless(km.Segments); n > 0 {
			warn("%d PT_LOADs keep no kernel virtual address: the page tables confirm no direct-map address for them", n)
		}
	}
	if !hasImage {
		runs := imageRuns(tr, facts.imageStart, facts.imageOff, uint64(src.PageSize))
		var img []vmcore.Segment
		for _, r := range runs {
			img = append(img, clipToSource(src.PhysRanges(), r.start-facts.imageOff, r.start, r.end-r.start)...)
		}
		if len(img) == 0 {
			warn("no kernel-image PT_LOAD added: the page tables do not map %#x at physical %#x, or the dump lacks that memory",
				facts.imageStart, facts.imageStart-facts.imageOff)
		}
		km.Image = len(img)
		km.Segments = append(img, km.Segments...)
	}
	return km
}

// kernelVA reports whether a p_vaddr is a kernel address: the upper half
// of the address space, on x86_64 and arm64 alike. QEMU's cores leave 0
// or the physical address there.
func kernelVA(va uint64) bool { return va>>63 == 1 }

// coversVA reports whether a PT_LOAD maps virtual address va.
func coversVA(segs []vmcore.Segment, va uint64) bool {
	for _, s := range segs {
		if s.MemSize > 0 && kernelVA(s.VirtAddr) && va >= s.VirtAddr && va-s.VirtAddr < s.MemSize {
			return true
		}
	}
	return false
}

func countLinearless(segs []vmcore.Segment) int {
	n := 0
	for _, s := range segs {
		if s.MemSize > 0 && !kernelVA(s.VirtAddr) {
			n++
		}
	}
	return n
}

// translateFunc is kmem.Memory.Translate.
type translateFunc func(va uint64) (pa, n uint64, err error)

// vaRun is a run of virtual addresses [start, end).
type vaRun struct{ start, end uint64 }

// imageRuns returns the runs of virtual addresses from start on that the
// page tables map at virtual - off, as the kernel maps its image. The
// search ends at a page mapped anywhere else (past the image: vmalloc),
// at an unmapped stretch longer than the image found before it (the
// holes inside an image, its init sections freed after boot, are shorter
// than the text before them), or after maxImageScan.
func imageRuns(tr translateFunc, start, off, ps uint64) []vaRun {
	var runs []vaRun
	var found uint64 // bytes mapped so far
	base := start &^ (ps - 1)
	va := base
	gapStart, inGap := va, true
	for va-base < maxImageScan {
		pa, n, err := tr(va)
		switch {
		case err != nil:
			if !errors.Is(err, kmem.ErrNotMapped) {
				return runs // the tables cannot be read: stop with what is sure
			}
			if !inGap {
				gapStart, inGap = va, true
			}
			if va+ps-gapStart > found {
				return runs
			}
			va += ps
			continue
		case pa != va-off:
			return runs
		}
		if n == 0 || va > ^uint64(0)-n {
			return runs // nothing sane maps the top of the address space
		}
		if inGap {
			runs = append(runs, vaRun{va, va})
			inGap = false
		}
		runs[len(runs)-1].end = va + n
		found += n
		va += n
	}
	return runs
}

// confirmLinear returns the candidate offset whose direct-map addresses
// the page tables confirm for s: every sampled page they map is mapped
// at physical + off, and at least one is. Pages the direct map leaves
// out (reserved no-map memory) are not held against a candidate.
func confirmLinear(tr translateFunc, s vmcore.Segment, cands []linearMap, ps uint64, samples uint64) (uint64, bool) {
	pages := (s.MemSize + ps - 1) / ps
	step := max(1, pages/samples)
	for _, c := range cands {
		if s.PhysAddr < c.lo || s.PhysAddr+s.MemSize-1 > c.hi-1 {
			continue
		}
		mapped, ok := 0, true
		for p := uint64(0); p < pages && ok; p += step {
			pa := s.PhysAddr&^(ps-1) + p*ps
			got, _, err := tr(pa + c.off)
			switch {
			case errors.Is(err, kmem.ErrNotMapped):
			case err != nil || got != pa:
				ok = false
			default:
				mapped++
			}
		}
		if ok && mapped > 0 {
			return c.off, true
		}
	}
	return 0, false
}

// clipToSource returns the PT_LOADs mapping virtual va, physical pa, for
// n bytes, cut to the physical memory src declares.
func clipToSource(rs []vmcore.PhysRange, pa, va, n uint64) []vmcore.Segment {
	var out []vmcore.Segment
	for _, r := range rs {
		a, b := max(pa, r.Start), min(pa+n, r.End)
		if a >= b {
			continue
		}
		out = append(out, vmcore.Segment{VirtAddr: va + (a - pa), PhysAddr: a, MemSize: b - a, FileSize: b - a})
	}
	return out
}
