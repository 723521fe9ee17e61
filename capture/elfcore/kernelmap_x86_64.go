package elfcore

import (
	"debug/elf"
	"fmt"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

func init() { kernelArchs[uint16(elf.EM_X86_64)] = x86KernelFacts }

// x86KernelFacts: the image from _stext, mapped through phys_base. The
// direct map's base (page_offset_base) moves with KASLR and VMCOREINFO
// does not give it: no candidates.
func x86KernelFacts(info *vmcoreinfo.Info) (kernelFacts, error) {
	start, ok := info.Symbol("_stext")
	if !ok {
		return kernelFacts{}, fmt.Errorf("VMCOREINFO lacks SYMBOL(_stext)")
	}
	pb, ok := info.Number("phys_base")
	if !ok {
		return kernelFacts{}, fmt.Errorf("VMCOREINFO lacks NUMBER(phys_base)")
	}
	// phys_base is negative when KASLR moved the kernel further in virtual
	// than in physical memory: the arithmetic wraps, as __pa_symbol's.
	return kernelFacts{imageStart: start, imageOff: kmem.X86StartKernelMap - uint64(pb)}, nil
}
