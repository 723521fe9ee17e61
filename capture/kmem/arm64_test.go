package kmem

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// sparsePhys is physical memory made of separate regions; reads outside
// them fail, as reads of memory a dump lacks do.
type sparsePhys struct{ regions map[uint64][]byte }

func (s *sparsePhys) ReadPhys(p []byte, pa uint64) (int, error) {
	for base, r := range s.regions {
		if pa >= base && pa-base < uint64(len(r)) {
			if pa-base+uint64(len(p)) > uint64(len(r)) {
				break
			}
			return copy(p, r[pa-base:]), nil
		}
	}
	return 0, fmt.Errorf("physical %#x not in the dump", pa)
}

// mmuModel builds AArch64 translation tables as the architecture defines
// them, independently of the walker: it starts where TTBR1 points and
// indexes each table with the bits the MMU uses for the address size, and
// encodes output addresses in the format the descriptor size demands.
type mmuModel struct {
	t         *testing.T
	mem       *sparsePhys
	pageShift uint
	vaBits    uint   // what the MMU uses (64 - T1SZ)
	ttbr      uint64 // TTBR1's base address
	ds, lpa   bool   // LPA2 (4/16 KiB, 52 bits) or LPA (64 KiB) encoding
	next      uint64 // next free physical page for tables
}

// encode puts an output address into a descriptor.
func (m *mmuModel) encode(pa uint64) uint64 {
	e := pa & (1<<48 - 1) &^ (1<<m.pageShift - 1)
	switch {
	case m.lpa:
		e |= (pa >> 48 & 0xf) << 12
	case m.ds:
		e |= pa & (0x3 << 48)
		e |= (pa >> 50 & 0x3) << 8
	default:
		// Shareability (inner): bits the walker must not take for
		// address bits.
		e |= 0x3 << 8
	}
	return e
}

func (m *mmuModel) decode(e uint64) uint64 {
	pa := e & (1<<48 - 1) &^ (1<<m.pageShift - 1)
	switch {
	case m.lpa:
		pa |= (e >> 12 & 0xf) << 48
	case m.ds:
		pa |= e & (0x3 << 48)
		pa |= (e >> 8 & 0x3) << 50
	}
	return pa
}

func (m *mmuModel) alloc(n int) uint64 {
	pa := m.next
	m.next += uint64(max(n, 1<<m.pageShift))
	m.mem.regions[pa] = make([]byte, n)
	return pa
}

// geometry returns the number of levels the MMU walks and the top table's
// index bits (Arm ARM, D8.2: the initial lookup level follows from T1SZ
// and the granule).
func (m *mmuModel) geometry() (levels int, topBits uint) {
	per := m.pageShift - 3
	bits := m.vaBits - m.pageShift
	levels = int((bits + per - 1) / per)
	return levels, bits - uint(levels-1)*per
}

// mapAt maps va to pa with a descriptor at walk level (1: page, 2 or 3:
// block), creating tables as needed, and returns the mapping's size.
func (m *mmuModel) mapAt(va, pa uint64, level int) uint64 {
	m.t.Helper()
	levels, topBits := m.geometry()
	per := m.pageShift - 3
	table, bits := m.ttbr, topBits
	for l := levels; ; l-- {
		shift := m.pageShift + uint(l-1)*per
		idx := va >> shift & (1<<bits - 1)
		slot := m.slot(table, idx)
		if l == level {
			d := uint64(0x3) // page
			if level > 1 {
				d = 0x1 // block
			}
			// AF, and UXN/PXN: attribute bits around the address.
			d |= 1<<10 | 3<<53
			binary.LittleEndian.PutUint64(slot, m.encode(pa)|d)
			return 1 << shift
		}
		e := binary.LittleEndian.Uint64(slot)
		if e&3 != 3 {
			e = m.encode(m.alloc(1<<m.pageShift)) | 3
			binary.LittleEndian.PutUint64(slot, e)
		}
		table, bits = m.decode(e), per
	}
}

// slot returns the 8 bytes of entry idx of the table at pa.
func (m *mmuModel) slot(pa, idx uint64) []byte {
	addr := pa + idx*8
	for base, r := range m.mem.regions {
		if addr >= base && addr+8 <= base+uint64(len(r)) {
			return r[addr-base : addr-base+8]
		}
	}
	m.t.Fatalf("model: no table memory at %#x", addr)
	return nil
}

