package pipeline

import (
	"errors"
	"fmt"

	"github.com/gokdump/gokdump/capture/elfcore"
	"github.com/gokdump/gokdump/capture/filter"
)

// elfKeep answers elfcore's "keep this pfn?" from the windows' bitmaps
// and, at levels with bit 1, from the page's contents.
type elfKeep struct {
	s                 *saver
	cur               int // the window the bitmaps hold; -1: none yet this pass
	bm                *bitmaps
	page              []byte
	count             bool // first pass: add to the statistics
	err               error
	last              uint64 // the pfn asked last, and the answer
	lastOK, lastValid bool
}

// keep is elfcore's KeepFunc. elfcore asks in passes, each in
// nondecreasing pfn order and sometimes twice in a row: the answer is
// cached so a page is read and counted once.
func (k *elfKeep) keep(pfn uint64) bool {
	if k.lastValid && pfn == k.last {
		return k.lastOK
	}
	if k.lastValid && pfn < k.last {
		// Another pass (of the same windows, from the first).
		k.cur = -1
	}
	ok := k.decide(pfn)
	k.last, k.lastOK, k.lastValid = pfn, ok, true
	return ok
}

// advance computes the windows up to and including i, in order: every
// pass computes the same windows, whichever pfns it asks about, so the
// filter (which carries runs from one window into the next) answers each
// pass alike.
func (k *elfKeep) advance(i int) {
	for k.cur < i {
		k.cur++
		if err := k.s.window(k.s.plan.wins[k.cur], k.bm, k.count); err != nil {
			if k.err == nil {
				k.err = err
			}
			// Keep what the filter could not judge.
			copy(k.bm.dumpable, k.bm.held)
		}
	}
}

func (k *elfKeep) decide(pfn uint64) bool {
	i := k.s.plan.find(pfn)
	if i < 0 {
		return false // beyond the bound of the machine's address bits
	}
	k.advance(i)
	win := k.s.plan.wins[i]
	j := pfn - win.start
	if k.bm.dumpable[j/8]&(1<<(j&7)) == 0 {
		return false
	}
	if k.s.opts.Level&filter.ExcludeZero != 0 {
		_, err := k.s.src.ReadPhys(k.page, pfn*uint64(k.s.ps))
		if err == nil && isZero(k.page) {
			if k.count {
				k.s.stats.Zero++
			}
			return false
		}
	}
	return true
}

func (s *saver) saveELF(out *countingWriterAt) error {
	k := &elfKeep{s: s, count: true, cur: -1, bm: newBitmaps(s.opts.ChunkPages), page: make([]byte, s.ps)}
	// A physical-only source (QEMU's cores) gets the kernel virtual
	// addresses the kernel's own /proc/vmcore has: readers such as
	// Debian 12's drgn find the page tables through them.
	km := elfcore.KernelSegments(s.src)
	for _, w := range km.Warnings {
		s.opts.Logf("warning: %s", w)
		s.stats.Degraded = append(s.stats.Degraded, w)
	}
	if km.Image > 0 || km.Linear > 0 {
		s.opts.Logf("ELF output: %d kernel-image PT_LOADs added, %d PT_LOADs given their direct-map address (confirmed by the page tables)",
			km.Image, km.Linear)
	}
	eo := elfcore.Options{PageSize: int64(s.ps), Segments: km.Segments}
	if n := len(km.Segments); n >= elfcore.DefaultMaxPhdrs {
		// Every source PT_LOAD needs its header at least: allow what the
		// format allows rather than refuse the dump.
		eo.MaxPhdrs = elfcore.MaxPhdrs
	}
	lay, err := elfcore.NewLayout(s.src, k.keep, eo)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	// Windows the layout never asked about (no page stored) still count:
	// their memory, and what of it is missing. The next pass starts over.
	k.advance(len(s.plan.wins) - 1)
	k.count, k.cur, k.lastValid = false, -1, false
	s.noteUnfiltered()
	if k.err != nil {
		s.opts.Logf("filter: %v; those pages are kept", k.err)
	}
	w, err := elfcore.NewWriter(out, lay)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	buf := make([]byte, s.ps)
	var missing uint64
	for paddr := range lay.KeptPages() {
		if _, rerr := s.src.ReadPhys(buf, paddr); rerr != nil {
			// The layout is fixed: the page stays in the file data, as a
			// hole, and the notes list it as missing.
			s.missingPage(paddr/uint64(s.ps), rerr)
			missing++
			err = w.MissingPage(paddr)
		} else {
			s.stats.BytesIn += int64(s.ps)
			err = w.WritePage(paddr, buf)
		}
		if err != nil {
			s.finishMissing(func(notes []byte, _, _ int64) error { w.ReplaceNotes(notes); return nil })
			aerr := w.Abort(err)
			s.stats.Incomplete = true
			return fmt.Errorf("%w: %w", ErrIncomplete, errors.Join(err, aerr))
		}
	}
	s.stats.PagesKept = lay.Stats().KeptPages - missing
	s.stats.Stored = lay.Stats().KeptPages + lay.Stats().ZeroFilledPages
	why := s.finishMissing(func(notes []byte, _, _ int64) error { w.ReplaceNotes(notes); return nil })
	if why != "" {
		w.SetIncomplete()
	}
	if err := w.Close(); err != nil {
		s.stats.Incomplete = true
		if errors.Is(err, elfcore.ErrIncomplete) {
			return fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		return err
	}
	if why != "" {
		s.stats.Incomplete = true
		return fmt.Errorf("%w: %s", ErrIncomplete, why)
	}
	return nil
}
