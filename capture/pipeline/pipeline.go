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
// ErrIncomplete. So it does, after a whole dump, when memory was missing
// from src: the pages are left out, listed in a GOKDUMP note (see
// vmcore.NoteGokdump) and in the Stats, and reading goes on past them.
// Stats are returned in every case.
func Save(src *vmcore.File, out io.WriterAt, opts Options) (*Stats, error) {
	start := time.Now()
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if opts.Format == FormatELF {
		opts.Codec = codec.None // ELF pages are stored as they are
	}
	st := &Stats{Level: opts.Level, Codec: opts.Codec, Format: opts.Format}
	s := newSaver(src, opts, st)
	for _, d := range st.Degraded {
		opts.Logf("warning: %s", d)
	}
	cw := &countingWriterAt{w: out}
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

// newSaver prepares a save of src: the walk, the filter, and in st what
// is degraded from the start.
func newSaver(src *vmcore.File, opts Options, st *Stats) *saver {
	if src.NoteErr != nil {
		lost := ""
		if src.VMCOREINFO == nil {
			lost = "; without VMCOREINFO no page can be filtered"
		}
		st.Degraded = append(st.Degraded, fmt.Sprintf("damaged notes: %v; the dump keeps the notes that parsed (%d)%s",
			src.NoteErr, len(src.Notes), lost))
	}
	st.Degraded = append(st.Degraded, src.Warnings...)
	if src.Flags&vmcore.FlagIncomplete != 0 {
		st.Degraded = append(st.Degraded, "the source is flagged incomplete (ELF e_flags): so is the dump")
	}
	p := newPlan(src, opts.ChunkPages)
	if p.degraded != "" {
		st.Degraded = append(st.Degraded, p.degraded)
	}
	st.MaxPFN = p.maxPFN
	// Memory claimed outside the windows; pass 1 adds the windows.
	st.PagesTotal, st.Absent = p.outMissing+p.outDeclared, p.outDeclared
	s := &saver{src: src, opts: opts, ps: int(src.PageSize), plan: p, stats: st,
		known: missingBelow(src.Missing, p.maxPFN),
		late:  &vmcore.Missing{PageSize: uint64(src.PageSize)}}
	if s.known != nil {
		st.Missing = s.known.Pages
	}
	// Always: hwpoison and offline pages are dropped at every level, as
	// makedumpfile does when the kernel says which they are.
	s.filt = newChunkFilter(src, opts.Level, opts.ChunkPages, st, opts.Logf)
	return s
}

func (s *saver) saveKdump(out *countingWriterAt) error {
	hdr := diskdump.HeaderFromVmcore(s.src)
	hdr.MaxMapnr = max(s.stats.MaxPFN, 1)
	hdr.DumpLevel = int(s.opts.Level)
	hdr.Status = s.opts.Codec.Flag()
	w, err := diskdump.NewWriter(out, hdr)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if err := s.runKdump(w); err != nil {
		s.finishMissing(func(notes []byte, viOff, viSize int64) error { return w.ReplaceNotes(notes, viOff, viSize) })
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
	why := s.finishMissing(func(notes []byte, viOff, viSize int64) error { return w.ReplaceNotes(notes, viOff, viSize) })
	if why != "" {
		w.SetIncomplete()
	}
	if err := w.Close(); err != nil {
		s.stats.Incomplete = true
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if why != "" {
		s.stats.Incomplete = true
		return fmt.Errorf("%w: %s", ErrIncomplete, why)
	}
	return nil
}