// arm64Config is one kernel configuration the walker must handle.
type arm64Config struct {
	name             string
	pageKiB          int
	vaBits, t1szBits uint // VA_BITS, and 64 - TCR_EL1_T1SZ (0: no T1SZ)
	wantLevels       int
	ds, lpa          bool
	tableBase        uint64 // where tables live: above 2^48 for 52-bit PAs
	ttbrOffset       uint64 // TTBR1 - swapper_pg_dir (TTBR1_BADDR_4852_OFFSET)
	pgdBytes         int    // size of swapper_pg_dir as the kernel allocates it
	blockLevels      []int  // walk levels that may hold blocks
}

func arm64Configs() []arm64Config {
	return []arm64Config{
		{name: "4K-39", pageKiB: 4, vaBits: 39, t1szBits: 39, wantLevels: 3, pgdBytes: 4096, blockLevels: []int{2, 3}},
		{name: "4K-48", pageKiB: 4, vaBits: 48, t1szBits: 48, wantLevels: 4, pgdBytes: 4096, blockLevels: []int{2, 3}},
		{name: "4K-48-noT1SZ", pageKiB: 4, vaBits: 48, wantLevels: 4, pgdBytes: 4096, blockLevels: []int{2, 3}},
		{name: "4K-52-LPA2", pageKiB: 4, vaBits: 52, t1szBits: 52, wantLevels: 5, ds: true, tableBase: 0xa_0000_0000_0000, pgdBytes: 4096, blockLevels: []int{2, 3}},
		// A 52-bit LPA2 kernel on a CPU without LPA2 folds its top
		// level: swapper_pg_dir is a 4-level walk's top table.
		{name: "4K-52-on-48", pageKiB: 4, vaBits: 52, t1szBits: 48, wantLevels: 4, pgdBytes: 4096, blockLevels: []int{2, 3}},
		{name: "16K-47", pageKiB: 16, vaBits: 47, t1szBits: 47, wantLevels: 3, pgdBytes: 16384, blockLevels: []int{2}},
		{name: "16K-48", pageKiB: 16, vaBits: 48, t1szBits: 48, wantLevels: 4, pgdBytes: 16384, blockLevels: []int{2}},
		{name: "16K-52-LPA2", pageKiB: 16, vaBits: 52, t1szBits: 52, wantLevels: 4, ds: true, tableBase: 0x3_0000_0000_0000, pgdBytes: 16384, blockLevels: []int{2, 3}},
		{name: "16K-52-on-47", pageKiB: 16, vaBits: 52, t1szBits: 47, wantLevels: 3, pgdBytes: 16384, blockLevels: []int{2}},
		{name: "64K-42", pageKiB: 64, vaBits: 42, t1szBits: 42, wantLevels: 2, pgdBytes: 65536, blockLevels: []int{2}},
		{name: "64K-48", pageKiB: 64, vaBits: 48, t1szBits: 48, wantLevels: 3, pgdBytes: 65536, blockLevels: []int{2}},
		{name: "64K-52-LPA", pageKiB: 64, vaBits: 52, t1szBits: 52, wantLevels: 3, lpa: true, tableBase: 0xf_0000_0000_0000, pgdBytes: 65536, blockLevels: []int{2}},
		// 64 KiB pages, 52 bits built, no LVA: the kernel points TTBR1
		// into swapper_pg_dir, at the entries of 48-bit addresses:
		// ((1 << (52 - PGDIR_SHIFT)) - (1 << (48 - PGDIR_SHIFT))) * 8
		// with PGDIR_SHIFT 42.
		{name: "64K-52-on-48", pageKiB: 64, vaBits: 52, t1szBits: 48, wantLevels: 3, lpa: true, ttbrOffset: (1<<10 - 1<<6) * 8, pgdBytes: 65536, blockLevels: []int{2}},
	}
}

// build makes the tables and VMCOREINFO of c, and returns the mappings it
// made: virtual address, physical address, size.
type arm64Mapping struct{ va, pa, size uint64 }

