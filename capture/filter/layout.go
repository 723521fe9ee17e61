package filter

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// Section flag bits in mem_section.section_mem_map (include/linux/mmzone.h).
const (
	sectionMarkedPresent = 1 << 0
	sectionHasMemMap     = 1 << 1
)

// maxPageStruct bounds SIZE(page): real kernels use 56–80 bytes.
const maxPageStruct = 512

// pageType is one NUMBER(PAGE_*_MAPCOUNT_VALUE): the whole 32-bit value
// _mapcount (page_type) holds for a page of that type. Before 6.12 it is
// ~PG_x, from 6.12 PGTY_x << 24; either way the value is compared whole.
type pageType struct {
	v  uint32
	ok bool
}

func (t pageType) is(mapcount uint32) bool { return t.ok && mapcount == t.v }

// Where a compound page keeps its order.
const (
	orderNone   = iota // unknown: heads are classified alone
	orderField         // a field of the first tail page (≤ 6.5)
	orderFlags1        // low byte of the first tail page's flags (6.6+)
)

// layout is what the classifier knows about struct page, from VMCOREINFO.
type layout struct {
	size int // SIZE(page)

	// Field offsets in struct page; -1 when VMCOREINFO lacks them.
	flags, mapping, private, mapcount, head int
	// headIsInfo: the tail marker field is called compound_info (7.1+),
	// whose upper bits need not point at the head.
	headIsInfo bool
	headMask   uint64 // NUMBER(PG_head_mask); 0 when absent

	orderKind          int
	orderOff, orderLen int // orderField: offset and width in page[1]
	maxOrder           uint

	// Hugetlb markers, newest first: page type of the head (6.9+),
	// PG_hugetlb in page[1].flags (6.6–6.8), compound_dtor in page[1].
	hugetlbType     pageType
	pgHugetlb       int
	dtorOff, dtorLn int
	hugetlbDtor     uint64
	hasDtor         bool

	pgLRU, pgPrivate, pgSwapcache, pgSwapbacked, pgSlab, pgHWPoison int

	buddy, offline, slab, unaccepted pageType
	freeOrders                       uint // LENGTH(zone.free_area); 0 when absent
}

// keys collects what VMCOREINFO lacks, for Degraded lines.
type keys []string

func (k *keys) add(s string) { *k = append(*k, s) }
func (k keys) String() string {
	return strings.Join(k, ", ")
}

