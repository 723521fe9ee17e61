package kmem

import (
	"fmt"
)

// X86StartKernelMap is x86_64's __START_KERNEL_map, where the kernel maps
// its image: virtual = physical - phys_base + X86StartKernelMap
// (__pa_symbol).
const X86StartKernelMap = 0xffffffff80000000

// x86_64 constants, as arch/x86/include/asm spells them.
const (
	x86PagePresent = 1 << 0
	x86PagePSE     = 1 << 7
	// Bits 12..51 of an entry hold the next table's or page's address.
	x86PhysMask = ((1 << 52) - 1) &^ 0xfff
)

type x86_64 struct {
	m        *Memory
	physBase uint64
	pgd      uint64 // physical address of init_top_pgt
	levels   int    // 4 or 5
	meMask   uint64 // AMD SME encryption bit, to clear from entries
	// One cached page-table page per level: walks of neighbouring
	// addresses (a run of struct pages) hit the same tables.
	cache [5]struct {
		pa    uint64
		valid bool
		page  [512]uint64
	}
	raw [4096]byte
}

func newX86_64(m *Memory) (*x86_64, error) {
	pb, ok := m.Info.Number("phys_base")
	if !ok {
		return nil, fmt.Errorf("%w NUMBER(phys_base)", ErrMissing)
	}
	top, ok := m.Info.Symbol("init_top_pgt")
	if !ok {
		// Kernels before 4.13 called it init_level4_pgt.
		if top, ok = m.Info.Symbol("init_level4_pgt"); !ok {
			return nil, fmt.Errorf("%w SYMBOL(init_top_pgt)", ErrMissing)
		}
	}
	x := &x86_64{m: m, physBase: uint64(pb), levels: 4}
	if l5, ok := m.Info.Number("pgtable_l5_enabled"); ok && l5 != 0 {
		x.levels = 5
	}
	if me, ok := m.Info.Number("sme_mask"); ok {
		x.meMask = uint64(me)
	}
	if top < X86StartKernelMap {
		return nil, fmt.Errorf("kmem: SYMBOL(init_top_pgt)=%#x is not a kernel-image address", top)
	}
	x.pgd = top - X86StartKernelMap + x.physBase
	return x, nil
}

func (x *x86_64) entry(level int, table uint64, index uint64) (uint64, error) {
	c := &x.cache[level]
	if !c.valid || c.pa != table {
		c.valid = false
		if _, err := x.m.Phys.ReadPhys(x.raw[:], table); err != nil {
			return 0, fmt.Errorf("kmem: read page table at physical %#x: %w", table, err)
		}
		for i := range c.page {
			c.page[i] = x.m.ByteOrder.Uint64(x.raw[i*8:])
		}
		c.pa, c.valid = table, true
	}
	return c.page[index], nil
}

func (x *x86_64) translate(va uint64) (uint64, uint64, error) {
	// Canonical form: bits above the top level's range copy its top bit.
	top := uint(47)
	if x.levels == 5 {
		top = 56
	}
	if hi := int64(va) >> top; hi != 0 && hi != -1 {
		return 0, 0, fmt.Errorf("%w: %#x is not canonical", ErrNotMapped, va)
	}
	table := x.pgd
	for level := x.levels; level >= 1; level-- {
		shift := 12 + 9*uint(level-1)
		idx := (va >> shift) & 511
		e, err := x.entry(level-1, table, idx)
		if err != nil {
			return 0, 0, err
		}
		if e&x86PagePresent == 0 {
			return 0, 0, fmt.Errorf("%w: %#x (level %d entry %#x)", ErrNotMapped, va, level, e)
		}
		addr := (e &^ x.meMask) & x86PhysMask
		// A PS bit at the PUD (level 3) or PMD (level 2) maps a 1 GiB or
		// 2 MiB page; level 1 entries always map a 4 KiB page.
		if level == 1 || (e&x86PagePSE != 0 && (level == 2 || level == 3)) {
			size := uint64(1) << shift
			off := va & (size - 1)
			base := addr &^ (size - 1)
			return base + off, size - off, nil
		}
		table = addr
	}
	panic("unreachable")
}