func (c arm64Config) build(t *testing.T) (*sparsePhys, *vmcoreinfo.Info, []arm64Mapping) {
	t.Helper()
	pageShift := map[int]uint{4: 12, 16: 14, 64: 16}[c.pageKiB]
	run := c.t1szBits
	if run == 0 {
		run = c.vaBits
	}
	mem := &sparsePhys{regions: map[uint64][]byte{}}
	base := c.tableBase
	if base == 0 {
		base = 0x4000_0000
	}
	m := &mmuModel{t: t, mem: mem, pageShift: pageShift, vaBits: run, ds: c.ds && run == 52, lpa: c.lpa, next: base}
	pgd := m.alloc(c.pgdBytes)
	m.ttbr = pgd + c.ttbrOffset

	// The kernel image lives at kimage_voffset + its physical address;
	// the linear map at the bottom of the TTBR1 range.
	kimageVA := -(uint64(1) << (run - 1)) + 0x1234<<uint(pageShift) // low in the upper half
	kimagePA := base + 0x4000_0000
	hiPA := kimagePA
	if m.ds || m.lpa {
		hiPA = 0xc_8000_0000_0000 // a 52-bit physical address
	}
	voff := kimageVA - kimagePA
	swapperVA := pgd + voff

	var maps []arm64Mapping
	add := func(va, pa uint64, level int) {
		size := m.mapAt(va, pa, level)
		maps = append(maps, arm64Mapping{va, pa, size})
	}
	page := uint64(1) << pageShift
	add(kimageVA, kimagePA, 1)
	add(kimageVA+page, kimagePA+7*page, 1)
	linear := -(uint64(1) << run)
	for _, lv := range c.blockLevels {
		size := uint64(1) << (pageShift + uint(lv-1)*(pageShift-3))
		pa := (hiPA + 1<<40) &^ (size - 1)
		add(linear+size*3, pa, lv)
	}
	add(linear+page, hiPA+5*page, 1)
	// The top of the range: the last entry of every table.
	add(^uint64(0)&^(page-1), kimagePA+page*3, 1)
	// swapper_pg_dir itself, through the image mapping.
	add(swapperVA&^(page-1), pgd&^(page-1), 1)

	var b strings.Builder
	fmt.Fprintf(&b, "OSRELEASE=6.12.0-test\nPAGESIZE=%d\n", c.pageKiB<<10)
	fmt.Fprintf(&b, "SYMBOL(swapper_pg_dir)=%x\n", swapperVA)
	fmt.Fprintf(&b, "NUMBER(VA_BITS)=%d\n", c.vaBits)
	fmt.Fprintf(&b, "NUMBER(kimage_voffset)=0x%x\n", voff)
	fmt.Fprintf(&b, "NUMBER(PHYS_OFFSET)=0x40000000\n")
	if c.t1szBits != 0 {
		fmt.Fprintf(&b, "NUMBER(TCR_EL1_T1SZ)=%d\n", 64-c.t1szBits)
	}
	info, err := vmcoreinfo.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return mem, info, maps
}

// TestTranslateARM64Synthetic walks tables of every granule and address
// size Linux uses, built by a model of the MMU rather than by the walker's
// own rules: pages and blocks translate, with the bytes left in them;
// holes, user addresses and addresses beyond the size do not.
func TestTranslateARM64Synthetic(t *testing.T) {
	for _, c := range arm64Configs() {
		t.Run(c.name, func(t *testing.T) {
			mem, info, maps := c.build(t)
			m, err := New(mem, info, elf.EM_AARCH64)
			if err != nil {
				t.Fatal(err)
			}
			a := m.tr.(*arm64)
			if a.levels != c.wantLevels {
				t.Errorf("%d levels, want %d", a.levels, c.wantLevels)
			}
			for _, mp := range maps {
				for _, off := range []uint64{0, 8, mp.size / 2, mp.size - 8} {
					pa, n, err := m.Translate(mp.va + off)
					if err != nil {
						t.Fatalf("translate %#x: %v", mp.va+off, err)
					}
					if pa != mp.pa+off || n != mp.size-off {
						t.Fatalf("translate %#x = %#x, %d; want %#x, %d", mp.va+off, pa, n, mp.pa+off, mp.size-off)
					}
				}
			}
			// A hole: the page after the image's two.
			holes := []uint64{maps[0].va + 2<<a.pageShift}
			// Not kernel addresses: user space, the non-canonical gap
			// below the TTBR1 range.
			holes = append(holes, 0, 0x0000_7fff_ffff_f000, -(uint64(1)<<a.vaBits)-8)
			for _, va := range holes {
				if _, _, err := m.Translate(va); !errors.Is(err, ErrNotMapped) {
					t.Errorf("translate %#x: %v, want ErrNotMapped", va, err)
				}
			}
			// A tagged pointer (KASAN's tag in the top byte) is the
			// address it tags.
			tagged := maps[0].va&^(0xff<<56) | 0xf2<<56
			if pa, _, err := m.Translate(tagged); err != nil || pa != maps[0].pa {
				t.Errorf("translate tagged %#x = %#x, %v; want %#x", tagged, pa, err, maps[0].pa)
			}
		})
	}
}

