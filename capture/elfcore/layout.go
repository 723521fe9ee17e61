package elfcore

import (
	"container/heap"
	"errors"
	"fmt"
	"iter"
	"sort"

	"github.com/gokdump/gokdump/capture/vmcore"
)

const (
	// DefaultMinExcludedRun is the shortest run of dropped pages split out
	// of a segment. makedumpfile uses the same 256 pages (1 MiB with 4 KiB
	// pages): shorter runs cost more in program headers than they save.
	DefaultMinExcludedRun = 256
	// DefaultMaxPhdrs bounds the program headers (PT_NOTE included): 8192
	// headers take 448 KiB and cover even a badly fragmented terabyte.
	DefaultMaxPhdrs = 8192
	// MaxPhdrs is the most Options.MaxPhdrs may ask for: what
	// capture/vmcore reads back.
	MaxPhdrs = vmcore.MaxSegments
)

// ErrTooManySegments is returned when the source has more PT_LOADs than
// the program header cap leaves room for.
var ErrTooManySegments = errors.New("elfcore: too many segments")

// KeepFunc reports whether the page at page frame number pfn (physical
// address pfn*PageSize) goes into the dump. It must give the same answer
// every time: NewLayout asks to plan the file, KeptPages and the Writer ask
// again. Each of these passes asks in nondecreasing pfn order (a page may
// be asked twice in a row), so a filter that works through memory in
// chunks can answer it.
type KeepFunc func(pfn uint64) bool

// Options tune a Layout. The zero value means the defaults.
type Options struct {
	// PageSize is the unit of keep decisions; 0 means the source's page
	// size. It must be a power of two from 512 to 1 MiB.
	PageSize int64
	// MinExcludedRun is the shortest run of dropped pages, in pages, that
	// is split out of a segment; shorter runs are written as zero-filled
	// pages. 0 means DefaultMinExcludedRun.
	MinExcludedRun uint64
	// MaxPhdrs caps the program headers, PT_NOTE included; 0 means
	// DefaultMaxPhdrs, and at most MaxPhdrs is allowed.
	MaxPhdrs int
	// Segments are the PT_LOADs to write in place of the source's, cut
	// where pages are dropped: KernelSegments' answer, which adds the
	// kernel virtual addresses a physical-only source lacks. Nil means
	// the source's. Only memory the source declares is written.
	Segments []vmcore.Segment
}

// Stats counts pages of the source's physical memory by what the layout
// does with them.
type Stats struct {
	KeptPages       uint64 // pages the Writer expects through WritePage
	ZeroFilledPages uint64 // not kept, stored as zeros to avoid a split
	DroppedPages    uint64 // not kept, not in the file and not declared by any PT_LOAD
}

// Layout is the plan of an output file: its program headers, where the
// notes and each kept page go.
type Layout struct {
	src      *vmcore.File
	keep     KeepFunc
	pageSize uint64

	present []vmcore.PhysRange // the source's memory, for the stored-data check
	merged  []span             // unions of the source's physical ranges
	pieces  []piece            // output data, sorted by physical address
	extents []piece            // the pieces that hold file data
	phdrs   []vmcore.Segment

	xnum     bool // e_phnum is PN_XNUM; the count is in section 0
	notesOff uint64
	size     uint64 // file size

	stats Stats
}

// span is a physical range [start, end).
type span struct{ start, end uint64 }

// piece is one run of output: physical [start, end), of which [start,
// fileEnd) is stored in the file from off.
type piece struct {
	start, fileEnd, end uint64
	off                 uint64
}

// run is a run of dropped pages that may be split out.
type run struct {
	merged   int    // index of the merged range
	startPFN uint64 // first page
	pages    uint64
}

