package filter

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// Sentinel errors.
var (
	// ErrLayout means VMCOREINFO does not say where struct pages are, or
	// says something that cannot be right: nothing can be classified.
	ErrLayout = errors.New("filter: cannot locate struct pages")
	// ErrLevel is returned for a dump level outside 0..31.
	ErrLevel = errors.New("filter: dump level out of range")
)

// Options configure a Classifier.
type Options struct {
	Level Level // makedumpfile dump level
	// Logf receives notes on the layout found; nil discards them.
	Logf func(format string, args ...any)
}

// Stats counts excluded pages by the class they were counted in.
type Stats struct {
	Cache, CachePrivate, User, Free, HWPoison, Offline uint64
}

// Total returns the number of excluded pages.
func (s Stats) Total() uint64 {
	return s.Cache + s.CachePrivate + s.User + s.Free + s.HWPoison + s.Offline
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Cache += o.Cache
	s.CachePrivate += o.CachePrivate
	s.User += o.User
	s.Free += o.Free
	s.HWPoison += o.HWPoison
	s.Offline += o.Offline
}

type class uint8

const (
	keep class = iota
	clCache
	clCachePrivate
	clUser
	clFree
	clHWPoison
	clOffline
)

func (s *Stats) count(c class, n uint64) {
	switch c {
	case clCache:
		s.Cache += n
	case clCachePrivate:
		s.CachePrivate += n
	case clUser:
		s.User += n
	case clFree:
		s.Free += n
	case clHWPoison:
		s.HWPoison += n
	case clOffline:
		s.Offline += n
	}
}

// windowBytes bounds the struct pages a window holds: 1024 struct pages
// of 64 bytes. Walking memory in order, a window is a buffer and a
// mem_map lookup: larger ones buy nothing, and cost each Classifier made.
const windowBytes = 64 << 10

// loadPages is how many struct pages of a window are read at once: one
// 4 KiB page of them (of 64 bytes each).
const loadPages = 64

// Classifier classifies page frames by their struct page. It is not safe
// for concurrent use.
type Classifier struct {
	mem      *kmem.Memory
	l        *layout
	sp       *sparse
	en       enabled
	degraded []string
	pageSize uint64
	maxFree  uint64 // exclusive bound on a free block's order

	winPages uint64 // page frames per window, a power of two
	win      struct {
		start  uint64 // first pfn, a multiple of winPages
		valid  bool
		mapped bool   // the section has a mem_map
		coded  uint64 // the section's encoded mem_map
		buf    []byte // winPages struct pages
		ok     []bool // struct page i was read
		// Blocks of loadPages struct pages are read when first needed:
		// classifying a few pfns reads their struct pages, not the
		// window's 2 MiB.
		loaded []bool
	}
	bad []span

	// A free block or compound page that ran past the end of the last
	// chunk: pfns [from, to) are excluded as cls when classified next.
	pend struct {
		from, to uint64
		cls      class
	}
}

type span struct{ lo, hi uint64 }