// TestARM64Descriptors checks what a walk must not take for a mapping:
// invalid entries that still hold an address, blocks where Linux maps
// none, and a table descriptor at the last level.
func TestARM64Descriptors(t *testing.T) {
	c := arm64Configs()[1] // 4K-48
	mem, info, maps := c.build(t)
	m, err := New(mem, info, elf.EM_AARCH64)
	if err != nil {
		t.Fatal(err)
	}
	a := m.tr.(*arm64)
	va := maps[0].va
	e, level, err := a.walk(va)
	if err != nil || level != 1 {
		t.Fatalf("walk %#x: %#x level %d, %v", va, e, level, err)
	}
	// Rewrite the entry that maps va, find it by its value.
	var slot []byte
	for _, r := range mem.regions {
		for i := 0; i+8 <= len(r); i += 8 {
			if binary.LittleEndian.Uint64(r[i:]) == e {
				slot = r[i : i+8]
			}
		}
	}
	for _, bad := range []uint64{e &^ 1, e &^ 3, e&^3 | 1} {
		binary.LittleEndian.PutUint64(slot, bad)
		a.cache = [5]arm64Table{}
		if _, _, err := m.Translate(va); !errors.Is(err, ErrNotMapped) {
			t.Errorf("entry %#x at level 3: %v, want ErrNotMapped", bad, err)
		}
	}
	binary.LittleEndian.PutUint64(slot, e)

	// A block descriptor in the top table (level 0 with 4 KiB pages).
	top := mem.regions[a.pgd]
	idx := va >> 39 & 511
	saved := binary.LittleEndian.Uint64(top[idx*8:])
	binary.LittleEndian.PutUint64(top[idx*8:], saved&^3|1)
	a.cache = [5]arm64Table{}
	if _, _, err := m.Translate(va); !errors.Is(err, ErrNotMapped) {
		t.Errorf("block at level 0: %v, want ErrNotMapped", err)
	}
}

// TestARM64VMCOREINFO: what the walk cannot honour is an error naming
// it, never a guess.
func TestARM64VMCOREINFO(t *testing.T) {
	base := map[string]string{
		"PAGESIZE":               "4096",
		"SYMBOL(swapper_pg_dir)": "ffff800081a7b000",
		"NUMBER(VA_BITS)":        "48",
		"NUMBER(kimage_voffset)": "0xffff7fffc0000000",
		"NUMBER(TCR_EL1_T1SZ)":   "16",
		"NUMBER(PHYS_OFFSET)":    "0x40000000",
		"OSRELEASE":              "6.12.0-test",
	}
	for _, tc := range []struct {
		name string
		set  map[string]string
		want error
		msg  string
	}{
		{"ok", nil, nil, ""},
		{"8K pages", map[string]string{"PAGESIZE": "8192"}, ErrUnsupported, "PAGESIZE=8192"},
		{"no PAGESIZE", map[string]string{"PAGESIZE": ""}, ErrMissing, "PAGESIZE"},
		{"no swapper_pg_dir", map[string]string{"SYMBOL(swapper_pg_dir)": ""}, ErrMissing, "swapper_pg_dir"},
		{"no kimage_voffset", map[string]string{"NUMBER(kimage_voffset)": ""}, ErrMissing, "kimage_voffset"},
		{"52 bits, no T1SZ", map[string]string{"NUMBER(VA_BITS)": "52", "NUMBER(TCR_EL1_T1SZ)": ""}, ErrMissing, "TCR_EL1_T1SZ"},
		{"no sizes", map[string]string{"NUMBER(VA_BITS)": "", "NUMBER(TCR_EL1_T1SZ)": ""}, ErrMissing, "VA_BITS"},
		{"T1SZ beyond VA_BITS", map[string]string{"NUMBER(TCR_EL1_T1SZ)": "12"}, nil, "more than VA_BITS"},
		{"T1SZ absurd", map[string]string{"NUMBER(TCR_EL1_T1SZ)": "60"}, nil, "TCR_EL1_T1SZ)=60"},
		{"VA_BITS absurd", map[string]string{"NUMBER(VA_BITS)": "64", "NUMBER(TCR_EL1_T1SZ)": ""}, nil, "VA_BITS)=64"},
		{"swapper_pg_dir in user space", map[string]string{"SYMBOL(swapper_pg_dir)": "81a7b000"}, nil, "not a kernel address"},
		{"swapper_pg_dir unaligned", map[string]string{"SYMBOL(swapper_pg_dir)": "ffff800081a7b008"}, nil, "not page-aligned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range base {
				kv[k] = v
			}
			for k, v := range tc.set {
				kv[k] = v
			}
			keys := make([]string, 0, len(kv))
			for k, v := range kv {
				if v != "" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
			}
			info, err := vmcoreinfo.Parse([]byte(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(&sparsePhys{}, info, elf.EM_AARCH64)
			switch {
			case tc.want == nil && tc.msg == "":
				if err != nil {
					t.Fatal(err)
				}
			case err == nil:
				t.Fatalf("no error, want %v %q", tc.want, tc.msg)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err %v, want %v", err, tc.want)
			case !strings.Contains(err.Error(), tc.msg):
				t.Fatalf("err %v, want it to say %q", err, tc.msg)
			}
		})
	}
}

