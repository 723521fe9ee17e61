package diskdump

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/internal/fixture"
	"golang.org/x/sys/unix"
)

// countingFile is an *os.File that counts the bytes read through it.
type countingFile struct {
	*os.File
	n atomic.Int64
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.File.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// openCounting opens path with Open through a countingFile.
func openCounting(t *testing.T, path string) (*File, *countingFile) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{File: fh}
	kf, err := Open(cf, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return kf, cf
}

// handDump writes to out, piece by piece as a writer that skips empty
// bitmap blocks would, a dump of max_mapnr maxMapnr holding the raw pages
// pfns (sorted, Pattern content): header, sub-header with the notes of
// testHeader, the bitmap bytes that set bits, descriptors and data.
func handDump(t testing.TB, out io.WriterAt, maxMapnr uint64, pfns []uint64) {
	t.Helper()
	h := testHeader(maxMapnr, codec.None)
	l := newLayout(int64(h.BlockSize), int64(len(h.Notes)), maxMapnr)
	put := func(b []byte, off int64) {
		if _, err := out.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	put(h.encodeHeader(l, h.Status), 0)
	put(h.encodeSubHeader(l), l.bs)
	bits := map[uint64]byte{}
	for _, pfn := range pfns {
		bits[pfn/8] |= 1 << (pfn % 8)
	}
	for _, at := range slices.Sorted(func(yield func(uint64) bool) {
		for k := range bits {
			if !yield(k) {
				return
			}
		}
	}) {
		put([]byte{bits[at]}, l.bitmap1+int64(at))
		put([]byte{bits[at]}, l.bitmap2+int64(at))
	}
	dataOff := l.desc + int64(len(pfns))*descSize
	descs := make([]byte, len(pfns)*descSize)
	page := make([]byte, l.bs)
	for i, pfn := range pfns {
		at := dataOff + int64(i)*l.bs
		PageDesc{Offset: at, Size: uint32(l.bs)}.put(descs[i*descSize:])
		fixture.Pattern(pfn, page)
		put(page, at)
	}
	put(descs, l.desc)
}

// checkPages reads every page of kf and compares it with Pattern.
func checkPages(t *testing.T, kf *File, want []uint64) {
	t.Helper()
	var got []uint64
	page, pat := make([]byte, kf.PageSize()), make([]byte, kf.PageSize())
	for pfn, err := range kf.DumpedPFNs() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pfn)
		if err := kf.ReadPage(pfn, page); err != nil {
			t.Fatal(err)
		}
		if fixture.Pattern(pfn, pat); !bytes.Equal(page, pat) {
			t.Errorf("pfn %#x differs", pfn)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("dumped pfns %#x, want %#x", got, want)
	}
	if err := kf.Check(); err != nil {
		t.Error(err)
	}
	if err := kf.Verify(); err != nil {
		t.Error(err)
	}
}

// TestFarPage: one page at 2^45 bytes (pfn 2^33) makes bitmaps of 1 GiB
// each, mostly holes. Open reads the bitmap data the file holds, not
// the gigabyte it spans, and indexes one block.
func TestFarPage(t *testing.T) {
	f := fixture.CreateFile(t, "far")
	path := f.Name()
	pfns := []uint64{5, 1 << 33}
	handDump(t, f, 1<<33+1, pfns)
	kf, cf := openCounting(t, path)
	if n := cf.n.Load(); n > 1<<20 {
		t.Errorf("Open read %d bytes", n)
	}
	if len(kf.index) != 2 {
		t.Errorf("%d index entries, want 2", len(kf.index))
	}
	checkPages(t, kf, pfns)
}

// TestHostileFlattenedBitmap: an 18 KiB flattened stream whose header
// claims bitmaps of 100 GiB each, with a page in the first and the last
// block. Unflattened, it is a sparse file of 200 GiB; opening it reads
// kilobytes, and its index holds two entries.
func TestHostileFlattenedBitmap(t *testing.T) {
	const maxMapnr = 100 << 30 * 8 // bits in 100 GiB
	pfns := []uint64{3, maxMapnr - 2}
	var stream bytes.Buffer
	fw := NewFlattenWriter(&stream)
	handDump(t, fw, maxMapnr, pfns)
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if stream.Len() > 20<<10 {
		t.Fatalf("stream of %d bytes", stream.Len())
	}
	out := fixture.CreateFile(t, "vmcore")
	if err := Unflatten(&stream, out); err != nil {
		t.Fatal(err)
	}
	if st, _ := out.Stat(); st.Size() < 200<<30 {
		t.Fatalf("unflattened to %d bytes", st.Size())
	}
	kf, cf := openCounting(t, out.Name())
	if n := cf.n.Load(); n > 1<<20 {
		t.Errorf("Open read %d bytes", n)
	}
	if len(kf.index) != 2 || kf.NumDumped() != 2 {
		t.Errorf("%d index entries, %d pages", len(kf.index), kf.NumDumped())
	}
	checkPages(t, kf, pfns)
}

// TestBitsPastMaxMapnr: bits set in the 2nd bitmap at or past max_mapnr
// describe no page. They are not counted: the descriptors stay those of
// the pages below.
func TestBitsPastMaxMapnr(t *testing.T) {
	good := smallDump(t, 4096, codec.Zlib, 200)
	kf, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	n := kf.NumDumped()
	b := bytes.Clone(good)
	// Bits 200–4095 of the 2nd bitmap block, and the 1st.
	for i := 200/8 + 1; i < 4096; i++ {
		b[kf.lay.bitmap1+int64(i)] = 0xff
		b[kf.lay.bitmap2+int64(i)] = 0xff
	}
	b[kf.lay.bitmap2+200/8] |= 0xff << (200 % 8)
	kf, err = Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if kf.NumDumped() != n {
		t.Errorf("%d pages, want %d", kf.NumDumped(), n)
	}
	for pfn, err := range kf.DumpedPFNs() {
		if err != nil || pfn >= 200 {
			t.Fatalf("pfn %d, %v", pfn, err)
		}
	}
	if err := kf.Verify(); err != nil {
		t.Error(err)
	}
}

// TestCheckTruncated cuts a dump at several sizes: Check counts the
// pages whose descriptor or data is past the end, exactly as reading
// each page finds them, and Verify names the first.
func TestCheckTruncated(t *testing.T) {
	good := smallDump(t, 4096, codec.Zstd, 2000)
	full, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Check(); err != nil {
		t.Fatal(err)
	}
	total := full.NumDumped()
	for _, size := range []int64{
		full.lay.desc + 5*descSize + 3, // in the descriptor table
		full.dataOff + 100,             // at the start of the data
		int64(len(good)) / 2,
		int64(len(good)) - 1,
	} {
		b := good[:size]
		kf, err := Open(bytes.NewReader(b), size)
		if err != nil {
			t.Fatalf("cut at %d: %v", size, err)
		}
		// Count the pages that no longer read.
		var unreadable uint64
		first := ^uint64(0)
		for pfn, err := range kf.DumpedPFNs() {
			if err != nil {
				t.Fatal(err)
			}
			if kf.ReadPage(pfn, make([]byte, 4096)) != nil {
				unreadable++
				first = min(first, pfn)
			}
		}
		err = kf.Check()
		var d *Damage
		if !errors.As(err, &d) || !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: Check = %v", size, err)
		}
		if d.Beyond != unreadable || d.Pages != total || d.Missing() != unreadable || d.FirstPFN != first || d.Size != size {
			t.Errorf("cut at %d: %+v; want %d of %d beyond, first pfn %#x", size, d, unreadable, total, first)
		}
		var pe *PageError
		if err := kf.Verify(); !errors.As(err, &pe) || pe.PFN != first {
			t.Errorf("cut at %d: Verify = %v, want pfn %#x", size, err, first)
		}
	}
}

