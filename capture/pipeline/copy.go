package pipeline

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// CopyStats describes one save.
type CopyStats struct {
	BytesIn    int64 // bytes of memory read
	BytesOut   int64 // file size written
	PagesTotal int64
	PagesZero  int64
	Duration   time.Duration
}

// maxHeaderCopy bounds the ELF header and notes copied ahead of the first
// PT_LOAD's data.
const maxHeaderCopy = 64 << 20

// CopyELF writes src to dst as the same ELF file, leaving pages that are
// all zero as holes so they take no space on disk.
func CopyELF(src *vmcore.File, dst *os.File) (CopyStats, error) {
	start := time.Now()
	var st CopyStats
	r := src.ReaderAt()
	end := uint64(src.Size())
	for _, s := range src.Segments {
		if s.FileSize > 0 && s.Offset < end {
			end = s.Offset
		}
	}
	if end > maxHeaderCopy {
		return st, fmt.Errorf("pipeline: ELF headers span %d bytes (limit %d)", end, maxHeaderCopy)
	}
	hdr := make([]byte, end)
	if _, err := r.ReadAt(hdr, 0); err != nil && err != io.EOF {
		return st, fmt.Errorf("pipeline: read ELF headers: %w", err)
	}
	if _, err := dst.WriteAt(hdr, 0); err != nil {
		return st, fmt.Errorf("pipeline: write ELF headers: %w", err)
	}
	ps := src.PageSize
	buf := make([]byte, 1<<20)
	zero := make([]byte, ps)
	for _, s := range src.Segments {
		for off := uint64(0); off < s.FileSize; {
			n := uint64(len(buf))
			if s.FileSize-off < n {
				n = s.FileSize - off
			}
			b := buf[:n]
			m, err := r.ReadAt(b, int64(s.Offset+off))
			if err != nil && !(err == io.EOF && uint64(m) == n) {
				return st, fmt.Errorf("pipeline: read vmcore at %#x: %w", s.Offset+off, err)
			}
			st.BytesIn += int64(n)
			// Write runs of non-zero pages in one call each.
			runStart := int64(-1)
			flush := func(p uint64) error {
				if runStart < 0 {
					return nil
				}
				at := int64(s.Offset+off) + runStart
				_, err := dst.WriteAt(b[runStart:p], at)
				runStart = -1
				if err != nil {
					return fmt.Errorf("pipeline: write at %#x: %w", at, err)
				}
				return nil
			}
			for p := uint64(0); p < n; p += uint64(ps) {
				q := min(p+uint64(ps), n)
				st.PagesTotal++
				if bytes.Equal(b[p:q], zero[:q-p]) {
					st.PagesZero++
					if err := flush(p); err != nil {
						return st, err
					}
					continue
				}
				if runStart < 0 {
					runStart = int64(p)
				}
			}
			if err := flush(n); err != nil {
				return st, err
			}
			off += n
		}
	}
	if err := dst.Truncate(src.Size()); err != nil {
		return st, fmt.Errorf("pipeline: set size: %w", err)
	}
	st.BytesOut = src.Size()
	st.Duration = time.Since(start)
	return st, nil
}
