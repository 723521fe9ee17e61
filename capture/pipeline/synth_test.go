package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

const synthPS = 4096

// synthSegs is a small machine: low memory, a segment that crosses mmap
// windows, one with excluded pages at its end (p_filesz < p_memsz), one
// whose data is not page-aligned in the file and ends mid-page, and one
// past the first bitmap chunk.
var synthSegs = []fixture.Load{
	synthSeg(0x1000, 0x9e000, 0x9e000),
	synthSeg(0x100000, 2600*synthPS, 2600*synthPS),
	synthSeg(0x1000000, 300*synthPS, 200*synthPS),
	{Vaddr: fixture.PageOffset + 0x2000000, Paddr: 0x2000000, MemSize: 100*synthPS + 100, FileSize: 100*synthPS + 100, Skew: 512},
	synthSeg(40000*synthPS, 700*synthPS, 700*synthPS),
}

// synthSeg is a PT_LOAD of RAM at paddr.
func synthSeg(paddr, memsz, filesz uint64) fixture.Load {
	return fixture.Load{Vaddr: fixture.PageOffset + paddr, Paddr: paddr, MemSize: memsz, FileSize: filesz}
}

// synthPage fills p with the content of page frame pfn: zero pages,
// incompressible pages, pages without repeats but with few distinct
// bytes, and compressible ones.
func synthPage(pfn uint64, p []byte) {
	switch {
	case pfn%11 == 0 || (pfn >= 300 && pfn < 420):
		fixture.Zero(pfn, p)
	case pfn%13 == 0:
		fixture.Random(pfn, p)
	case pfn%17 == 0:
		r := rand.New(rand.NewPCG(pfn, 5))
		for i := range p {
			p[i] = byte(r.IntN(24))
		}
	default:
		r := rand.New(rand.NewPCG(pfn, 5))
		for i := 0; i+8 <= len(p); i += 8 {
			v := pfn<<20 | uint64(i/64)
			if r.IntN(4) == 0 {
				v = r.Uint64() & 0xffff
			}
			binary.LittleEndian.PutUint64(p[i:], v)
		}
	}
}

// buildSynthCore writes an x86_64 ELF vmcore of segs to path, page
// contents from synthPage (zero pages left as holes, as a sparse copy of
// a vmcore has them), and a VMCOREINFO without the entries the page filter
// needs: the filter degrades and keeps every page, so the dump levels
// differ only in zero pages.
func buildSynthCore(t testing.TB, path string, segs []fixture.Load) {
	t.Helper()
	c := fixture.Core{
		Notes:   fixture.VMCOREINFO(binary.LittleEndian, "OSRELEASE=6.1.0-synth\nPAGESIZE=4096\nCRASHTIME=1795782722\n"),
		Loads:   segs,
		Content: synthPage,
	}
	if err := c.Build().WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

// openBoth opens a vmcore file twice: read with pread, and through mmap
// views.
func openBoth(t testing.TB, path string) (pread, mapped *vmcore.File) {
	t.Helper()
	pread, err := vmcore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pread.Close() })
	mapped, err = vmcore.OpenMapped(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mapped.Close() })
	return pread, mapped
}

// saveFile saves src to a new file under dir and returns its bytes.
func saveFile(t testing.TB, src *vmcore.File, dir string, opts Options) ([]byte, *Stats) {
	t.Helper()
	b, st, err := saveFileErr(t, src, dir, opts)
	if err != nil {
		t.Fatalf("Save %+v: %v", opts, err)
	}
	return b, st
}

// saveFileErr is saveFile returning Save's error.
func saveFileErr(t testing.TB, src *vmcore.File, dir string, opts Options) ([]byte, *Stats, error) {
	t.Helper()
	f, err := os.CreateTemp(dir, "dump")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	st, serr := Save(src, f, opts)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b, st, serr
}