// TestCheckLostRecords unflattens a stream of 4 KiB records from which
// every other record of the descriptors and data was lost: the file has
// holes where they were, and Check and Verify refuse it, though its size
// and header are those of the whole dump.
func TestCheckLostRecords(t *testing.T) {
	good := smallDump(t, 4096, codec.Zstd, 2000)
	full, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	fw := NewFlattenWriter(&stream)
	for off, i := int64(0), 0; off < int64(len(good)); off, i = off+4096, i+1 {
		chunk := good[off:min(off+4096, int64(len(good)))]
		last := off+4096 >= int64(len(good))
		if off >= full.lay.desc && i%2 == 1 && !last {
			continue
		}
		fw.WriteAt(chunk, off)
	}
	fw.Close()
	out := fixture.CreateFile(t, "vmcore")
	if err := Unflatten(&stream, out); err != nil {
		t.Fatal(err)
	}
	kf, err := OpenFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	if kf.Size() != int64(len(good)) || kf.Incomplete() {
		t.Fatalf("size %d, incomplete %v", kf.Size(), kf.Incomplete())
	}
	var d *Damage
	if err := kf.Check(); !errors.As(err, &d) || d.InHoles == 0 || d.Beyond != 0 {
		t.Fatalf("Check = %v", err)
	} else {
		t.Log(err)
	}
	var pe *PageError
	if err := kf.Verify(); !errors.As(err, &pe) {
		t.Fatalf("Verify = %v", err)
	} else if pe.PFN > d.FirstPFN {
		t.Errorf("Verify names pfn %#x, Check %#x", pe.PFN, d.FirstPFN)
	}
}

