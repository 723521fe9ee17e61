package dump

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/kdump"
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
	st := &Stats{MaxPFN: src.MaxPFN(), Level: opts.Level, Codec: opts.Codec, Format: opts.Format}
	cw := &countingWriterAt{w: out}
	s := &saver{src: src, opts: opts, ps: int(src.PageSize), pm: newPageMap(src), stats: st}
	// Always: hwpoison and offline pages are dropped at every level, as
	// makedumpfile does when the kernel says which they are.
	s.filt = newChunkFilter(src, opts.Level, opts.ChunkPages, st, opts.Logf)
	for _, d := range st.Degraded {
		opts.Logf("filter: %s", d)
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

func (s *saver) saveKdump(out *countingWriterAt) error {
	hdr := kdump.HeaderFromVmcore(s.src)
	hdr.DumpLevel = s.opts.Level
	hdr.Status = s.opts.Codec.Flag()
	w, err := kdump.NewWriter(out, hdr)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
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
