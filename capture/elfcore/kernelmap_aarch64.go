package elfcore

import (
	"debug/elf"
	"fmt"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

func init() { kernelArchs[uint16(elf.EM_AARCH64)] = arm64KernelFacts }

// arm64KernelFacts: the image is mapped at physical + kimage_voffset
// (__pa_symbol), from _stext: the image header between _text and it is
// not mapped (6.x), and VMCOREINFO has no _text. The direct map is
// __phys_to_virt: (pa - PHYS_OFFSET) | PAGE_OFFSET, where PAGE_OFFSET is
// -(1 << VA_BITS) since 5.4 and -(1 << (VA_BITS-1)) before; the OR is an
// addition while pa - PHYS_OFFSET stays below 1 << VA_BITS. A kernel
// built for 52 bits that runs with 48 folds the difference into
// PHYS_OFFSET (memstart_addr), so VA_BITS is the built size here.
func arm64KernelFacts(info *vmcoreinfo.Info) (kernelFacts, error) {
	var f kernelFacts
	start, ok := info.Symbol("_stext")
	if !ok {
		return f, fmt.Errorf("VMCOREINFO lacks SYMBOL(_stext)")
	}
	voff, ok := info.Number("kimage_voffset")
	if !ok {
		return f, fmt.Errorf("VMCOREINFO lacks NUMBER(kimage_voffset)")
	}
	f.imageStart, f.imageOff = start, uint64(voff)
	vaBits, ok1 := info.Number("VA_BITS")
	physOff, ok2 := info.Number("PHYS_OFFSET")
	if ok1 && ok2 && vaBits >= 36 && vaBits <= 52 {
		po := uint64(physOff)
		for _, bits := range []uint{uint(vaBits), uint(vaBits) - 1} {
			pageOffset := -(uint64(1) << bits)
			// pa in [PHYS_OFFSET, PHYS_OFFSET + 2^bits), mod 2^64.
			lo, hi := po, po+uint64(1)<<bits
			if hi < lo {
				lo = 0 // wrapped: the part from 0 up
			}
			f.linear = append(f.linear, linearMap{off: pageOffset - po, lo: lo, hi: hi})
		}
	}
	return f, nil
}