// runHeap is a min-heap of runs by length, so the shortest is dropped
// first when there are too many; among equal lengths the later goes.
type runHeap []run

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if h[i].pages != h[j].pages {
		return h[i].pages < h[j].pages
	}
	if h[i].merged != h[j].merged {
		return h[i].merged > h[j].merged
	}
	return h[i].startPFN > h[j].startPFN
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(run)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// NewLayout plans a filtered copy of src that holds the pages keep keeps.
// A nil keep keeps every page src stores. Pages src declares but does not
// store (p_filesz < p_memsz, or past the end of a truncated file) are never
// kept.
func NewLayout(src *vmcore.File, keep KeepFunc, opts Options) (*Layout, error) {
	ps := uint64(opts.PageSize)
	if ps == 0 {
		ps = uint64(src.PageSize)
	}
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("elfcore: page size %d is not a power of two from 512 to 1 MiB", ps)
	}
	minRun := opts.MinExcludedRun
	if minRun == 0 {
		minRun = DefaultMinExcludedRun
	}
	maxPhdrs := opts.MaxPhdrs
	if maxPhdrs == 0 {
		maxPhdrs = DefaultMaxPhdrs
	}
	if maxPhdrs < 2 || maxPhdrs > MaxPhdrs {
		return nil, fmt.Errorf("elfcore: MaxPhdrs %d out of range 2..%d", maxPhdrs, MaxPhdrs)
	}
	l := &Layout{src: src, keep: keep, pageSize: ps, present: src.PhysRanges()}
	segs := opts.Segments
	if segs == nil {
		segs = src.Segments
	}

	// Every source PT_LOAD with memory yields at least one program header;
	// each split adds at most one (see the package doc).
	base := 0
	for _, s := range segs {
		if s.MemSize > 0 {
			base++
		}
	}
	budget := maxPhdrs - 1 - base
	if budget < 0 {
		return nil, fmt.Errorf("%w: %d PT_LOADs, at most %d program headers", ErrTooManySegments, base, maxPhdrs)
	}

	l.merged = mergeSpans(l.present)
	zones := overlaps(segs)
	trail := make([]uint64, len(l.merged)) // where each range's trailing dropped run starts
	var splits runHeap
	var pc presence
	zi := 0
	lastKept := ^uint64(0)
	for mi, m := range l.merged {
		trail[mi] = m.end
		var cur run
		inRun := false
		closeRun := func() {
			inRun = false
			if cur.pages < minRun || budget == 0 {
				l.stats.ZeroFilledPages += cur.pages
				return
			}
			heap.Push(&splits, cur)
			if splits.Len() > budget {
				l.stats.ZeroFilledPages += heap.Pop(&splits).(run).pages
			}
		}
		for pfn := m.start / ps; pfn < ceilDiv(m.end, ps); pfn++ {
			a, b := pageSpan(pfn, ps, m)
			for zi < len(zones) && zones[zi].end <= a {
				zi++
			}
			inZone := zi < len(zones) && zones[zi].start < b
			stored := l.stored(&pc, pfn)
			if stored && (l.keep == nil || l.keep(pfn)) {
				if pfn != lastKept {
					l.stats.KeptPages++
					lastKept = pfn
				}
			} else if !inZone || (!stored && l.nextStored(a) > b-1) {
				// A page the source stores nothing of is dropped even
				// where two segments overlap: zeros there would claim
				// contents the source lacks (a truncated copy).
				if !inRun {
					cur, inRun = run{merged: mi, startPFN: pfn}, true
				}
				// Memory the source declares but does not store is dropped
				// in one step, however large the header says it is, and
				// whether segments overlap there or not.
				n := uint64(1)
				next := min(l.nextStored(b), m.end)
				if np := next / ps; np > pfn+1 {
					n = np - pfn
				}
				cur.pages += n
				pfn += n - 1
				continue
			} else {
				l.stats.ZeroFilledPages++
			}
			if inRun {
				closeRun()
			}
		}
		if inRun {
			// A run that ends the range costs no program header: it is the
			// tail of the last segment.
			trail[mi] = max(cur.startPFN*ps, m.start)
			l.stats.DroppedPages += cur.pages
		}
	}
	sort.Slice(splits, func(i, j int) bool {
		if splits[i].merged != splits[j].merged {
			return splits[i].merged < splits[j].merged
		}
		return splits[i].startPFN < splits[j].startPFN
	})

	// Cut the merged ranges into pieces at the split runs.
	for mi, m := range l.merged {
		cur := m.start
		for len(splits) > 0 && splits[0].merged == mi {
			s := splits[0]
			splits = splits[1:]
			rs := max(s.startPFN*ps, m.start)
			re := min((s.startPFN+s.pages)*ps, m.end)
			l.pieces = append(l.pieces, piece{start: cur, fileEnd: rs, end: re})
			l.stats.DroppedPages += s.pages
			cur = re
		}
		l.pieces = append(l.pieces, piece{start: cur, fileEnd: trail[mi], end: m.end})
	}

	// Program headers: each source PT_LOAD, in source order, cut where
	// the pieces are cut.
	for _, s := range segs {
		if s.MemSize == 0 {
			continue
		}
		send := s.PhysAddr + s.MemSize
		i := sort.Search(len(l.pieces), func(i int) bool { return l.pieces[i].end > s.PhysAddr })
		for ; i < len(l.pieces) && l.pieces[i].start < send; i++ {
			p := &l.pieces[i]
			a, b := max(p.start, s.PhysAddr), min(p.end, send)
			fe := min(max(p.fileEnd, a), b)
			if fe == a {
				continue // all of it dropped: not declared at all
			}
			// p_memsz is p_filesz: makedumpfile reads a page between them
			// from the file all the same (the next segment's data, or
			// SIGBUS past the end), so dropped memory is not declared.
			l.phdrs = append(l.phdrs, vmcore.Segment{
				VirtAddr: virtAt(s, a),
				PhysAddr: a,
				FileSize: fe - a,
				MemSize:  fe - a,
				Offset:   uint64(i), // piece index until file offsets are known
			})
		}
	}
	nph := 1 + len(l.phdrs)
	if nph > maxPhdrs {
		// The budget above makes this unreachable; refuse rather than
		// write more headers than promised.
		return nil, fmt.Errorf("%w: planned %d program headers, cap %d", ErrTooManySegments, nph, maxPhdrs)
	}

	// File offsets: ELF header, program headers, section 0 for PN_XNUM,
	// notes, then each piece's data with its file offset congruent to its
	// physical address modulo the page size.
	l.xnum = nph >= pnXNum
	off := uint64(ehdrSize + nph*phdrSize)
	if l.xnum {
		off += shdrSize
	}
	off = alignUp(off, 8)
	l.notesOff = off
	off += uint64(len(src.NoteData))
	l.size = off
	for i := range l.pieces {
		p := &l.pieces[i]
		if p.fileEnd == p.start {
			p.off = off
			continue
		}
		off = alignUp(off, ps) + p.start%ps
		p.off = off
		off += p.fileEnd - p.start
		l.size = off
		l.extents = append(l.extents, *p)
	}
	for i := range l.phdrs {
		h := &l.phdrs[i]
		p := l.pieces[h.Offset]
		if h.FileSize == 0 {
			h.Offset = p.off + (p.fileEnd - p.start)
		} else {
			h.Offset = p.off + (h.PhysAddr - p.start)
		}
	}
	return l, nil
}

