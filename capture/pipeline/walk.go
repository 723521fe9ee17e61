package pipeline

import (
	"fmt"
	"sort"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// The walk Save and Estimate share. A dump's page frames run from 0 to
// its highest pfn, holes included, and a hostile or odd header can put a
// page at 2^45 or 2^52; the work must follow the pages present, not that
// span. So both walk the same windows: runs of page frames that hold
// memory (from the PT_LOADs), below the bound of the machine's address
// bits, a few pfns of slack around each, at most ChunkPages each. A window
// is what one filter cycle covers: its bitmaps, its struct pages.

// windowGap is how many pfns without memory a window bridges rather than
// start another: windows stay few for memory in many small pieces, and
// the work on the holes they cover stays a few bytes of bitmap per piece.
const windowGap = 256

// Memory a header claims without data in the file (declared only, p_memsz
// > p_filesz: the pages a filtered ELF dump left out; or missing, past the
// end of a truncated file) is RAM that is not in the dump, and the windows
// walk it to mark it so in the 1st bitmap. But it costs no file bytes: a
// 500-byte header can claim 2^48 bytes. Past claimedPerStored pages of it
// per page stored (and claimedFree pages, 1 GiB of 4 KiB pages: a real
// copy cut short claims no more than its machine's RAM), the windows
// cover only the memory stored and what lies in the same windows; the
// rest is counted (and listed, when missing) but not walked.
const claimedPerStored = 64

var claimedFree uint64 = 1 << 18 // a variable for the fuzz target

// window is pfns [start, start+n) and the ranges that touch them
// (plan.ranges[r0:r1]).
type window struct {
	start, n uint64
	r0, r1   int // plan.ranges[r0:r1]
}

// plan is the bounded walk of one source.
type plan struct {
	ps     uint64
	maxPFN uint64             // bounded: boundMaxPFN
	ranges []vmcore.PhysRange // the source's, clipped to maxPFN pages
	wins   []window
	pfns   uint64 // pfns the windows cover: the work of one pass
	bytes  uint64 // bytes of one bitmap over all windows
	// Pages of claimed memory (missing, declared only) left out of the
	// windows.
	outMissing, outDeclared uint64
	// degraded says what the bounds left out; empty when nothing.
	degraded string
}

func newPlan(src *vmcore.File, chunk uint64) *plan {
	p := &plan{ps: uint64(src.PageSize)}
	p.maxPFN, p.degraded = boundMaxPFN(src)
	limit := p.maxPFN * p.ps
	for _, r := range src.PhysRanges() {
		if r.Start >= limit {
			break
		}
		if r.End > limit {
			r.End = limit
			r.Missing = min(r.Missing, r.End-min(r.FileEnd, r.End))
			r.FileEnd = min(r.FileEnd, r.End)
		}
		p.ranges = append(p.ranges, r)
	}
	// Pages stored, and claimed without data.
	var stored, claimed uint64
	for _, r := range p.ranges {
		stored += ceilDiv(r.FileEnd, p.ps) - min(r.Start/p.ps, ceilDiv(r.FileEnd, p.ps))
		claimed += ceilDiv(r.End, p.ps) - min(ceilDiv(r.End, p.ps), r.FileEnd/p.ps)
	}
	sparse := claimed > claimedPerStored*stored+claimedFree
	// Windows: each range's pfns widened to whole bitmap bytes, merged
	// across small gaps, cut at multiples of chunk.
	var cur window
	have := false
	emit := func() {
		for s := cur.start; s < cur.start+cur.n; {
			e := min(cur.start+cur.n, (s/chunk+1)*chunk)
			w := window{start: s, n: e - s}
			// The ranges that touch this piece.
			w.r0 = sort.Search(len(p.ranges), func(i int) bool { return p.ranges[i].End > s*p.ps })
			w.r1 = sort.Search(len(p.ranges), func(i int) bool { return p.ranges[i].Start >= e*p.ps })
			if w.r0 < w.r1 {
				p.wins = append(p.wins, w)
				p.pfns += w.n
				p.bytes += (w.n + 7) / 8
			}
			s = e
		}
	}
	for _, r := range p.ranges {
		end := r.End
		if sparse {
			end = r.FileEnd // the part stored
		}
		lo := r.Start / p.ps &^ 7
		hi := min((ceilDiv(end, p.ps)+7)&^7, p.maxPFN)
		if hi <= lo || end == r.Start {
			continue
		}
		if have && lo <= cur.start+cur.n+windowGap {
			cur.n = max(cur.n, hi-cur.start)
			continue
		}
		if have {
			emit()
		}
		cur, have = window{start: lo, n: hi - lo}, true
	}
	if have {
		emit()
	}
	if sparse {
		msg := fmt.Sprintf("%d pages claimed without data in the file (missing, or declared only) against %d stored: those away from stored memory are counted, and listed when missing, but not marked as RAM in a kdump file's 1st bitmap",
			claimed, stored)
		if p.degraded != "" {
			msg = p.degraded + "; " + msg
		}
		p.degraded = msg
		w := 0
		for _, r := range p.ranges {
			missEnd := r.FileEnd + r.Missing
			p.outMissing += p.outside(&w, r.FileEnd/p.ps, ceilDiv(missEnd, p.ps))
			p.outDeclared += p.outside(&w, ceilDiv(missEnd, p.ps), ceilDiv(r.End, p.ps))
		}
	}
	return p
}

// outside counts the pfns of [lo, hi) that no window covers; *w is the
// first window that may, and calls come in increasing order.
func (p *plan) outside(w *int, lo, hi uint64) uint64 {
	var n uint64
	for lo < hi {
		for *w < len(p.wins) && p.wins[*w].start+p.wins[*w].n <= lo {
			*w++
		}
		if *w == len(p.wins) || p.wins[*w].start >= hi {
			return n + hi - lo
		}
		if ws := p.wins[*w].start; ws > lo {
			n += ws - lo
		}
		lo = p.wins[*w].start + p.wins[*w].n
	}
	return n
}

// missingBelow returns the missing pages of m below pfn max (m itself
// when all are), nil when none are.
func missingBelow(m *vmcore.Missing, max uint64) *vmcore.Missing {
	if m.Empty() {
		return nil
	}
	out := &vmcore.Missing{PageSize: m.PageSize, Partial: m.Partial}
	var listed uint64
	for _, r := range m.Ranges {
		listed += r.Pages
		if r.Start < max {
			out.Add(r.Start, min(r.End(), max)-r.Start)
		}
	}
	out.Pages += m.Pages - listed // counted, not listed: cannot be placed
	if out.Pages == m.Pages {
		return m
	}
	if out.Empty() {
		return nil
	}
	return out
}

// bitmapBlocks counts the blocks of bs bytes of one bitmap that a kdump
// file writes: those the windows touch, and the last; the rest are holes.
func (p *plan) bitmapBlocks(bs int) uint64 {
	per := uint64(bs) * 8 // pfns per block
	var n, last uint64
	have := false
	for _, w := range p.wins {
		lo, hi := w.start/per, (w.start+w.n-1)/per
		if have && lo == last {
			lo++
		}
		if hi >= lo {
			n += hi - lo + 1
		}
		last, have = hi, true
	}
	if lastBlk := max(ceilDiv(p.maxPFN, per), 1) - 1; !have || last != lastBlk {
		n++
	}
	return n
}

// find returns the index of the window holding pfn, or -1.
func (p *plan) find(pfn uint64) int {
	i := sort.Search(len(p.wins), func(i int) bool { return p.wins[i].start+p.wins[i].n > pfn })
	if i < len(p.wins) && p.wins[i].start <= pfn {
		return i
	}
	return -1
}

// physAddrBitsDefault bounds the memory a dump may span when VMCOREINFO
// does not say: 2^48 bytes, 256 TiB.
const physAddrBitsDefault = 48

// boundMaxPFN returns the page frames the dump spans, but no more than the
// dumped machine can address (VMCOREINFO's MAX_PHYSMEM_BITS) and the kdump
// format can hold: a corrupt header placing memory at an absurd address
// must not size bitmaps and loops by it. Memory above the bound is said in
// the second result.
func boundMaxPFN(src *vmcore.File) (uint64, string) {
	bits := int64(physAddrBitsDefault)
	if info := src.VMCOREINFO; info != nil {
		if b, ok := info.Number("MAX_PHYSMEM_BITS"); ok && b >= 32 && b <= 56 {
			bits = b
		}
	}
	limit := min((uint64(1)<<bits)/uint64(src.PageSize), diskdump.MaxMapnr)
	top := src.MaxPFN()
	if top > limit {
		return limit, fmt.Sprintf(
			"memory above %#x (beyond the machine's %d physical address bits) is not dumped: the header has memory up to %#x",
			limit*uint64(src.PageSize), bits, top*uint64(src.PageSize))
	}
	return top, ""
}

func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

// bitmaps is the work space of one window: bit i of each is pfn
// start+i.
type bitmaps struct {
	ram      []byte // memory
	held     []byte // memory the source holds
	miss     []byte // memory the source should hold and does not
	dumpable []byte // held and not excluded by the filter
	unread   []byte // held, and the filter could not read its struct page
}

func newBitmaps(chunk uint64) *bitmaps {
	n := chunk / 8
	return &bitmaps{ram: make([]byte, n), held: make([]byte, n), miss: make([]byte, n),
		dumpable: make([]byte, n), unread: make([]byte, n)}
}

// fill sets, for window w, the ram, held and miss bitmaps from the
// ranges. A page the source holds only in part is held when the rest is
// not memory (a segment ending inside a page), missing when the rest is
// missing.
func (p *plan) fill(w window, b *bitmaps) {
	nb := (w.n + 7) / 8
	ram, held, miss := b.ram[:nb], b.held[:nb], b.miss[:nb]
	clear(ram)
	clear(held)
	clear(miss)
	end := w.start + w.n
	for _, r := range p.ranges[w.r0:w.r1] {
		rs, re := r.Start/p.ps, ceilDiv(r.End, p.ps)
		setRange(ram, w.start, end, rs, re)
		if r.Missing > 0 {
			setRange(held, w.start, end, rs, r.FileEnd/p.ps)
			setRange(miss, w.start, end, r.FileEnd/p.ps, ceilDiv(r.FileEnd+r.Missing, p.ps))
		} else {
			setRange(held, w.start, end, rs, ceilDiv(r.FileEnd, p.ps))
		}
	}
	for i := range held {
		held[i] &^= miss[i]
	}
}

// setRange sets bits for pfns [a, b) ∩ [start, end) in bm (bit 0 = start).
func setRange(bm []byte, start, end, a, b uint64) {
	a, b = max(a, start), min(b, end)
	for p := a; p < b; {
		i := p - start
		if i&7 == 0 && b-p >= 8 {
			n := (b - p) / 8
			for j := uint64(0); j < n; j++ {
				bm[i/8+j] = 0xff
			}
			p += n * 8
			continue
		}
		bm[i/8] |= 1 << (i & 7)
		p++
	}
}

// classesOf names the page-class bits of level: what the filter is asked
// to judge by struct page.
func classesOf(level filter.Level) string {
	var s string
	for _, c := range []struct {
		bit  filter.Level
		name string
	}{{filter.ExcludeCache, "cache"}, {filter.ExcludeCachePrivate, "private cache"},
		{filter.ExcludeUser, "user data"}, {filter.ExcludeFree, "free"}} {
		if level&c.bit != 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%d %s", c.bit, c.name)
		}
	}
	return s
}
