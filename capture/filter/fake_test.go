package filter

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// A synthetic crashed x86_64 machine: physical memory holding 4-level page
// tables, a SPARSEMEM_EXTREME mem_section table and struct page arrays in
// vmemmap, laid out the way a given kernel version lays them out.

var errFakeHole = errors.New("fake: physical address not in dump")

// fakePhys is physical memory made of regions, with 4 KiB holes.
type fakePhys struct {
	regions []fakeRegion
	holes   map[uint64]bool // page frame numbers that cannot be read
}

type fakeRegion struct {
	base uint64
	b    []byte
}

func (m *fakePhys) find(a uint64) *fakeRegion {
	for i := range m.regions {
		r := &m.regions[i]
		if a >= r.base && a-r.base < uint64(len(r.b)) {
			return r
		}
	}
	return nil
}

func (m *fakePhys) ReadPhys(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		r := m.find(a)
		if r == nil || m.holes[a>>12] {
			return done, fmt.Errorf("%w: %#x", errFakeHole, a)
		}
		lim := min(uint64(len(p)-done), 4096-a%4096)
		done += copy(p[done:done+int(lim)], r.b[a-r.base:])
	}
	return done, nil
}

// slice returns the bytes at physical [a, a+n), which must exist.
func (m *fakePhys) slice(a, n uint64) []byte {
	r := m.find(a)
	if r == nil || a-r.base+n > uint64(len(r.b)) {
		panic(fmt.Sprintf("fake: no memory at %#x+%d", a, n))
	}
	return r.b[a-r.base : a-r.base+n]
}

// Addresses of the synthetic machine.
const (
	fakePageOffset = 0xffff888000000000 // direct map
	fakeVmemmap    = 0xffffea0000000000
	fakeKernelMap  = 0xffffffff80000000 // __START_KERNEL_map
	fakeSecPages   = 1 << 15            // SECTION_SIZE_BITS 27
	fakePageStruct = 64
	// fakeSections: 0 and 1 have struct pages (1 mapped by 4 KiB pages with
	// a hole), 2 is present without a mem_map, 3 is absent.
	fakeSections = 4
	fakePFNs     = fakeSections * fakeSecPages
)

// profile is the struct page layout and VMCOREINFO of one kernel version.
type profile struct {
	name string
	// headKey is compound_head, or compound_info (7.1+).
	headKey  string
	headBit  uint
	orderOff int // offset of the order byte in page[1]; -1: low byte of page[1].flags
	dtorOff  int // offset of compound_dtor in page[1]; -1 none
	pgHuge   int // PG_hugetlb bit in page[1].flags; -1 none
	hugeType int // PAGE_HUGETLB_MAPCOUNT_VALUE; 0 none
	pgSlab   int // PG_slab; -1 none
	slabType int // PAGE_SLAB_MAPCOUNT_VALUE; 0 none
	unaccept int // PAGE_UNACCEPTED_MAPCOUNT_VALUE; 0 none

	pgLRU, pgPriv, pgSwapcache, pgSwapbacked, pgHWPoison uint

	buddy, offline int
	keys           []string // profile-specific VMCOREINFO lines
}

const (
	dtorCompound = 1
	dtorHugetlb  = 2
	dtorTHP      = 3
)