// TestParallelIdentical: the output does not depend on the number of
// workers, nor on whether the vmcore is read with pread or through mmap
// views, and holds every page of the source.
func TestParallelIdentical(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmcore")
	buildSynthCore(t, path, synthSegs)
	pread, mapped := openBoth(t, path)
	if mapped.Viewable(0x100000) == 0 {
		t.Fatal("OpenMapped did not map the file")
	}
	if pread.Viewable(0x100000) != 0 {
		t.Fatal("Open mapped a regular file")
	}
	codecs := []codec.Codec{codec.Zstd, codec.None, codec.Zlib, codec.Snappy}
	if testing.Short() {
		codecs = codecs[:2]
	}
	for _, c := range codecs {
		for _, level := range []filter.Level{0, 1, 31} {
			t.Run(fmt.Sprintf("%v/d%d", c, level), func(t *testing.T) {
				want, st := saveFile(t, pread, dir, Options{Level: level, Codec: c, Workers: 1})
				if st.PagesKept == 0 || (level&filter.ExcludeZero != 0) != (st.Zero > 0) {
					t.Fatalf("stats %+v", st)
				}
				checkPages(t, want, pread, level)
				for _, tc := range []struct {
					src     *vmcore.File
					workers int
					noCache bool
				}{{pread, 2, false}, {pread, 5, false}, {mapped, 1, false}, {mapped, 3, false}, {pread, 1, true}, {mapped, 2, true}} {
					if tc.noCache {
						// Pass 2 then computes the bitmaps again.
						defer func(n uint64) { bitmapCacheBytes = n }(bitmapCacheBytes)
						bitmapCacheBytes = 0
					}
					got, _ := saveFile(t, tc.src, dir, Options{Level: level, Codec: c, Workers: tc.workers})
					if !bytes.Equal(got, want) {
						t.Fatalf("%d workers (mapped %v, no bitmap cache %v): output differs from 1 worker's at byte %d",
							tc.workers, tc.src == mapped, tc.noCache, firstDiff(got, want))
					}
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkPages reads every page of the kdump file b back and compares it
// with the source; pfns the source does not hold must not be dumped, and
// at levels with bit 1 zero pages share one descriptor.
func checkPages(t *testing.T, b []byte, src *vmcore.File, level filter.Level) {
	t.Helper()
	d, err := diskdump.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got, want := make([]byte, synthPS), make([]byte, synthPS)
	var n uint64
	for pfn := range src.MaxPFN() {
		k, err := src.ReadPhys(want, pfn*synthPS)
		if errors.Is(err, vmcore.ErrHole) && k > 0 {
			clear(want[k:]) // the page ends mid-way
			err = nil
		}
		held := err == nil
		if d.IsDumpable(pfn) != held {
			t.Fatalf("pfn %#x: dumpable %v, held by the source %v", pfn, d.IsDumpable(pfn), held)
		}
		if !held {
			continue
		}
		if level&filter.ExcludeZero != 0 && isZero(want) {
			// Zero pages share one descriptor, makedumpfile's way.
			if pd, ok, err := d.PageDesc(pfn); err != nil || !ok || pd.Flags != 0 || pd.Offset != zeroDesc(t, d) {
				t.Fatalf("zero pfn %#x: descriptor %+v, %v, %v", pfn, pd, ok, err)
			}
		}
		if err := d.ReadPage(pfn, got); err != nil {
			t.Fatalf("pfn %#x: %v", pfn, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("pfn %#x differs from the source", pfn)
		}
		n++
	}
	if n == 0 || n != d.NumDumped() {
		t.Fatalf("%d pages compared, the dump holds %d", n, d.NumDumped())
	}
}

// TestMappedFault: a vmcore that faults when touched (here: a mapped file
// cut short under the reader, as a failing /proc/vmcore read would) is
// saved to the end, the pages that fault left out as missing.
func TestMappedFault(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmcore")
	buildSynthCore(t, path, synthSegs)
	src, err := vmcore.OpenMapped(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Viewable(0x100000) == 0 {
		t.Skip("cannot map the file")
	}
	// Cut the file in the middle of the second segment.
	cut, _, _ := src.FileOffset(0x100000 + 1000*synthPS)
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		b, st, err := saveFileErr(t, src, dir, Options{Level: 1, Codec: codec.Zstd, Workers: workers})
		if !errors.Is(err, ErrIncomplete) {
			t.Fatalf("%d workers: Save: %v, want ErrIncomplete", workers, err)
		}
		if st.Unreadable == 0 || st.Missing != st.Unreadable || st.MissingList.Ranges[0].Start != 0x100+1000 {
			t.Fatalf("%d workers: unreadable %d, missing %d from %+v", workers, st.Unreadable, st.Missing, st.MissingList)
		}
		d, err := diskdump.Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Incomplete() {
			t.Errorf("%d workers: not flagged incomplete", workers)
		}
		got, want := make([]byte, synthPS), make([]byte, synthPS)
		for _, pfn := range []uint64{0x100, 0x100 + 999, 0x100 + 1000, 40000 + 5} {
			err := d.ReadPage(pfn, got)
			if pfn >= 0x100+1000 {
				if !errors.Is(err, diskdump.ErrExcluded) {
					t.Errorf("%d workers: missing pfn %#x reads: %v", workers, pfn, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			synthPage(pfn, want)
			if !bytes.Equal(got, want) {
				t.Errorf("%d workers: pfn %#x: wrong contents", workers, pfn)
			}
		}
	}
}

// zeroDesc returns the data offset zero pages share: the first descriptor's
// of a dump whose first dumped page is zero, as in synthSegs (pfn 1 is in
// low memory, not a multiple of 11: the first zero page is pfn 11).
func zeroDesc(t *testing.T, d *diskdump.File) int64 {
	t.Helper()
	pd, ok, err := d.PageDesc(11)
	if err != nil || !ok {
		t.Fatalf("pfn 11: %+v, %v, %v", pd, ok, err)
	}
	return pd.Offset
}