func parseLayout(info *vmcoreinfo.Info, logf func(string, ...any)) (*layout, error) {
	l := &layout{flags: -1, mapping: -1, private: -1, mapcount: -1, head: -1,
		pgHugetlb: -1, dtorOff: -1}
	sz, ok := info.Size("page")
	if !ok {
		return nil, fmt.Errorf("%w: VMCOREINFO lacks SIZE(page)", ErrLayout)
	}
	if sz < 16 || sz > maxPageStruct {
		return nil, fmt.Errorf("%w: SIZE(page)=%d", ErrLayout, sz)
	}
	l.size = int(sz)
	off := func(name string, width int) int {
		v, ok := info.Offset(name)
		if !ok {
			return -1
		}
		if v < 0 || v > sz-int64(width) {
			logf("filter: ignoring OFFSET(%s)=%d: outside SIZE(page)=%d", name, v, sz)
			return -1
		}
		return int(v)
	}
	l.flags = off("page.flags", 8)
	if l.flags < 0 {
		return nil, fmt.Errorf("%w: VMCOREINFO lacks OFFSET(page.flags)", ErrLayout)
	}
	l.mapping = off("page.mapping", 8)
	l.private = off("page.private", 8)
	l.mapcount = off("page._mapcount", 4)
	if l.head = off("page.compound_head", 8); l.head < 0 {
		if l.head = off("page.compound_info", 8); l.head >= 0 {
			l.headIsInfo = true
		}
	}

	bit := func(name string) int {
		v, ok := info.Number(name)
		if !ok {
			return -1
		}
		if v < 0 || v > 63 {
			logf("filter: ignoring NUMBER(%s)=%d: not a bit number", name, v)
			return -1
		}
		return int(v)
	}
	typ := func(name string) pageType {
		v, ok := info.Number(name)
		if !ok {
			return pageType{}
		}
		if v < -1<<31 || v >= 1<<32 {
			logf("filter: ignoring NUMBER(%s)=%d: not a 32-bit page type", name, v)
			return pageType{}
		}
		if l.mapcount < 0 {
			return pageType{}
		}
		return pageType{v: uint32(v), ok: true}
	}
	l.pgLRU = bit("PG_lru")
	l.pgPrivate = bit("PG_private")
	l.pgSwapcache = bit("PG_swapcache")
	l.pgSwapbacked = bit("PG_swapbacked")
	l.pgSlab = bit("PG_slab")
	l.pgHWPoison = bit("PG_hwpoison")
	l.pgHugetlb = bit("PG_hugetlb")
	l.buddy = typ("PAGE_BUDDY_MAPCOUNT_VALUE")
	l.offline = typ("PAGE_OFFLINE_MAPCOUNT_VALUE")
	l.slab = typ("PAGE_SLAB_MAPCOUNT_VALUE")
	l.hugetlbType = typ("PAGE_HUGETLB_MAPCOUNT_VALUE")
	l.unaccepted = typ("PAGE_UNACCEPTED_MAPCOUNT_VALUE")
	if m, ok := info.Number("PG_head_mask"); ok {
		if m > 0 && m&(m-1) == 0 {
			l.headMask = uint64(m)
		} else {
			logf("filter: ignoring NUMBER(PG_head_mask)=%d: not a single bit", m)
		}
	}
	if n, ok := info.Length("zone.free_area"); ok {
		if n >= 1 && n <= 64 {
			l.freeOrders = uint(n)
		} else {
			logf("filter: ignoring LENGTH(zone.free_area)=%d", n)
		}
	}

	// The largest compound order that can exist: a folio never spans more
	// than the physical address space.
	l.maxOrder = 63 - 12
	if b, ok := info.Number("MAX_PHYSMEM_BITS"); ok && b > 12 && b <= 64 {
		if ps, ok := info.PageSize(); ok {
			l.maxOrder = uint(b) - uint(bits.TrailingZeros64(uint64(ps)))
		}
	}

	// Order of a compound page. 6.3–6.5 export folio._folio_order (an
	// offset from the head, inside page[1]); up to 6.2 page.compound_order
	// (an offset inside page[1]); 6.6 dropped both and keeps the order in
	// the low byte of page[1].flags. compound_head and compound_order were
	// exported together until then, so compound_head alone means 6.6+.
	width := func(lo, hi string) int {
		// The field's width: the gap to the next field when both are
		// exported (u8 from 4.16, u32 in 4.4–4.15 on 64-bit), else 1.
		a, okA := info.Offset(lo)
		b, okB := info.Offset(hi)
		if okA && okB && b > a && (b-a == 1 || b-a == 2 || b-a == 4) {
			return int(b - a)
		}
		return 1
	}
	inTail := func(v int64, w int) bool { return v >= 0 && v <= sz-int64(w) }
	if v, ok := info.Offset("folio._folio_order"); ok && inTail(v-sz, 1) {
		l.orderKind, l.orderOff, l.orderLen = orderField, int(v-sz), 1
	} else if v, ok := info.Offset("page.compound_order"); ok {
		w := width("page.compound_dtor", "page.compound_order")
		if inTail(v, w) {
			l.orderKind, l.orderOff, l.orderLen = orderField, int(v), w
		}
	} else if l.head >= 0 && l.headMask != 0 {
		l.orderKind = orderFlags1
	}
	if l.headMask == 0 {
		l.orderKind = orderNone
	}
	if d, ok := info.Number("HUGETLB_PAGE_DTOR"); ok && d >= 0 {
		if v, ok := info.Offset("folio._folio_dtor"); ok && inTail(v-sz, 1) {
			l.dtorOff, l.dtorLn = int(v-sz), 1
		} else if v, ok := info.Offset("page.compound_dtor"); ok {
			w := width("page.compound_dtor", "page.compound_order")
			if inTail(v, w) {
				l.dtorOff, l.dtorLn = int(v), w
			}
		}
		l.hugetlbDtor, l.hasDtor = uint64(d), l.dtorOff >= 0
	}
	return l, nil
}

// isSlab tells a slab page: a page type from 6.10, PG_slab before.
func (l *layout) isSlab(flags uint64, mapcount uint32) bool {
	if l.slab.is(mapcount) {
		return true
	}
	return l.pgSlab >= 0 && flags&(1<<uint(l.pgSlab)) != 0
}

func (l *layout) canSlab() bool { return l.slab.ok || l.pgSlab >= 0 }

func (l *layout) flag(flags uint64, b int) bool { return b >= 0 && flags&(1<<uint(b)) != 0 }