var profiles = []profile{
	{
		name: "6.1", headKey: "compound_head", headBit: 16, orderOff: 17, dtorOff: 16, pgHuge: -1,
		pgSlab: 9, pgLRU: 4, pgPriv: 13, pgSwapcache: 10, pgSwapbacked: 19, pgHWPoison: 23,
		buddy: -129, offline: -257,
		keys: []string{"OFFSET(page.compound_dtor)=16", "OFFSET(page.compound_order)=17",
			"NUMBER(HUGETLB_PAGE_DTOR)=2"},
	},
	{
		name: "6.3", headKey: "compound_head", headBit: 16, orderOff: 17, dtorOff: 16, pgHuge: -1,
		pgSlab: 9, pgLRU: 4, pgPriv: 13, pgSwapcache: 10, pgSwapbacked: 19, pgHWPoison: 23,
		buddy: -129, offline: -257,
		keys: []string{"OFFSET(folio._folio_dtor)=80", "OFFSET(folio._folio_order)=81",
			"NUMBER(HUGETLB_PAGE_DTOR)=2"},
	},
	{
		name: "6.6", headKey: "compound_head", headBit: 16, orderOff: -1, dtorOff: -1, pgHuge: 13,
		pgSlab: 9, pgLRU: 4, pgPriv: 13, pgSwapcache: 10, pgSwapbacked: 19, pgHWPoison: 23,
		buddy: -129, offline: -257,
		keys: []string{"NUMBER(PG_hugetlb)=13"},
	},
	{
		name: "6.12", headKey: "compound_head", headBit: 6, orderOff: -1, dtorOff: -1, pgHuge: -1,
		hugeType: -201326592, pgSlab: -1, slabType: -184549376,
		pgLRU: 5, pgPriv: 14, pgSwapcache: 10, pgSwapbacked: 17, pgHWPoison: 20,
		buddy: -268435456, offline: -251658240,
	},
	{
		name: "6.16", headKey: "compound_head", headBit: 6, orderOff: -1, dtorOff: -1, pgHuge: -1,
		hugeType: -201326592, pgSlab: -1, slabType: -184549376, unaccept: -218103808,
		pgLRU: 5, pgPriv: 14, pgSwapcache: 10, pgSwapbacked: 17, pgHWPoison: 20,
		buddy: -268435456, offline: -251658240,
	},
	{
		name: "7.1", headKey: "compound_info", headBit: 6, orderOff: -1, dtorOff: -1, pgHuge: -1,
		hugeType: -201326592, pgSlab: -1, slabType: -184549376,
		pgLRU: 5, pgPriv: 14, pgSwapcache: 10, pgSwapbacked: 17, pgHWPoison: 20,
		buddy: -268435456, offline: -251658240,
	},
}

func profileByName(name string) profile {
	for _, p := range profiles {
		if p.name == name {
			return p
		}
	}
	panic("no profile " + name)
}

