package filter

import (
	"fmt"
	"math/bits"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// sparse finds the struct page of a page frame through SPARSEMEM's
// mem_section table. SYMBOL(mem_section) is the address of the root array
// in both variants: with SPARSEMEM_EXTREME an array of LENGTH(mem_section)
// pointers to blocks of PAGESIZE/SIZE(mem_section) sections, without it a
// flat array of all sections.
type sparse struct {
	mem        *kmem.Memory
	root       uint64
	extreme    bool
	perBlock   uint64 // sections per block read at once
	nrSections uint64
	secSize    uint64
	mapOff     uint64
	pfnShift   uint   // PFN_SECTION_SHIFT
	mapMask    uint64 // clears the flag bits of section_mem_map

	// One block of section_mem_map words, so that walking page frames in
	// order reads each block once whatever the machine's size.
	blk struct {
		idx   uint64
		valid bool
		maps  []uint64
		ok    []bool
		raw   []byte
	}
}

func newSparse(mem *kmem.Memory, info *vmcoreinfo.Info, pageStruct int, logf func(string, ...any)) (*sparse, error) {
	miss := func(k string) error { return fmt.Errorf("%w: VMCOREINFO lacks %s", ErrLayout, k) }
	root, ok := info.Symbol("mem_section")
	if !ok {
		return nil, miss("SYMBOL(mem_section) (only SPARSEMEM kernels are supported)")
	}
	secSize, ok := info.Size("mem_section")
	if !ok {
		return nil, miss("SIZE(mem_section)")
	}
	mapOff, ok := info.Offset("mem_section.section_mem_map")
	if !ok {
		return nil, miss("OFFSET(mem_section.section_mem_map)")
	}
	secBits, ok := info.Number("SECTION_SIZE_BITS")
	if !ok {
		return nil, miss("NUMBER(SECTION_SIZE_BITS)")
	}
	physBits, ok := info.Number("MAX_PHYSMEM_BITS")
	if !ok {
		return nil, miss("NUMBER(MAX_PHYSMEM_BITS)")
	}
	ps, ok := info.PageSize()
	if !ok {
		return nil, miss("PAGESIZE")
	}
	pageShift := int64(bits.TrailingZeros64(uint64(ps)))
	switch {
	case pageShift < 12 || pageShift > 18:
		return nil, fmt.Errorf("%w: PAGESIZE=%d", ErrLayout, ps)
	case secSize < 8 || secSize > ps || mapOff < 0 || mapOff > secSize-8:
		return nil, fmt.Errorf("%w: SIZE(mem_section)=%d OFFSET(mem_section.section_mem_map)=%d",
			ErrLayout, secSize, mapOff)
	case physBits < 32 || physBits > 64 || secBits <= pageShift || secBits >= physBits ||
		physBits-secBits > 40:
		return nil, fmt.Errorf("%w: SECTION_SIZE_BITS=%d MAX_PHYSMEM_BITS=%d", ErrLayout, secBits, physBits)
	}
	s := &sparse{mem: mem, root: root, secSize: uint64(secSize), mapOff: uint64(mapOff),
		pfnShift: uint(secBits - pageShift), nrSections: 1 << uint(physBits-secBits)}
	perRoot := uint64(ps) / s.secSize
	extremeRoots := (s.nrSections + perRoot - 1) / perRoot
	n, hasLen := info.Length("mem_section")
	switch {
	case !hasLen || uint64(n) == extremeRoots:
		s.extreme, s.perBlock = true, perRoot
	case uint64(n) == s.nrSections:
		s.perBlock = min(perRoot, s.nrSections)
	default:
		return nil, fmt.Errorf("%w: LENGTH(mem_section)=%d fits neither %d roots (SPARSEMEM_EXTREME) nor %d sections",
			ErrLayout, n, extremeRoots, s.nrSections)
	}
	// The encoded mem_map is a page-aligned array minus the section's
	// first pfn in struct pages, so its low min(PAGE_SHIFT,
	// PFN_SECTION_SHIFT+log2 align(SIZE(page))) bits are free for flags.
	free := min(uint(pageShift), s.pfnShift+uint(bits.TrailingZeros64(uint64(pageStruct))))
	s.mapMask = 1<<free - 1
	s.blk.maps = make([]uint64, s.perBlock)
	s.blk.ok = make([]bool, s.perBlock)
	s.blk.raw = make([]byte, s.perBlock*s.secSize)
	kind := "SPARSEMEM"
	if s.extreme {
		kind = "SPARSEMEM_EXTREME"
	}
	logf("filter: %s, %d sections of %d pages, mem_section at %#x", kind, s.nrSections, uint64(1)<<s.pfnShift, root)
	return s, nil
}

// memMap returns the encoded mem_map of section nr: the address of the
// struct page of pfn p in that section is memMap + p*SIZE(page).
func (s *sparse) memMap(nr uint64) (uint64, bool) {
	if nr >= s.nrSections {
		return 0, false
	}
	b := nr / s.perBlock
	if !s.blk.valid || s.blk.idx != b {
		s.load(b)
	}
	i := nr % s.perBlock
	v := s.blk.maps[i]
	if !s.blk.ok[i] || v&sectionHasMemMap == 0 || v&sectionMarkedPresent == 0 {
		return 0, false
	}
	return v &^ s.mapMask, true
}

func (s *sparse) load(b uint64) {
	s.blk.idx, s.blk.valid = b, true
	clear(s.blk.ok)
	var addr uint64
	if s.extreme {
		p, err := s.mem.U64(s.root + b*8)
		if err != nil || p == 0 {
			return // no sections in this root
		}
		addr = p
	} else {
		addr = s.root + b*s.perBlock*s.secSize
	}
	n, _ := s.mem.ReadVirt(s.blk.raw, addr)
	for i := range s.blk.maps {
		end := uint64(i)*s.secSize + s.mapOff + 8
		if end > uint64(n) {
			break
		}
		s.blk.maps[i] = s.mem.ByteOrder.Uint64(s.blk.raw[end-8:])
		s.blk.ok[i] = true
	}
}