// isCache: on an LRU list, or in the swap cache. PG_swapcache means swap
// cache only together with PG_swapbacked (it is PG_owner_priv_1 otherwise),
// except on kernels before 4.10 that had no PG_swapbacked.
func (l *layout) isCache(flags uint64) bool {
	if l.flag(flags, l.pgLRU) {
		return true
	}
	return (l.pgSwapbacked < 0 || l.flag(flags, l.pgSwapbacked)) && l.flag(flags, l.pgSwapcache)
}

// isAnon: mapping's low bit (PAGE_MAPPING_ANON) marks anonymous memory;
// slab pages reuse the word (since 6.2), so they are excluded.
func (l *layout) isAnon(mapping, flags uint64, mapcount uint32) bool {
	return mapping&1 != 0 && !l.isSlab(flags, mapcount)
}

// plan decides which classes are possible at level and says why others are
// not, one line each.
func (l *layout) plan(level Level) (en enabled, degraded []string) {
	deg := func(format string, args ...any) { degraded = append(degraded, fmt.Sprintf(format, args...)) }
	if l.head < 0 {
		// Without the tail marker every tail page would be judged by
		// fields that mean something else in a tail: classify nothing.
		if level&(ExcludeCache|ExcludeCachePrivate|ExcludeUser|ExcludeFree) != 0 {
			deg("bits 2, 4, 8, 16 off: VMCOREINFO lacks OFFSET(page.compound_head): tail pages cannot be told apart")
		}
		return en, degraded
	}
	if level&(ExcludeCache|ExcludeCachePrivate) != 0 {
		var miss keys
		if l.pgLRU < 0 {
			miss.add("NUMBER(PG_lru)")
		}
		if l.pgSwapcache < 0 {
			miss.add("NUMBER(PG_swapcache)")
		}
		if l.mapping < 0 {
			miss.add("OFFSET(page.mapping)")
		}
		if l.pgPrivate < 0 {
			miss.add("NUMBER(PG_private)")
		}
		if len(miss) == 0 {
			en.cache = level&ExcludeCache != 0
			en.cachePrivate = level&ExcludeCachePrivate != 0
		} else {
			if level&ExcludeCache != 0 {
				deg("bit 2 (cache) off: VMCOREINFO lacks %s", miss)
			}
			if level&ExcludeCachePrivate != 0 {
				deg("bit 4 (cache, private) off: VMCOREINFO lacks %s", miss)
			}
		}
	}
	if level&ExcludeUser != 0 {
		var miss keys
		if l.mapping < 0 {
			miss.add("OFFSET(page.mapping)")
		}
		if !l.canSlab() {
			// Slab pages reuse mapping's word: without telling them
			// apart, kernel data would be dropped as user data.
			miss.add("NUMBER(PG_slab) and NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)")
		}
		if len(miss) == 0 {
			en.user = true
			if !l.hugetlbType.ok && l.pgHugetlb < 0 && !l.hasDtor {
				deg("bit 8 (user) keeps hugetlb pages: VMCOREINFO has none of NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE), NUMBER(PG_hugetlb), NUMBER(HUGETLB_PAGE_DTOR) (kernel without hugetlbfs?)")
			}
		} else {
			deg("bit 8 (user) off: VMCOREINFO lacks %s", miss)
		}
	}
	if level&ExcludeFree != 0 {
		var miss keys
		if !l.buddy.ok {
			if l.mapcount < 0 {
				miss.add("OFFSET(page._mapcount)")
			}
			miss.add("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)")
		}
		if l.private < 0 {
			miss.add("OFFSET(page.private)")
		}
		if len(miss) == 0 {
			en.free = true
		} else {
			deg("bit 16 (free) off: VMCOREINFO lacks %s", miss)
		}
		if l.unaccepted.ok && l.freeOrders == 0 {
			deg("bit 16 (free) keeps unaccepted memory: VMCOREINFO lacks LENGTH(zone.free_area)")
		}
	}
	if (en.cache || en.cachePrivate || en.user) && l.orderKind == orderNone {
		what := "OFFSET(page.compound_order), OFFSET(folio._folio_order)"
		if l.headMask == 0 {
			what = "NUMBER(PG_head_mask)"
		}
		deg("compound pages: only their head page is dropped: VMCOREINFO lacks %s", what)
	}
	en.hwpoison = l.pgHWPoison >= 0
	en.offline = l.offline.ok
	en.unaccepted = en.free && l.unaccepted.ok && l.freeOrders > 0
	return en, degraded
}

// enabled is the set of classes Classify tests.
type enabled struct {
	cache, cachePrivate, user, free, unaccepted, hwpoison, offline bool
}

func (e enabled) any() bool {
	return e.cache || e.cachePrivate || e.user || e.free || e.hwpoison || e.offline
}