// TestPageDescPFN maps descriptor numbers back to pfns.
func TestPageDescPFN(t *testing.T) {
	good := smallDump(t, 1024, codec.Zlib, 20000)
	kf, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	i := uint64(0)
	for pfn := range kf.DumpedPFNs() {
		got, err := kf.pfnOfDesc(i)
		if err != nil || got != pfn {
			t.Fatalf("descriptor %d: pfn %#x, %v; want %#x", i, got, err, pfn)
		}
		i++
	}
}

// TestCheckSparseCopy: a copy that made holes of zero data (cp
// --sparse=always) is whole: the shared zero page of an uncompressed dump
// in a hole is no damage. A compressed page in a hole is.
func TestCheckSparseCopy(t *testing.T) {
	good := smallDump(t, 4096, codec.None, 200)
	f := fixture.CreateFile(t, "vmcore")
	if _, err := f.Write(good); err != nil {
		t.Fatal(err)
	}
	kf, err := OpenFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	zero, ok, err := kf.PageDesc(14) // every 7th page is zero
	if err != nil || !ok || zero.Flags != 0 {
		t.Fatalf("pfn 14: %+v %v %v", zero, ok, err)
	}
	punch := func(off, n int64) {
		t.Helper()
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
			fixture.Missing(t, "punch a hole (this file system cannot): %v", err)
		}
	}
	punch(zero.Offset, 4096)
	if err := kf.Check(); err != nil {
		t.Errorf("zero page in a hole: %v", err)
	}

	z := smallDump(t, 4096, codec.Zstd, 200)
	g := fixture.CreateFile(t, "vmcore.zst")
	g.Write(z)
	kz, err := OpenFile(g.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer kz.Close()
	d, _, _ := kz.PageDesc(11)
	if err := unix.Fallocate(int(g.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, d.Offset&^4095, 4096); err != nil {
		fixture.Missing(t, "punch a hole (this file system cannot): %v", err)
	}
	var dm *Damage
	if err := kz.Check(); !errors.As(err, &dm) || dm.InHoles == 0 || dm.FirstPFN > 11 {
		t.Errorf("compressed page in a hole: %v", err)
	}
}