// virtAt is the virtual address of physical a in source segment s. A
// segment without a virtual address (p_vaddr 0) keeps none.
func virtAt(s vmcore.Segment, a uint64) uint64 {
	if s.VirtAddr == 0 {
		return 0
	}
	return s.VirtAddr + (a - s.PhysAddr)
}

// Segments returns the output PT_LOADs in file order.
func (l *Layout) Segments() []vmcore.Segment { return append([]vmcore.Segment(nil), l.phdrs...) }

// FileSize returns the size of the output file.
func (l *Layout) FileSize() int64 { return int64(l.size) }

// PageSize returns the unit of keep decisions and WritePage calls.
func (l *Layout) PageSize() int64 { return int64(l.pageSize) }

// Stats returns how the layout treats the source's pages.
func (l *Layout) Stats() Stats { return l.stats }

// KeptPages yields the physical address of every page the Writer expects,
// in increasing order.
func (l *Layout) KeptPages() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		var pc presence
		last := ^uint64(0)
		for _, m := range l.merged {
			for pfn := m.start / l.pageSize; pfn < ceilDiv(m.end, l.pageSize); pfn++ {
				if pfn == last {
					continue
				}
				if !l.kept(&pc, pfn) {
					_, b := pageSpan(pfn, l.pageSize, m)
					if np := min(l.nextStored(b), m.end) / l.pageSize; np > pfn+1 {
						pfn = np - 1
					}
					continue
				}
				last = pfn
				if !yield(pfn * l.pageSize) {
					return
				}
			}
		}
	}
}

