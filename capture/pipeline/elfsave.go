package pipeline

import (
	"errors"
	"fmt"

	"github.com/gokdump/gokdump/capture/elfcore"
	"github.com/gokdump/gokdump/capture/filter"
)

// elfKeep answers elfcore's "keep this pfn?" from the chunked bitmaps and,
// at levels with bit 1, from the page's contents.
type elfKeep struct {
	s                   *saver
	start, n            uint64 // the chunk the bitmaps hold; n == 0: none
	ram, held, dumpable []byte
	page                []byte
	count               bool // first pass: add to the statistics
	err                 error
	last                uint64 // the pfn asked last, and the answer
	lastOK, lastValid   bool
}

// keep is elfcore's KeepFunc. elfcore asks in passes, each in
// nondecreasing pfn order and sometimes twice in a row: the answer is
// cached so a page is read and counted once.
func (k *elfKeep) keep(pfn uint64) bool {
	if k.lastValid && pfn == k.last {
		return k.lastOK
	}
	if k.lastValid && pfn < k.last {
		// Another pass: the statistics are complete.
		k.count = false
	}
	ok := k.decide(pfn)
	k.last, k.lastOK, k.lastValid = pfn, ok, true
	return ok
}

func (k *elfKeep) decide(pfn uint64) bool {
	if k.n == 0 || pfn < k.start || pfn >= k.start+k.n {
		cs := k.s.opts.ChunkPages
		k.start = pfn / cs * cs
		k.n = min(cs, k.s.stats.MaxPFN-k.start)
		if err := k.s.chunk(k.start, k.n, k.ram, k.held, k.dumpable, k.count); err != nil {
			k.err = err
			// Keep what the filter could not judge.
			copy(k.dumpable, k.held)
		}
	}
	i := pfn - k.start
	if k.dumpable[i/8]&(1<<(i&7)) == 0 {
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
	k := &elfKeep{
		s: s, count: true,
		ram:      make([]byte, s.opts.ChunkPages/8),
		held:     make([]byte, s.opts.ChunkPages/8),
		dumpable: make([]byte, s.opts.ChunkPages/8),
		page:     make([]byte, s.ps),
	}
	lay, err := elfcore.NewLayout(s.src, k.keep, elfcore.Options{PageSize: int64(s.ps)})
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if k.err != nil {
		s.opts.Logf("filter: %v; those pages are kept", k.err)
	}
	w, err := elfcore.NewWriter(out, lay)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	buf := make([]byte, s.ps)
	for paddr := range lay.KeptPages() {
		if _, err := s.src.ReadPhys(buf, paddr); err != nil {
			s.stats.Unreadable++
			if s.stats.Unreadable <= 10 {
				s.opts.Logf("physical %#x unreadable, saved as zeros: %v", paddr, err)
			}
			clear(buf)
		}
		s.stats.BytesIn += int64(s.ps)
		if err := w.WritePage(paddr, buf); err != nil {
			aerr := w.Abort(err)
			s.stats.Incomplete = true
			return fmt.Errorf("%w: %w", ErrIncomplete, errors.Join(err, aerr))
		}
	}
	s.stats.PagesKept = lay.Stats().KeptPages
	if err := w.Close(); err != nil {
		s.stats.Incomplete = true
		if errors.Is(err, elfcore.ErrIncomplete) {
			return fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		return err
	}
	return nil
}