// New prepares a classifier for the dump whose kernel memory mem reads.
// info is the dump's VMCOREINFO (mem.Info when nil). It fails with
// ErrLayout when struct pages cannot be found at all; classes VMCOREINFO
// does not support are switched off and listed by Degraded.
func New(mem *kmem.Memory, info *vmcoreinfo.Info, opts Options) (*Classifier, error) {
	if !opts.Level.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrLevel, opts.Level)
	}
	if info == nil {
		info = mem.Info
	}
	if info == nil {
		return nil, fmt.Errorf("%w: no VMCOREINFO", ErrLayout)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	l, err := parseLayout(info, logf)
	if err != nil {
		return nil, err
	}
	sp, err := newSparse(mem, info, l.size, logf)
	if err != nil {
		return nil, err
	}
	ps, _ := info.PageSize() // newSparse checked it
	c := &Classifier{mem: mem, l: l, sp: sp, pageSize: uint64(ps)}
	c.en, c.degraded = l.plan(opts.Level)
	c.maxFree = uint64(l.freeOrders)
	if c.maxFree == 0 {
		// A buddy block never spans more than a section.
		c.maxFree = uint64(sp.pfnShift) + 1
	}
	c.winPages = 1
	for c.winPages*2*uint64(l.size) <= windowBytes && c.winPages*2 <= 1<<sp.pfnShift {
		c.winPages *= 2
	}
	c.win.buf = make([]byte, c.winPages*uint64(l.size))
	c.win.ok = make([]bool, c.winPages)
	c.win.loaded = make([]bool, (c.winPages+loadPages-1)/loadPages)
	order := [...]string{orderNone: "unknown", orderField: "page[1] field", orderFlags1: "page[1].flags & 0xff"}
	logf("filter: struct page %d bytes, compound order from %s, classes %+v", l.size, order[l.orderKind], c.en)
	for _, d := range c.degraded {
		logf("filter: %s", d)
	}
	if !c.en.hwpoison {
		logf("filter: hwpoison pages cannot be recognised: VMCOREINFO lacks NUMBER(PG_hwpoison)")
	}
	if !c.en.offline {
		logf("filter: offline pages cannot be recognised: VMCOREINFO lacks NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)")
	}
	return c, nil
}

// Degraded lists what the classifier cannot do at its level and why, one
// line each; nil when every requested class is available.
func (c *Classifier) Degraded() []string { return append([]string(nil), c.degraded...) }

// Classify classifies page frames [startPFN, startPFN+n) and writes one bit
// each to excl (bit i is byte i/8, value 1<<(i%8)): 1 means the page may be
// left out of the dump, 0 that it is kept. Bits from n on are not touched.
// Excluded pages are added to st by class when st is not nil.
//
// Call it on chunks in increasing pfn order: a free block or compound page
// that runs past a chunk's end is then excluded in full by the next call.
// Errors are only for bad arguments; unreadable struct pages are kept.
func (c *Classifier) Classify(startPFN uint64, n int, excl []byte, st *Stats) error {
	return c.ClassifyUnread(startPFN, n, excl, nil, st)
}

// ClassifyUnread is Classify that also sets, when unread is not nil, bit i
// of unread for each page frame kept only because its struct page could
// not be read (a hole in the dump where the mem_map should be, a section
// the kernel does not list): the pages whose classes the level asked for
// and did not get. Like excl, bits from n on are not touched. With no
// class to look for (Degraded lists why), nothing is read and no bit set.
func (c *Classifier) ClassifyUnread(startPFN uint64, n int, excl, unread []byte, st *Stats) error {
	if n < 0 || len(excl) < (n+7)/8 || (unread != nil && len(unread) < (n+7)/8) {
		return fmt.Errorf("filter: bitmap of %d bytes for %d pages", len(excl), n)
	}
	if startPFN+uint64(n) < startPFN {
		return fmt.Errorf("filter: pfn range %#x+%d overflows", startPFN, n)
	}
	clear(excl[:n/8])
	if n%8 != 0 {
		excl[n/8] &^= byte(1)<<(n%8) - 1
	}
	if unread != nil {
		clear(unread[:n/8])
		if n%8 != 0 {
			unread[n/8] &^= byte(1)<<(n%8) - 1
		}
	}
	if !c.en.any() || n == 0 {
		return nil
	}
	var local Stats
	if st == nil {
		st = &local
	}
	end := startPFN + uint64(n)
	for p := startPFN; p < end; {
		ws := p &^ (c.winPages - 1)
		if !c.win.valid || c.win.start != ws {
			c.load(ws)
		}
		lim := min(ws+c.winPages, end)
		// Read the struct pages this call needs in one go (and the one
		// after, for a compound head's order).
		c.ensure(p-ws, lim-ws+1)
		if unread != nil {
			for q := p; q < lim; q++ {
				if !c.okAt(q - ws) {
					i := q - startPFN
					unread[i>>3] |= 1 << (i & 7)
				}
			}
		}
		for p < lim {
			if c.pend.to > c.pend.from {
				if c.pend.to <= p {
					c.pend.to = c.pend.from // stale
				} else if c.pend.from <= p {
					q := min(c.pend.to, lim)
					c.mark(startPFN, p, q, c.pend.cls, excl, st)
					c.pend.from = q
					p = q
					continue
				}
			}
			cls, npages := c.page(p)
			if cls == keep {
				p++
				continue
			}
			q := min(p+npages, lim)
			c.mark(startPFN, p, q, cls, excl, st)
			if p+npages > lim {
				c.pend.from, c.pend.to, c.pend.cls = lim, p+npages, cls
			}
			p = q
		}
	}
	return nil
}