// kept reports whether page pfn is kept: keep says so and the source
// stores all of the page that its memory ranges cover. A page stored only
// in part (a truncated file, a filtered source) is not kept.
func (l *Layout) kept(pc *presence, pfn uint64) bool {
	return l.stored(pc, pfn) && (l.keep == nil || l.keep(pfn))
}

// stored reports whether the source stores all of page pfn that its
// memory ranges cover.
func (l *Layout) stored(pc *presence, pfn uint64) bool {
	a := pfn * l.pageSize
	b := a + (l.pageSize - 1) // the last byte: a+pageSize may overflow
	return pc.stored(l.present, a, b)
}

// nextStored returns the lowest address from a on that the source stores,
// or the largest address when there is none.
func (l *Layout) nextStored(a uint64) uint64 {
	rs := l.present
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End > a })
	for ; i < len(rs); i++ {
		if x := max(a, rs[i].Start); x < rs[i].FileEnd {
			return x
		}
	}
	return ^uint64(0)
}

// pageSpan returns the part [a, b) of page pfn inside m, without
// overflowing at the top of the address space.
func pageSpan(pfn, ps uint64, m span) (a, b uint64) {
	a = max(pfn*ps, m.start)
	return a, pfn*ps + min(ps, m.end-pfn*ps)
}

// presence answers whether the source stores physical memory, remembering
// where it last looked since pages come in order.
type presence struct{ i int }

// stored reports whether every part of [a, last] that the source's ranges
// cover is stored in the file. Gaps between ranges do not count.
func (pc *presence) stored(rs []vmcore.PhysRange, a, last uint64) bool {
	// pc.i: the first range that ends after a.
	if pc.i > len(rs) || (pc.i < len(rs) && rs[pc.i].End <= a) || (pc.i > 0 && rs[pc.i-1].End > a) {
		pc.i = sort.Search(len(rs), func(i int) bool { return rs[i].End > a })
	}
	for i := pc.i; i < len(rs) && rs[i].Start <= last; i++ {
		if min(rs[i].End-1, last) >= rs[i].FileEnd {
			return false
		}
	}
	return true
}

// mergeSpans unites sorted, non-overlapping ranges that touch.
func mergeSpans(rs []vmcore.PhysRange) []span {
	var out []span
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, r.End)
			continue
		}
		out = append(out, span{r.Start, r.End})
	}
	return out
}

// overlaps returns the physical ranges that two or more segments cover,
// sorted.
func overlaps(segs []vmcore.Segment) []span {
	type edge struct {
		at    uint64
		delta int
	}
	var edges []edge
	for _, s := range segs {
		if s.MemSize > 0 {
			edges = append(edges, edge{s.PhysAddr, 1}, edge{s.PhysAddr + s.MemSize, -1})
		}
	}
	// Ends sort before starts at the same address: touching is not
	// overlapping.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta
	})
	var out []span
	depth := 0
	var start uint64
	for _, e := range edges {
		was := depth
		depth += e.delta
		switch {
		case was < 2 && depth >= 2:
			start = e.at
		case was >= 2 && depth < 2 && e.at > start:
			if n := len(out); n > 0 && out[n-1].end == start {
				out[n-1].end = e.at
			} else {
				out = append(out, span{start, e.at})
			}
		}
	}
	return out
}

func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

func alignUp(a, b uint64) uint64 { return (a + b - 1) &^ (b - 1) }
