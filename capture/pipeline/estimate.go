package pipeline

import (
	"fmt"
	"math/bits"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// SizeEstimate is what Save is expected to write at one dump level.
type SizeEstimate struct {
	Level filter.Level
	// Pages is how many pages the dump will hold (for kdump: carry a
	// descriptor, zero pages included); ZeroPages of them are estimated to
	// be all zeros.
	Pages, ZeroPages uint64
	// Bytes is the disk space the output is expected to take: for kdump
	// its size but for the holes its bitmaps have where there is no
	// memory; for ELF the pages it stores (the zero-filled gaps between
	// them are holes).
	Bytes int64
	// Sampled pages were read and compressed to estimate; PerPage is the
	// mean output bytes of a sampled non-zero page.
	Sampled int
	PerPage float64
	// Degraded says what could not be filtered (every such page is
	// counted as kept), as Save would say it.
	Degraded []string

	walked uint64 // pfns the walk covered: the work, for tests
}

// String is one line for the console.
func (e SizeEstimate) String() string {
	return fmt.Sprintf("level %d: ~%.1f MiB (%d pages, ~%d zero, %.0f bytes per page from %d samples)",
		e.Level, float64(e.Bytes)/(1<<20), e.Pages, e.ZeroPages, e.PerPage, e.Sampled)
}

// estimateSamples bounds the pages Estimate reads per run: about 16 MiB,
// spread over the whole of memory.
const estimateSamples = 4096

type pageSample struct {
	zero bool
	out  int // bytes the page takes in the output when not zero
}

// Estimate predicts the size of Save(src, out, opts) for each level, for
// choosing the first level of a fallback list that fits the target. It
// walks the windows Save walks (the same bound, the same skipping of the
// span without memory, the same filter, struct pages only) and reads a
// sample of the pages each level would keep, the same pages whatever the
// level, to measure zero pages and compression. It never fails for want
// of VMCOREINFO: unfiltered pages count as kept, as Save keeps them.
func Estimate(src *vmcore.File, levels []filter.Level, opts Options) ([]SizeEstimate, error) {
	if opts.Format == "" {
		opts.Format = FormatKdump
	}
	if opts.Format != FormatKdump && opts.Format != FormatELF {
		return nil, fmt.Errorf("pipeline: unknown format %q", opts.Format)
	}
	for _, level := range levels {
		if !level.Valid() {
			return nil, fmt.Errorf("pipeline: %w: %d", filter.ErrLevel, level)
		}
	}
	o := opts
	o.Level = 0
	if err := o.defaults(); err != nil {
		return nil, err
	}
	ps := uint64(src.PageSize)
	p := newPlan(src, o.ChunkPages)
	var held uint64
	for _, r := range p.ranges {
		if e := ceilDiv(r.FileEnd, ps); e > r.Start/ps {
			held += e - r.Start/ps
		}
	}
	// An odd stride keeps the sample from lining up with the power-of-two
	// periods memory is full of.
	stride := max(held/estimateSamples, 1) | 1

	var cp *codec.Compressor
	if opts.Format == FormatKdump && opts.Codec != codec.None && opts.Codec.CanCompress() {
		c, err := codec.NewCompressor(opts.Codec, int(ps))
		if err != nil {
			return nil, fmt.Errorf("pipeline: estimate: %w", err)
		}
		cp = c
	}
	samples := map[uint64]pageSample{}
	page := make([]byte, ps)
	cbuf := make([]byte, 0, 2*ps)
	measure := func(pfn uint64) pageSample {
		if s, ok := samples[pfn]; ok {
			return s
		}
		var s pageSample
		if n, err := src.ReadPhys(page, pfn*ps); err != nil && n == 0 {
			s.zero = true // unreadable: Save leaves it out
		} else {
			clear(page[max(n, 0):])
			s.zero = allZero(page)
			s.out = int(ps)
			if cp != nil && !s.zero {
				if out, ok := cp.Compress(cbuf[:0], page); ok && len(out) < int(ps) {
					s.out = len(out)
				}
			}
		}
		samples[pfn] = s
		return s
	}

	bm := newBitmaps(o.ChunkPages)
	var out []SizeEstimate
	for _, level := range levels {
		e := SizeEstimate{Level: level}
		lo := o
		lo.Level = level
		st := &Stats{}
		s := newSaver(src, lo, st)
		var runs, nSampled, nZero uint64
		var outBytes float64
		prevSet := false
		prevEnd := uint64(0)
		for _, win := range p.wins {
			if err := s.window(win, bm, true); err != nil {
				return nil, fmt.Errorf("pipeline: estimate: %w", err)
			}
			e.walked += win.n
			b := (win.n + 7) / 8
			if win.start != prevEnd {
				prevSet = false // a gap between windows ends a run
			}
			prevEnd = win.start + win.n
			for _, x := range bm.dumpable[:b] {
				e.Pages += uint64(bits.OnesCount8(x))
				var prev byte
				if prevSet {
					prev = 1
				}
				// A run starts at a set bit whose predecessor is clear.
				runs += uint64(bits.OnesCount8(x &^ (x<<1 | prev)))
				prevSet = x&0x80 != 0
			}
			// The sample: pfns ≡ 0 mod stride that this level keeps.
			for pfn := (win.start + stride - 1) / stride * stride; pfn < win.start+win.n; pfn += stride {
				i := pfn - win.start
				if bm.dumpable[i/8]&(1<<(i%8)) == 0 {
					continue
				}
				smp := measure(pfn)
				nSampled++
				if smp.zero {
					nZero++
					continue
				}
				outBytes += float64(smp.out)
			}
		}
		s.noteUnfiltered()
		e.Degraded = st.Degraded
		e.Sampled = int(nSampled)
		zeroFrac := 0.0
		e.PerPage = float64(ps) // nothing sampled: assume the worst
		if nSampled > 0 {
			zeroFrac = float64(nZero) / float64(nSampled)
			if nSampled > nZero {
				e.PerPage = outBytes / float64(nSampled-nZero)
			}
		}
		e.ZeroPages = uint64(zeroFrac * float64(e.Pages))
		nonZero := float64(e.Pages - e.ZeroPages)
		switch opts.Format {
		case FormatKdump:
			bs := int64(ps)
			size := bs + (104+int64(len(src.NoteData))+bs-1)/bs*bs // header, sub-header and notes
			size += 2 * int64(p.bitmapBlocks(int(bs))) * bs        // bitmaps: holes but where memory is
			size += int64(e.Pages) * 24                            // descriptors
			data := nonZero * e.PerPage
			if level&filter.ExcludeZero != 0 {
				data += float64(bs) // the shared zero page
			} else {
				data += float64(e.ZeroPages) * float64(zeroPageBytes(cp, int(ps)))
			}
			e.Bytes = size + int64(data)
		case FormatELF:
			// Headers: one PT_LOAD per run of kept pages at most. Zero
			// pages are dropped only with bit 1; otherwise they are
			// stored like the rest.
			size := int64(64+56*(runs+1)) + int64(len(src.NoteData))
			kept := nonZero
			if level&filter.ExcludeZero == 0 {
				kept = float64(e.Pages)
			}
			e.Bytes = size + int64(kept*float64(ps))
		}
		out = append(out, e)
	}
	return out, nil
}

// zeroPageBytes is what one zero page takes when zero pages are not
// excluded.
func zeroPageBytes(cp *codec.Compressor, ps int) int {
	if cp == nil {
		return ps
	}
	out, ok := cp.Compress(nil, make([]byte, ps))
	if !ok || len(out) >= ps {
		return ps
	}
	return len(out)
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
