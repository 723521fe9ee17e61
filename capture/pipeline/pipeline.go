package pipeline

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// Save writes the dump of src to out in the format, level and codec opts
// ask for. When writing fails part-way (a full disk, an I/O error), out is
// finished as a readable dump flagged incomplete and the error wraps
// ErrIncomplete; Stats are returned in every case.
func Save(src *vmcore.File, out io.WriterAt, opts Options) (*Stats, error) {
	start := time.Now()
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if opts.Format == FormatELF {
		opts.Codec = codec.None // ELF pages are stored as they are
	}
	st := &Stats{Level: opts.Level, Codec: opts.Codec, Format: opts.Format}
	if src.NoteErr != nil {
		lost := ""
		if src.VMCOREINFO == nil {
			lost = "; without VMCOREINFO no page can be filtered"
		}
		st.Degraded = append(st.Degraded, fmt.Sprintf("damaged notes: %v; the dump keeps the notes that parsed (%d)%s",
			src.NoteErr, len(src.Notes), lost))
	}
	st.MaxPFN = boundMaxPFN(src, st)
	cw := &countingWriterAt{w: out}
	s := &saver{src: src, opts: opts, ps: int(src.PageSize), pm: newPageMap(src), stats: st}
	// Always: hwpoison and offline pages are dropped at every level, as
	// makedumpfile does when the kernel says which they are.
	s.filt = newChunkFilter(src, opts.Level, opts.ChunkPages, st, opts.Logf)
	for _, d := range st.Degraded {
		opts.Logf("warning: %s", d)
	}
	var err error
	switch opts.Format {
	case FormatKdump:
		err = s.saveKdump(cw)
	case FormatELF:
		err = s.saveELF(cw)
	}
	st.BytesOut = cw.max
	st.Duration = time.Since(start)
	return st, err
}

// physAddrBitsDefault bounds the memory a dump may span when VMCOREINFO
// does not say: 2^48 bytes, 256 TiB.
const physAddrBitsDefault = 48

// boundMaxPFN returns the page frames the dump spans, but no more than the
// dumped machine can address (VMCOREINFO's MAX_PHYSMEM_BITS): a corrupt
// header placing memory at an absurd address must not size bitmaps and
// loops by it. Memory above the bound is noted in st.Degraded.
func boundMaxPFN(src *vmcore.File, st *Stats) uint64 {
	bits := int64(physAddrBitsDefault)
	if info := src.VMCOREINFO; info != nil {
		if b, ok := info.Number("MAX_PHYSMEM_BITS"); ok && b >= 32 && b <= 56 {
			bits = b
		}
	}
	limit := (uint64(1) << bits) / uint64(src.PageSize)
	max := src.MaxPFN()
	if max > limit {
		st.Degraded = append(st.Degraded, fmt.Sprintf(
			"memory above %#x (beyond the machine's %d physical address bits) is not dumped: the header has memory up to %#x",
			limit*uint64(src.PageSize), bits, max*uint64(src.PageSize)))
		return limit
	}
	return max
}

func (s *saver) saveKdump(out *countingWriterAt) error {
	hdr := diskdump.HeaderFromVmcore(s.src)
	hdr.MaxMapnr = s.stats.MaxPFN
	hdr.DumpLevel = int(s.opts.Level)
	hdr.Status = s.opts.Codec.Flag()
	w, err := diskdump.NewWriter(out, hdr)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if err := s.runKdump(w); err != nil {
		if out.err == nil {
			// Not an output failure: a bug or unreadable input. Still
			// leave a readable file behind.
			w.Abort(err)
			s.stats.Incomplete = true
			return fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		if aerr := w.Abort(err); aerr != nil {
			err = errors.Join(err, aerr)
		}
		s.stats.Incomplete = true
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if err := w.Close(); err != nil {
		s.stats.Incomplete = true
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	return nil
}