// mark excludes pfns [from, to) of the current window whose struct page
// was read.
func (c *Classifier) mark(start, from, to uint64, cls class, excl []byte, st *Stats) {
	var k uint64
	for p := from; p < to; p++ {
		if !c.okAt(p - c.win.start) {
			continue
		}
		i := p - start
		excl[i>>3] |= 1 << (i & 7)
		k++
	}
	st.count(cls, k)
}

// load makes ws the current window: its struct pages are read as
// needed (okAt).
func (c *Classifier) load(ws uint64) {
	w := &c.win
	w.start, w.valid = ws, true
	clear(w.loaded)
	w.coded, w.mapped = c.sp.memMap(ws >> c.sp.pfnShift)
}

// ensure reads the struct pages [lo, hi) of the current window that
// were not read yet, in runs as long as it can.
func (c *Classifier) ensure(lo, hi uint64) {
	w := &c.win
	nb := uint64(len(w.loaded))
	for b := lo / loadPages; b < min(ceilDiv(hi, loadPages), nb); {
		if w.loaded[b] {
			b++
			continue
		}
		e := b
		for e < min(ceilDiv(hi, loadPages), nb) && !w.loaded[e] {
			w.loaded[e] = true
			e++
		}
		c.loadBlock(b*loadPages, min(e*loadPages, c.winPages))
		b = e
	}
}

func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

// okAt reports whether struct page i of the current window was read,
// reading its block first if that was not done yet.
func (c *Classifier) okAt(i uint64) bool {
	w := &c.win
	if b := i / loadPages; !w.loaded[b] {
		w.loaded[b] = true
		c.loadBlock(b*loadPages, min((b+1)*loadPages, c.winPages))
	}
	return w.ok[i]
}

// loadBlock reads struct pages [lo, hi) of the current window, recording
// which could be read.
func (c *Classifier) loadBlock(lo, hi uint64) {
	w := &c.win
	clear(w.ok[lo:hi])
	if !w.mapped {
		return
	}
	size := uint64(c.l.size)
	first, total := lo*size, hi*size
	vstart := w.coded + w.start*size
	c.bad = c.bad[:0]
	// skip gives up on the rest of the page (of PAGESIZE) holding off.
	skip := func(off uint64) uint64 {
		next := min(total, off+c.pageSize-(vstart+off)%c.pageSize)
		c.bad = append(c.bad, span{off, next})
		return next
	}
	for off := first; off < total; {
		pa, cont, err := c.mem.Translate(vstart + off)
		if err != nil || cont == 0 {
			off = skip(off)
			continue
		}
		k := min(cont, total-off)
		done, err := c.mem.Phys.ReadPhys(w.buf[off:off+k], pa)
		d := min(uint64(max(done, 0)), k)
		off += d
		if (err != nil || d < k) && off < total {
			off = skip(off) // a hole in the dump, or a short read
		}
	}
	for i := lo; i < hi; i++ {
		w.ok[i] = true
	}
	for _, b := range c.bad {
		for i := max(b.lo/size, lo); i < (b.hi+size-1)/size && i < hi; i++ {
			w.ok[i] = false
		}
	}
}

