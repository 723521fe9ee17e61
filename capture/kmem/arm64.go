package kmem

import "fmt"

// arm64 walks the kernel's translation tables (TTBR1: swapper_pg_dir) of
// an AArch64 dump, as the MMU does. Everything comes from VMCOREINFO:
//
//   - PAGESIZE: the granule (4, 16 or 64 KiB), so 9, 11 or 13 address
//     bits per level;
//   - NUMBER(TCR_EL1_T1SZ) (5.9+): the kernel's virtual address size as
//     the MMU used it, 64 - T1SZ: a kernel built for 52 bits runs with 48
//     (47 with 16 KiB pages) on a CPU without LPA2 or LVA. Without it,
//     NUMBER(VA_BITS), the size the kernel was built for, which is the
//     one it ran with up to 48 bits;
//   - SYMBOL(swapper_pg_dir) and NUMBER(kimage_voffset) (4.12+): the top
//     table, a kernel-image address whose physical address is
//     va - kimage_voffset.
//
// The number of levels follows from the sizes: 3 for 39 bits and 4 for 48
// with 4 KiB pages, 5 for 52 (LPA2, the top table having 16 entries); 3
// for 47 and 4 for 48 and 52 bits with 16 KiB pages; 2 for 42 and 3 for
// 48 and 52 bits with 64 KiB pages. The linear map, vmemmap and the
// kernel image are all walked: no address is derived from a layout
// formula, so a layout the kernel changes cannot mislead the walk.
type arm64 struct {
	m         *Memory
	pageShift uint // 12, 14 or 16
	vaBits    uint // TTBR1 address size the MMU used (64 - T1SZ)
	levels    int
	topBits   uint   // index bits of the top table
	pgd       uint64 // physical address of swapper_pg_dir
	// An entry's output address: the bits of loMask, and the bits of
	// hiMask moved up by hiShift (52-bit physical addresses).
	loMask, hiMask uint64
	hiShift        uint
	// One cached table per level, as raw bytes: walks of neighbouring
	// addresses (a run of struct pages) hit the same tables.
	cache [5]arm64Table
}

// arm64Table is a translation table as last read.
type arm64Table struct {
	pa    uint64
	valid bool
	raw   []byte
}

// Descriptor type bits [1:0]: a table (above the last level) or a page
// (at the last level) is 0b11, a block (above the last level) 0b01;
// anything else does not translate.
const (
	arm64DescMask  = 0x3
	arm64DescTable = 0x3
	arm64DescBlock = 0x1
)

// arm64Levels returns how many levels translate va address bits with
// 1<<pageShift-byte pages, and how many index bits the top table has.
func arm64Levels(va, pageShift uint) (levels int, topBits uint) {
	perLevel := pageShift - 3
	levels = int((va - pageShift + perLevel - 1) / perLevel)
	return levels, va - pageShift - uint(levels-1)*perLevel
}

func newARM64(m *Memory) (*arm64, error) {
	ps, ok := m.Info.PageSize()
	if !ok {
		return nil, fmt.Errorf("%w PAGESIZE", ErrMissing)
	}
	a := &arm64{m: m}
	switch ps {
	case 4 << 10:
		a.pageShift = 12
	case 16 << 10:
		a.pageShift = 14
	case 64 << 10:
		a.pageShift = 16
	default:
		return nil, fmt.Errorf("%w: arm64 with PAGESIZE=%d (4, 16 or 64 KiB only)", ErrUnsupported, ps)
	}
	va, built, err := arm64VABits(m)
	if err != nil {
		return nil, err
	}
	if va < a.pageShift+(a.pageShift-3) {
		// Fewer bits than two levels index: no kernel runs so.
		return nil, fmt.Errorf("%w: arm64 with %d-bit addresses and %d KiB pages", ErrUnsupported, va, ps>>10)
	}
	a.vaBits = va
	a.levels, a.topBits = arm64Levels(va, a.pageShift)
	if bl, bt := arm64Levels(built, a.pageShift); built > va && bl == a.levels {
		// A 64 KiB kernel built for 52 bits on a CPU without LVA: the
		// same three levels, and the kernel fills swapper_pg_dir as for
		// 52 bits, pointing TTBR1 at the entries 48-bit addresses use
		// (TTBR1_BADDR_4852_OFFSET). Indexing the whole table with the
		// address's bits, all ones above va, lands on those entries.
		// Where the level count differs (LPA2's 4 and 16 KiB pages), the
		// kernel folds the top level instead and swapper_pg_dir is the
		// MMU's top table as it is.
		a.topBits = bt
	}

	// Bits [47:pageShift] hold address bits [47:pageShift] in every
	// format. 52-bit physical addresses put bits [51:48] in bits [15:12]
	// with 64 KiB pages (FEAT_LPA; those bits are zero otherwise), and
	// bits [49:48] in place and [51:50] in bits [9:8] with 4 and 16 KiB
	// pages (FEAT_LPA2, TCR_EL1.DS), which Linux enables exactly when it
	// runs with 52 virtual address bits there: without LPA2 bits [9:8]
	// are the shareability field, not address bits.
	a.loMask = (1<<48 - 1) &^ (1<<a.pageShift - 1)
	switch {
	case a.pageShift == 16:
		a.hiMask, a.hiShift = 0xf000, 36
	case va == 52:
		a.loMask |= 0x3 << 48
		a.hiMask, a.hiShift = 0x300, 42
	}

	sym, err := m.Symbol("swapper_pg_dir")
	if err != nil {
		return nil, err
	}
	voff, err := m.Number("kimage_voffset")
	if err != nil {
		return nil, err
	}
	if !a.inRange(sym) {
		return nil, fmt.Errorf("kmem: SYMBOL(swapper_pg_dir)=%#x is not a kernel address for %d-bit addresses", sym, va)
	}
	a.pgd = sym - uint64(voff)
	if a.pgd&(1<<a.pageShift-1) != 0 {
		return nil, fmt.Errorf("kmem: swapper_pg_dir at physical %#x (SYMBOL %#x - kimage_voffset %#x) is not page-aligned",
			a.pgd, sym, uint64(voff))
	}
	return a, nil
}

