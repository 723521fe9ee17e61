package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// Format is the output file format.
type Format string

// Formats.
const (
	FormatKdump Format = "kdump" // makedumpfile's kdump-compressed format
	FormatELF   Format = "elf"   // an ELF core like /proc/vmcore, excluded pages left out or zero-filled (see package elfcore)
)

// ErrIncomplete is wrapped by Save's error when the output was closed as
// a readable dump flagged incomplete: it could not be finished (a full
// disk, an I/O error), or the source lacks memory it should hold (a
// truncated vmcore, pages whose read failed, a source itself flagged
// incomplete), which the output lists as missing.
var ErrIncomplete = errors.New("pipeline: incomplete")

// Options control Save.
type Options struct {
	Level  filter.Level // makedumpfile's -d
	Codec  codec.Codec  // page compression for FormatKdump
	Format Format       // FormatKdump (default) or FormatELF
	// Workers compress pages in parallel; 0 means GOMAXPROCS. The output
	// does not depend on it.
	Workers int
	// ChunkPages is how many page frames one filter cycle covers at most;
	// it bounds the bitmap memory (ChunkPages/8 bytes per bitmap).
	ChunkPages uint64
	// Logf receives notes (degraded filtering, missing memory).
	Logf func(format string, args ...any)
	// Progress, if set, is called now and then with pages written so far
	// and the total to write.
	Progress func(done, total uint64)
}

// Stats describes a save, in makedumpfile's terms where it has them.
type Stats struct {
	MaxPFN     uint64 // page frames the dump spans, holes included
	PagesTotal uint64 // pages of memory in the source ("Original pages")
	PagesKept  uint64 // pages written with their contents ("Remaining pages")
	// Stored is the pages the output holds, as its readers (and gokdump
	// info) count them: the kept pages and, in a kdump file, the zero
	// pages, which share one zero page's data; in an ELF file, the
	// excluded pages of runs too short to split off, stored as zeros.
	Stored    uint64
	Zero      uint64 // pages filled with zero, excluded
	Cache     uint64 // non-private cache pages, excluded
	CachePriv uint64 // private cache pages, excluded
	User      uint64 // user process data pages, excluded
	Free      uint64 // free pages, excluded
	HWPoison  uint64
	Offline   uint64
	Absent    uint64 // pages the source declares but does not hold (p_memsz > p_filesz)
	// Missing pages the source should hold and does not: past the end of
	// a truncated file, unreadable, or listed missing by the source. They
	// are not in the output (neither zero nor kept), which lists them and
	// is flagged incomplete.
	Missing uint64
	// Unreadable counts the Missing pages whose read failed.
	Unreadable uint64
	// MissingList is where the Missing pages are (its list is bounded;
	// see vmcore.Missing); nil when none are.
	MissingList *vmcore.Missing
	// Unfiltered counts held pages kept at a level with class bits
	// because their struct page could not be read.
	Unfiltered uint64

	BytesIn    int64 // bytes of memory read
	BytesOut   int64 // bytes of the output file
	Duration   time.Duration
	BitmapTime time.Duration // of Duration, on the bitmaps: filter and zero-page scan
	Degraded   []string      // what could not be filtered or copied, and why
	Level      filter.Level
	Codec      codec.Codec
	Format     Format
	Incomplete bool
}

func (o *Options) defaults() error {
	if !o.Level.Valid() {
		return fmt.Errorf("pipeline: %w: %d", filter.ErrLevel, o.Level)
	}
	if o.Format == "" {
		o.Format = FormatKdump
	}
	if o.Format != FormatKdump && o.Format != FormatELF {
		return fmt.Errorf("pipeline: unknown format %q", o.Format)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ChunkPages == 0 {
		o.ChunkPages = 1 << 18 // 1 GiB of 4 KiB pages: 32 KiB per bitmap
	}
	// Windows are cut at multiples of ChunkPages: whole bitmap bytes.
	o.ChunkPages = (min(o.ChunkPages, 1<<30) + 63) &^ 63
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

func popcount(b []byte) uint64 {
	var n int
	for len(b) >= 8 {
		n += bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return uint64(n)
}

func isZero(p []byte) bool {
	// bytes.Equal against a zero page runs at memory speed.
	return bytes.Equal(p, zeroPage[:len(p)])
}

var zeroPage [1 << 16]byte

// readPages reads n pages from pfn into buf, page by page where a bulk
// read fails, and reports which pages could not be read (left zero).
func readPages(src *vmcore.File, pfn uint64, n int, buf []byte, ps int, bad func(i int, err error)) {
	if _, err := src.ReadPhys(buf[:n*ps], pfn*uint64(ps)); err == nil {
		return
	}
	for i := 0; i < n; i++ {
		pg := buf[i*ps : (i+1)*ps]
		if k, err := src.ReadPhys(pg, (pfn+uint64(i))*uint64(ps)); err != nil {
			if errors.Is(err, vmcore.ErrHole) && !errors.Is(err, vmcore.ErrMissing) && k > 0 {
				// A page the file holds only in part (a segment not ending on
				// a page boundary): the rest is not memory; zero it.
				clear(pg[k:])
				continue
			}
			clear(pg)
			bad(i, err)
		}
	}
}

// errWriter remembers whether an output error came from writing, so that
// Save can tell a full disk from a bad input.
var _ io.WriterAt = (*countingWriterAt)(nil)

type countingWriterAt struct {
	w   io.WriterAt
	max int64
	err error
}

// Preallocate passes the kdump writer's reservation of its descriptor
// area on to the output: without it a full disk could leave no room for
// the descriptors of the pages already written.
func (c *countingWriterAt) Preallocate(off, size int64) error {
	return diskdump.Preallocate(c.w, off, size)
}

// ReadAt lets the kdump writer check pages against the bitmaps it wrote,
// when the output can be read.
func (c *countingWriterAt) ReadAt(p []byte, off int64) (int, error) {
	r, ok := c.w.(io.ReaderAt)
	if !ok {
		return 0, errors.New("pipeline: output cannot be read")
	}
	return r.ReadAt(p, off)
}

func (c *countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	if end := off + int64(n); end > c.max {
		c.max = end
	}
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