// page classifies pfn p of the current window: its class and how many
// pages from p that class covers (a free block or compound page).
func (c *Classifier) page(p uint64) (class, uint64) {
	w := &c.win
	i := p - w.start
	if !c.okAt(i) {
		return keep, 1
	}
	l, bo := c.l, c.mem.ByteOrder
	size := uint64(l.size)
	rec := w.buf[i*size : (i+1)*size]
	if l.head < 0 || bo.Uint64(rec[l.head:])&1 != 0 {
		return keep, 1 // a tail page: its head decided for it
	}
	flags := bo.Uint64(rec[l.flags:])
	var mapping, private uint64
	var mapcount uint32
	if l.mapping >= 0 {
		mapping = bo.Uint64(rec[l.mapping:])
	}
	if l.private >= 0 {
		private = bo.Uint64(rec[l.private:])
	}
	if l.mapcount >= 0 {
		mapcount = bo.Uint32(rec[l.mapcount:])
	}

	order, hugetlb := uint64(0), false
	if l.headMask != 0 && flags&l.headMask != 0 {
		// A compound head: the first tail page holds the order and,
		// before 6.9, the hugetlb marker. It must be a tail of this head.
		if i+1 >= c.winPages || !c.okAt(i+1) {
			return keep, 1
		}
		t := w.buf[(i+1)*size : (i+2)*size]
		th := bo.Uint64(t[l.head:])
		if th&1 == 0 || (!l.headIsInfo && th-1 != w.coded+p*size) {
			return keep, 1
		}
		tflags := bo.Uint64(t[l.flags:])
		switch l.orderKind {
		case orderField:
			order = readUint(bo, t[l.orderOff:], l.orderLen)
		case orderFlags1:
			order = tflags & 0xff
		}
		if order > uint64(l.maxOrder) || p&(1<<order-1) != 0 {
			return keep, 1
		}
		hugetlb = l.hugetlbType.is(mapcount) || l.flag(tflags, l.pgHugetlb) ||
			(l.hasDtor && readUint(bo, t[l.dtorOff:], l.dtorLn) == l.hugetlbDtor)
	}
	n := uint64(1) << order

	en := &c.en
	switch {
	case en.free && l.buddy.is(mapcount) && !l.isSlab(flags, mapcount):
		// A free block's order is in page.private.
		if private >= c.maxFree || p&(1<<private-1) != 0 {
			return keep, 1
		}
		return clFree, 1 << private
	case en.unaccepted && l.unaccepted.is(mapcount):
		// Unaccepted memory is listed in blocks of the largest order.
		o := uint64(l.freeOrders - 1)
		if p&(1<<o-1) != 0 {
			return keep, 1
		}
		return clFree, 1 << o
	}
	// Page cache, anonymous and poisoned pages hold a real mapcount
	// (-1 when unmapped), never a page type; and no slab page is on an
	// LRU list. Struct pages that say otherwise are garbage: keep them.
	mapped := l.mapcount < 0 || int32(mapcount) >= -1
	lru := l.flag(flags, l.pgLRU)
	if (lru && !mapped) || (lru && l.isSlab(flags, mapcount)) {
		return keep, 1
	}
	cache := (en.cache || en.cachePrivate) && mapped && l.isCache(flags) && !l.isAnon(mapping, flags, mapcount)
	priv := l.flag(flags, l.pgPrivate)
	switch {
	case en.cache && cache && !priv:
		return clCache, n
	case en.cachePrivate && cache:
		if priv {
			return clCachePrivate, n
		}
		return clCache, n
	case en.user && ((mapped && l.isAnon(mapping, flags, mapcount)) || hugetlb):
		return clUser, n
	case en.hwpoison && mapped && l.flag(flags, l.pgHWPoison):
		return clHWPoison, n
	case en.offline && l.offline.is(mapcount) && !l.isSlab(flags, mapcount):
		return clOffline, n
	}
	return keep, 1
}

func readUint(bo binary.ByteOrder, b []byte, n int) uint64 {
	switch n {
	case 2:
		return uint64(bo.Uint16(b))
	case 4:
		return uint64(bo.Uint32(b))
	}
	return uint64(b[0])
}