// arm64VABits returns the kernel's virtual address size as its MMU used it,
// and the size it was built for (VA_BITS; the same when VMCOREINFO lacks
// VA_BITS).
func arm64VABits(m *Memory) (va, built uint, err error) {
	if b, ok := m.Info.Number("VA_BITS"); ok {
		if b < 25 || b > 52 {
			return 0, 0, fmt.Errorf("kmem: NUMBER(VA_BITS)=%d is no address size the kernel uses", b)
		}
		built = uint(b)
	}
	if t1sz, ok := m.Info.Number("TCR_EL1_T1SZ"); ok {
		if t1sz < 12 || t1sz > 64-25 {
			return 0, 0, fmt.Errorf("kmem: NUMBER(TCR_EL1_T1SZ)=%d is no address size the kernel uses", t1sz)
		}
		va = uint(64 - t1sz)
		if built != 0 && va > built {
			return 0, 0, fmt.Errorf("kmem: NUMBER(TCR_EL1_T1SZ)=%d says %d-bit addresses, more than VA_BITS=%d", t1sz, va, built)
		}
		if built == 0 {
			built = va
		}
		return va, built, nil
	}
	switch {
	case built == 0:
		return 0, 0, fmt.Errorf("%w NUMBER(VA_BITS)", ErrMissing)
	case built > 48:
		// Such a kernel ran with 52 or 48 bits, depending on the CPU,
		// and only T1SZ says which.
		return 0, 0, fmt.Errorf("%w NUMBER(TCR_EL1_T1SZ) (VA_BITS=%d: the kernel may have run with 48 bits)", ErrMissing, built)
	}
	return built, built, nil
}

// inRange reports whether va is a TTBR1 (kernel) address: bits above the
// address size all ones. The top byte is ignored, as the MMU does for
// tagged kernel pointers (TBI1, with KASAN's tags).
func (a *arm64) inRange(va uint64) bool {
	va |= 0xff << 56
	return va>>a.vaBits == 1<<(64-a.vaBits)-1
}

// table returns the n-byte translation table at physical address pa.
func (a *arm64) table(level int, pa uint64, n int) ([]byte, error) {
	c := &a.cache[level]
	if c.valid && c.pa == pa && len(c.raw) == n {
		return c.raw, nil
	}
	c.valid = false
	if cap(c.raw) < n {
		c.raw = make([]byte, n)
	}
	c.raw = c.raw[:n]
	if _, err := a.m.Phys.ReadPhys(c.raw, pa); err != nil {
		return nil, fmt.Errorf("kmem: read translation table at physical %#x: %w", pa, err)
	}
	c.pa, c.valid = pa, true
	return c.raw, nil
}

func (a *arm64) translate(va uint64) (uint64, uint64, error) {
	e, level, err := a.walk(va)
	if err != nil {
		return 0, 0, err
	}
	typ := e & arm64DescMask
	// Linux maps blocks at the PMD and PUD levels only (walk levels 2
	// and 3): a block descriptor anywhere else is not one it wrote.
	if level == 1 && typ != arm64DescTable || level > 1 && (typ != arm64DescBlock || level > 3) {
		// Linux also leaves invalid entries that still hold an address
		// (linear-map aliases of pages it took out, PTE_PRESENT_INVALID):
		// the MMU does not translate them, nor do we.
		return 0, 0, fmt.Errorf("%w: %#x (level %d entry %#x)", ErrNotMapped, va, archLevel(level), e)
	}
	size := uint64(1) << (a.pageShift + uint(level-1)*(a.pageShift-3))
	off := va & (size - 1)
	return a.output(e)&^(size-1) + off, size - off, nil
}

// output returns the address an entry holds.
func (a *arm64) output(e uint64) uint64 { return e&a.loMask | (e&a.hiMask)<<a.hiShift }

// walk follows the tables for va down to the entry that ends the walk:
// a page (level 1), a block, or an entry that does not translate. It
// returns that entry and its level (levels..1).
func (a *arm64) walk(va uint64) (uint64, int, error) {
	if !a.inRange(va) {
		return 0, 0, fmt.Errorf("%w: %#x is not a kernel address (%d-bit)", ErrNotMapped, va, a.vaBits)
	}
	perLevel := a.pageShift - 3
	table := a.pgd
	idxBits := a.topBits
	for level := a.levels; ; level-- {
		shift := a.pageShift + uint(level-1)*perLevel
		idx := (va >> shift) & (1<<idxBits - 1)
		raw, err := a.table(level-1, table, 8<<idxBits)
		if err != nil {
			return 0, 0, err
		}
		e := a.m.ByteOrder.Uint64(raw[idx*8:])
		if level == 1 || e&arm64DescMask != arm64DescTable {
			return e, level, nil
		}
		table, idxBits = a.output(e), perLevel
	}
}

// archLevel names a walk level (levels..1) as the architecture numbers
// them: the last is level 3, the one above it 2, and so on (-1 for the
// top of a 5-level walk).
func archLevel(level int) int { return 4 - level }