// FuzzTranslateARM64 walks tables of hostile content: the top table and
// every table under it are the input, repeated, in any configuration.
// Translate must not panic, must read only whole tables, and what it
// returns must lie within the page or block it reports.
func FuzzTranslateARM64(f *testing.F) {
	f.Add(uint8(0), uint64(0xffff800080000000), []byte{3, 0, 0x40, 0x40, 0, 0, 0, 0})
	f.Add(uint8(3), uint64(0xfff0000000000000), []byte{1, 4, 0, 0x40, 0, 0, 0, 0})
	f.Add(uint8(12), uint64(0xffffffffffff0000), []byte{3, 3, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, cfg uint8, va uint64, table []byte) {
		cs := arm64Configs()
		c := cs[int(cfg)%len(cs)]
		if len(table) == 0 || len(table) > 1<<10 {
			return
		}
		pageShift := map[int]uint{4: 12, 16: 14, 64: 16}[c.pageKiB]
		page := 1 << pageShift
		// Every table in [0, 16 pages) and at the 52-bit bases holds the
		// input, repeated: any entry points at some table or outside.
		mem := &sparsePhys{regions: map[uint64][]byte{}}
		for _, base := range []uint64{0, 0xa_0000_0000_0000} {
			r := make([]byte, 16*page)
			for i := 0; i < len(r); i += len(table) {
				copy(r[i:], table)
			}
			mem.regions[base] = r
		}
		run := c.t1szBits
		if run == 0 {
			run = c.vaBits
		}
		voff := -(uint64(1) << (run - 1))
		var b strings.Builder
		fmt.Fprintf(&b, "PAGESIZE=%d\nSYMBOL(swapper_pg_dir)=%x\nNUMBER(VA_BITS)=%d\nNUMBER(kimage_voffset)=0x%x\n",
			page, voff+uint64(page), c.vaBits, voff)
		if c.t1szBits != 0 {
			fmt.Fprintf(&b, "NUMBER(TCR_EL1_T1SZ)=%d\n", 64-c.t1szBits)
		}
		info, err := vmcoreinfo.Parse([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(mem, info, elf.EM_AARCH64)
		if err != nil {
			t.Fatal(err)
		}
		pa, n, err := m.Translate(va)
		if err != nil {
			return
		}
		// At most a level-3 block of 64 KiB pages (4 TiB).
		if n == 0 || n > 1<<42 {
			t.Fatalf("translate %#x = %#x: contiguous %d", va, pa, n)
		}
		if pa>>52 != 0 {
			t.Fatalf("translate %#x = %#x: beyond 52 bits", va, pa)
		}
		// The whole reported run must be one page or block: its end is
		// aligned to the page size at least.
		if (pa+n)&uint64(page-1) != 0 {
			t.Fatalf("translate %#x = %#x, %d: run ends mid-page", va, pa, n)
		}
	})
}