// vmcoreinfo returns the profile's VMCOREINFO lines, less those whose key
// starts with any of drop.
func (pr profile) vmcoreinfo(w *world, drop ...string) string {
	lines := []string{
		"OSRELEASE=synthetic-" + pr.name,
		"PAGESIZE=4096",
		fmt.Sprintf("SYMBOL(init_top_pgt)=%x", fakeKernelMap+w.pgd),
		"NUMBER(phys_base)=0",
		"NUMBER(pgtable_l5_enabled)=0",
		fmt.Sprintf("SYMBOL(mem_section)=%x", w.memSection),
		fmt.Sprintf("LENGTH(mem_section)=%d", w.lengthMemSection),
		"SIZE(mem_section)=16",
		"OFFSET(mem_section.section_mem_map)=0",
		"NUMBER(SECTION_SIZE_BITS)=27",
		"NUMBER(MAX_PHYSMEM_BITS)=46",
		"SIZE(page)=64",
		"OFFSET(page.flags)=0",
		"OFFSET(page._refcount)=52",
		"OFFSET(page.mapping)=24",
		"OFFSET(page.lru)=8",
		"OFFSET(page._mapcount)=48",
		"OFFSET(page.private)=40",
		"OFFSET(page." + pr.headKey + ")=8",
		"LENGTH(zone.free_area)=11",
		fmt.Sprintf("NUMBER(PG_lru)=%d", pr.pgLRU),
		fmt.Sprintf("NUMBER(PG_private)=%d", pr.pgPriv),
		fmt.Sprintf("NUMBER(PG_swapcache)=%d", pr.pgSwapcache),
		fmt.Sprintf("NUMBER(PG_swapbacked)=%d", pr.pgSwapbacked),
		fmt.Sprintf("NUMBER(PG_hwpoison)=%d", pr.pgHWPoison),
		fmt.Sprintf("NUMBER(PG_head_mask)=%d", 1<<pr.headBit),
		fmt.Sprintf("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=%d", pr.buddy),
		fmt.Sprintf("NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=%d", pr.offline),
	}
	if pr.pgSlab >= 0 {
		lines = append(lines, fmt.Sprintf("NUMBER(PG_slab)=%d", pr.pgSlab))
	}
	if pr.slabType != 0 {
		lines = append(lines, fmt.Sprintf("NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=%d", pr.slabType))
	}
	if pr.hugeType != 0 {
		lines = append(lines, fmt.Sprintf("NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=%d", pr.hugeType))
	}
	if pr.unaccept != 0 {
		lines = append(lines, fmt.Sprintf("NUMBER(PAGE_UNACCEPTED_MAPCOUNT_VALUE)=%d", pr.unaccept))
	}
	lines = append(lines, pr.keys...)
	var out []string
next:
	for _, l := range lines {
		for _, d := range drop {
			if strings.HasPrefix(l, d) {
				continue next
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

// Expected page classes.
type kind uint8

const (
	kKeep kind = iota
	kCache
	kCachePriv
	kUser
	kFree
	kHWPoison
	kOffline
)

// excluded tells whether a page of kind k is left out at level.
func (k kind) excluded(level Level) bool {
	switch k {
	case kCache:
		return level&(ExcludeCache|ExcludeCachePrivate) != 0
	case kCachePriv:
		return level&ExcludeCachePrivate != 0
	case kUser:
		return level&ExcludeUser != 0
	case kFree:
		return level&ExcludeFree != 0
	case kHWPoison, kOffline:
		return true
	}
	return false
}

func (k kind) count(s *Stats) {
	switch k {
	case kCache:
		s.Cache++
	case kCachePriv:
		s.CachePrivate++
	case kUser:
		s.User++
	case kFree:
		s.Free++
	case kHWPoison:
		s.HWPoison++
	case kOffline:
		s.Offline++
	}
}

// world is a synthetic machine with its expected page classes.
type world struct {
	pr               profile
	phys             *fakePhys
	next             uint64 // bump allocator of physical memory
	pgd              uint64 // physical address of the top page table
	memSection       uint64 // SYMBOL(mem_section)
	lengthMemSection int
	secMap           [fakeSections]uint64 // physical base of each section's struct pages
	want             []kind               // expected class per pfn
	unreadable       map[uint64]bool      // pfns whose struct page cannot be read
}

func (w *world) alloc(n, align uint64) uint64 {
	w.next = (w.next + align - 1) &^ (align - 1)
	a := w.next
	w.next += n
	w.phys.regions = append(w.phys.regions, fakeRegion{base: a, b: make([]byte, n)})
	return a
}

func (w *world) put64(pa, v uint64) { binary.LittleEndian.PutUint64(w.phys.slice(pa, 8), v) }

// mapPage maps va to pa with a 4 KiB page, or a 2 MiB page when huge.
func (w *world) mapPage(va, pa uint64, huge bool) {
	table := w.pgd
	last := 1
	if huge {
		last = 2
	}
	for level := 4; level > last; level-- {
		idx := (va >> (12 + 9*uint(level-1))) & 511
		e := binary.LittleEndian.Uint64(w.phys.slice(table+idx*8, 8))
		if e&1 == 0 {
			nt := w.alloc(4096, 4096)
			e = nt | 3
			w.put64(table+idx*8, e)
		}
		table = e &^ 0xfff
	}
	idx := (va >> (12 + 9*uint(last-1))) & 511
	e := pa | 3
	if huge {
		e |= 0x80
	}
	w.put64(table+idx*8, e)
}

// newWorld builds the machine. static selects a flat mem_section array
// (SPARSEMEM without EXTREME).
func newWorld(pr profile, static bool) *world {
	w := &world{pr: pr, phys: &fakePhys{holes: map[uint64]bool{}}, next: 1 << 20,
		want: make([]kind, fakePFNs), unreadable: map[uint64]bool{}}
	w.pgd = w.alloc(4096, 4096)

	// mem_section: the root array and one block of 256 sections.
	block := w.alloc(4096, 4096)
	w.mapPage(fakePageOffset+block, block, false)
	if static {
		w.memSection = fakePageOffset + block
		w.lengthMemSection = 1 << (46 - 27)
	} else {
		root := w.alloc(4096, 4096)
		w.mapPage(fakePageOffset+root, root, false)
		w.put64(root, fakePageOffset+block)
		w.memSection = fakePageOffset + root
		w.lengthMemSection = 2048
	}
	const flags = 0xf // present, has mem_map, online, early
	for s := 0; s < fakeSections; s++ {
		w.secMap[s] = w.alloc(2<<20, 2<<20)
		va := fakeVmemmap + uint64(s)*fakeSecPages*fakePageStruct
		switch s {
		case 0, 2:
			w.mapPage(va, w.secMap[s], true)
		case 1:
			for i := uint64(0); i < 512; i++ {
				switch i {
				case 3: // vmemmap not mapped
				case 5: // mapped to memory the dump lacks
					w.mapPage(va+i*4096, 0x7fff0000000, false)
				default:
					w.mapPage(va+i*4096, w.secMap[s]+i*4096, false)
				}
			}
			for p := uint64(0); p < 64; p++ {
				w.unreadable[fakeSecPages+3*64+p] = true
				w.unreadable[fakeSecPages+5*64+p] = true
			}
		}
		switch s {
		case 0, 1:
			w.put64(block+uint64(s)*16, fakeVmemmap|flags)
		case 2: // present, no mem_map
			w.put64(block+uint64(s)*16, fakeVmemmap|1)
		}
	}
	for p := uint64(2 * fakeSecPages); p < fakePFNs; p++ {
		w.unreadable[p] = true
	}
	w.populate()
	return w
}

// page returns the struct page of pfn.
func (w *world) page(pfn uint64) []byte {
	s := pfn / fakeSecPages
	return w.phys.slice(w.secMap[s]+(pfn%fakeSecPages)*fakePageStruct, fakePageStruct)
}

type pageFields struct {
	flags, head, mapping, private uint64
	mapcount                      int64
}

func (w *world) set(pfn uint64, f pageFields) {
	b := w.page(pfn)
	binary.LittleEndian.PutUint64(b[0:], f.flags)
	binary.LittleEndian.PutUint64(b[8:], f.head)
	binary.LittleEndian.PutUint64(b[24:], f.mapping)
	binary.LittleEndian.PutUint64(b[40:], f.private)
	binary.LittleEndian.PutUint32(b[48:], uint32(f.mapcount))
	binary.LittleEndian.PutUint32(b[52:], 1)
}

func bit(b uint) uint64 { return 1 << b }

const (
	aSpace  = fakePageOffset + 0x1234500 // an address_space: even
	anonVMA = fakePageOffset + 0x2345600 // an anon_vma
)

// compound writes a compound page of order at head: the head with f, tails
// pointing at it, the order (and hugetlb marker) in page[1].
func (w *world) compound(head uint64, order uint, f pageFields, dtor int, hugetlb bool) {
	pr := w.pr
	f.flags |= bit(pr.headBit)
	if hugetlb && pr.hugeType != 0 {
		f.mapcount = int64(pr.hugeType)
	}
	w.set(head, f)
	tail := fakeVmemmap + head*fakePageStruct + 1
	for i := uint64(1); i < 1<<order; i++ {
		w.set(head+i, pageFields{head: tail, mapcount: -1})
	}
	t := w.page(head + 1)
	if pr.orderOff >= 0 {
		t[pr.orderOff] = byte(order)
	} else {
		t[0] = byte(order)
	}
	if pr.dtorOff >= 0 {
		t[pr.dtorOff] = byte(dtor)
	}
	if hugetlb && pr.pgHuge >= 0 {
		binary.LittleEndian.PutUint64(t[0:], binary.LittleEndian.Uint64(t[0:])|bit(uint(pr.pgHuge)))
	}
}

func (w *world) expect(from, n uint64, k kind) {
	for p := from; p < from+n; p++ {
		w.want[p] = k
	}
}

// populate writes the pages the tests classify. Every struct page not
// written reads as zeros: flags 0, _mapcount 0, which no class matches.
func (w *world) populate() {
	pr := w.pr
	plain := pageFields{mapcount: -1}
	for p := uint64(0); p < 16; p++ {
		w.set(p, plain)
	}
	lru := bit(pr.pgLRU)
	w.set(16, pageFields{flags: lru, mapping: aSpace, mapcount: -1})
	w.expect(16, 1, kCache)
	w.set(17, pageFields{flags: lru | bit(pr.pgPriv), mapping: aSpace, mapcount: -1})
	w.expect(17, 1, kCachePriv)
	// Swap cache: PG_swapcache counts only with PG_swapbacked.
	w.set(18, pageFields{flags: bit(pr.pgSwapcache) | bit(pr.pgSwapbacked), mapcount: -1})
	w.expect(18, 1, kCache)
	w.set(19, pageFields{flags: bit(pr.pgSwapcache), mapping: aSpace, mapcount: -1})
	// Anonymous page on the LRU: user data, never cache.
	w.set(20, pageFields{flags: lru | bit(pr.pgSwapbacked), mapping: anonVMA | 1, mapcount: 0})
	w.expect(20, 1, kUser)
	// A slab page whose mapping word is odd (slab.slabs since 6.2).
	if pr.pgSlab >= 0 {
		w.set(21, pageFields{flags: bit(uint(pr.pgSlab)), mapping: 7, mapcount: -1})
	} else {
		w.set(21, pageFields{mapping: 7, mapcount: int64(pr.slabType)})
	}
	w.set(22, pageFields{flags: bit(pr.pgHWPoison), mapcount: -1})
	w.expect(22, 1, kHWPoison)
	w.set(23, pageFields{mapcount: int64(pr.offline)})
	w.expect(23, 1, kOffline)
	// A "buddy" page with PG_slab set is not free.
	if pr.pgSlab >= 0 {
		w.set(24, pageFields{flags: bit(uint(pr.pgSlab)), mapcount: int64(pr.buddy)})
	}

	// Corrupt entries: all kept.
	// 32: head flag, but page[1] is no tail.
	w.set(32, pageFields{flags: bit(pr.headBit) | lru, mapping: aSpace, mapcount: -1})
	w.set(33, plain)
	// 34: page[1] names another head.
	w.set(34, pageFields{flags: bit(pr.headBit) | lru, mapping: aSpace, mapcount: -1})
	w.set(35, pageFields{head: fakeVmemmap + 1000*fakePageStruct + 1, mapcount: -1})
	if pr.headKey == "compound_info" {
		// compound_info's upper bits need not point at the head: only
		// the tail bit is checked, so the order (0) is used.
		w.expect(34, 1, kCache)
	}
	// 64: anonymous compound page of order 60.
	w.compound(64, 6, pageFields{flags: lru | bit(pr.pgSwapbacked), mapping: anonVMA | 1}, dtorTHP, false)
	if pr.orderOff >= 0 {
		w.page(65)[pr.orderOff] = 60
	} else {
		w.page(65)[0] = 60
	}
	// 128: buddy of order 60; 130: order 2, misaligned.
	w.set(128, pageFields{mapcount: int64(pr.buddy), private: 60})
	w.set(130, pageFields{mapcount: int64(pr.buddy), private: 2})
	// 131: garbage everywhere but a readable struct page.
	w.set(131, pageFields{flags: 0xffffffffffffffff &^ bit(pr.headBit), head: 0xfffffffffffffffe,
		mapping: 0xfffffffffffffffe, private: 1 << 62, mapcount: 0xdeadbeef})

	// Free blocks.
	w.set(136, pageFields{mapcount: int64(pr.buddy), private: 3})
	w.expect(136, 8, kFree)
	w.set(144, pageFields{mapcount: int64(pr.buddy), private: 0})
	w.expect(144, 1, kFree)
	// Transparent huge page, anonymous.
	w.compound(512, 9, pageFields{flags: lru | bit(pr.pgSwapbacked), mapping: anonVMA | 1}, dtorTHP, false)
	w.expect(512, 512, kUser)
	// A large folio in the page cache.
	w.compound(1024, 2, pageFields{flags: lru, mapping: aSpace}, dtorCompound, false)
	w.expect(1024, 4, kCache)
	// A slab of order 1, odd mapping word.
	if pr.pgSlab >= 0 {
		w.compound(1028, 1, pageFields{flags: bit(uint(pr.pgSlab)), mapping: 5, mapcount: -1}, dtorCompound, false)
	} else {
		w.compound(1028, 1, pageFields{mapping: 5, mapcount: int64(pr.slabType)}, dtorCompound, false)
	}
	// Hugetlb page: hugetlbfs mapping (even), not on the LRU.
	w.compound(1536, 9, pageFields{mapping: aSpace, mapcount: -1}, dtorHugetlb, true)
	w.expect(1536, 512, kUser)
	// Free block of order 10, across chunk boundaries of 2500 and 1000.
	w.set(2048, pageFields{mapcount: int64(pr.buddy), private: 10})
	w.expect(2048, 1024, kFree)
	// Unaccepted memory (6.16+), blocks of the largest order.
	if pr.unaccept != 0 {
		w.set(8192, pageFields{mapcount: int64(pr.unaccept)})
		w.expect(8192, 1024, kFree)
	}
	// A THP that ends at the end of the section (and window).
	w.compound(fakeSecPages-512, 9, pageFields{flags: lru | bit(pr.pgSwapbacked), mapping: anonVMA | 1}, dtorTHP, false)
	w.expect(fakeSecPages-512, 512, kUser)

	// Section 1: a free block of order 9 over the two unreadable stretches
	// of vmemmap; its unreadable pages are kept.
	s1 := uint64(fakeSecPages)
	w.set(s1, pageFields{mapcount: int64(pr.buddy), private: 9})
	for p := s1; p < s1+512; p++ {
		if !w.unreadable[p] {
			w.want[p] = kFree
		}
	}
	w.set(s1+600, pageFields{flags: lru | bit(pr.pgSwapbacked), mapping: anonVMA | 1, mapcount: 0})
	w.expect(s1+600, 1, kUser)

	// Section 2 (no mem_map): struct pages that would read as free.
	for p := uint64(0); p < fakeSecPages; p += 1024 {
		w.set(2*fakeSecPages+p, pageFields{mapcount: int64(pr.buddy), private: 10})
	}
}

// memory returns kmem access with VMCOREINFO less the keys in drop.
func (w *world) memory(t testing.TB, drop ...string) (*kmem.Memory, *vmcoreinfo.Info) {
	t.Helper()
	info, err := vmcoreinfo.Parse([]byte(w.pr.vmcoreinfo(w, drop...)))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := kmem.New(w.phys, info, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	return mem, info
}

// expected returns the bitmap and counts the world's pages should give at
// level.
func (w *world) expected(level Level) ([]byte, Stats) {
	b := make([]byte, fakePFNs/8)
	var st Stats
	for p, k := range w.want {
		if k.excluded(level) {
			b[p/8] |= 1 << (p % 8)
			k.count(&st)
		}
	}
	return b, st
}

// classifyChunks classifies all pfns in chunks of size n.
func classifyChunks(t testing.TB, c *Classifier, total uint64, n int) ([]byte, Stats) {
	t.Helper()
	out := make([]byte, (total+7)/8)
	var st Stats
	chunk := make([]byte, (n+7)/8)
	for p := uint64(0); p < total; p += uint64(n) {
		k := int(min(uint64(n), total-p))
		for i := range chunk {
			chunk[i] = 0xff // Classify must write every bit it owns
		}
		if err := c.Classify(p, k, chunk, &st); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			if chunk[i/8]&(1<<(i%8)) != 0 {
				q := p + uint64(i)
				out[q/8] |= 1 << (q % 8)
			}
		}
	}
	return out, st
}

// diffBits describes the pfns where got and want differ.
func diffBits(got, want []byte, w *world) string {
	var d []string
	for p := 0; p < len(want)*8 && len(d) < 20; p++ {
		g, x := got[p/8]&(1<<(p%8)) != 0, want[p/8]&(1<<(p%8)) != 0
		if g != x {
			d = append(d, fmt.Sprintf("pfn %d: excluded=%v want %v (kind %d)", p, g, x, w.want[p]))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

func reparse(s string) (*vmcoreinfo.Info, error) { return vmcoreinfo.Parse([]byte(s)) }
