package diskdump

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/internal/fixture"
)

// fullDisk is a file on a disk with room for limit bytes: blocks are
// allocated on first write (or by Preallocate), and a write that needs a
// block past the limit writes what fits and fails with ENOSPC.
type fullDisk struct {
	f      *os.File
	limit  int64
	used   int64
	alloc  map[int64]bool
	failed bool // an ENOSPC was returned
}

const diskBlock = 4096

func newFullDisk(f *os.File, limit int64) *fullDisk {
	return &fullDisk{f: f, limit: limit, alloc: map[int64]bool{}}
}

// room returns how many bytes from off can be written without a new
// block past the limit.
func (d *fullDisk) room(off, n int64) int64 {
	for b := off / diskBlock * diskBlock; b < off+n; b += diskBlock {
		if d.alloc[b] {
			continue
		}
		if d.used+diskBlock > d.limit {
			return max(b-off, 0)
		}
		d.alloc[b] = true
		d.used += diskBlock
	}
	return n
}

func (d *fullDisk) WriteAt(p []byte, off int64) (int, error) {
	n := d.room(off, int64(len(p)))
	m, err := d.f.WriteAt(p[:n], off)
	if err == nil && m < len(p) {
		d.failed = true
		err = syscall.ENOSPC
	}
	return m, err
}

func (d *fullDisk) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

func (d *fullDisk) Preallocate(off, size int64) error {
	if d.room(off, size) < size {
		d.failed = true
		return syscall.ENOSPC
	}
	return nil
}

// checkIncomplete opens an aborted dump and checks each dumped page is
// either the source's or, without a descriptor, zeros. It returns how
// many pages kept their data.
func checkIncomplete(t *testing.T, path string, source func(pfn uint64, p []byte)) (kept, lost int) {
	t.Helper()
	kf, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	if !kf.Incomplete() {
		t.Fatal("aborted dump not flagged incomplete")
	}
	got, want := make([]byte, kf.PageSize()), make([]byte, kf.PageSize())
	zero := make([]byte, kf.PageSize())
	lastKept := uint64(0)
	for pfn, err := range kf.DumpedPFNs() {
		if err != nil {
			t.Fatal(err)
		}
		if err := kf.ReadPage(pfn, got); err != nil {
			t.Fatalf("ReadPage(%#x) in an incomplete dump: %v", pfn, err)
		}
		d, ok, err := kf.PageDesc(pfn)
		if err != nil {
			t.Fatal(err)
		}
		source(pfn, want)
		// A lost page has no descriptor, or (once Abort could write
		// them) one naming the shared zero page, so drgn can read past it.
		if !ok || d.Offset == 0 || (bytes.Equal(got, zero) && !bytes.Equal(want, zero)) {
			lost++
			if !bytes.Equal(got, zero) {
				t.Fatalf("pfn %#x without data does not read as zeros", pfn)
			}
			if ok && d.Offset != 0 && (d.Size != uint32(kf.PageSize()) || d.Flags != 0) {
				t.Fatalf("pfn %#x lost, but its descriptor names data: %+v", pfn, d)
			}
			continue
		}
		if lost > 0 && d.Offset != 0 {
			// Only the zero page may be kept after the cut.
			if src := (PageDesc{Offset: d.Offset, Size: d.Size}); src.Size != uint32(kf.PageSize()) || d.Flags != 0 {
				t.Fatalf("pfn %#x has data after pfn %#x lost its own", pfn, lastKept)
			}
		}
		kept++
		lastKept = pfn
		if !bytes.Equal(got, want) {
			t.Fatalf("pfn %#x kept in the incomplete dump differs", pfn)
		}
	}
	return kept, lost
}

// TestIncompleteSynthetic fills the disk at different points: during the
// bitmaps, the descriptor reservation, and the page data.
func TestIncompleteSynthetic(t *testing.T) {
	m := synthMachines["holes"]
	// Size of the complete dump, to place the limits.
	fh := fixture.CreateFile(t, "full")
	if err := m.write(t, fh, codec.Zstd, 1); err != nil {
		t.Fatal(err)
	}
	fi, _ := fh.Stat()
	full := fi.Size()
	hdr := testHeader(m.maxMapnr, codec.Zstd)
	bitmapsEnd := newLayout(4096, int64(len(hdr.Notes)), m.maxMapnr).desc
	for _, limit := range []int64{2 * 4096, bitmapsEnd, bitmapsEnd + 8192, full / 3, full / 2, full - 64<<10} {
		fh := fixture.CreateFile(t, "dump")
		disk := newFullDisk(fh, limit)
		w, werr := writeUntilFull(t, m, disk)
		if !errors.Is(werr, syscall.ENOSPC) {
			t.Fatalf("limit %d: write error %v, want ENOSPC", limit, werr)
		}
		if err := w.Abort(werr); err != nil {
			t.Fatalf("limit %d: Abort: %v", limit, err)
		}
		if limit < bitmapsEnd {
			// Cut in the bitmaps: no page can be found; Open says so.
			if _, err := OpenFile(fh.Name()); !errors.Is(err, ErrCorrupt) {
				t.Errorf("limit %d: Open of a dump cut in its bitmaps: %v", limit, err)
			}
			continue
		}
		kept, lost := checkIncomplete(t, fh.Name(), func(pfn uint64, p []byte) { m.page(pfn, p) })
		t.Logf("limit %d of %d: %d pages kept, %d lost", limit, full, kept, lost)
		if lost == 0 {
			t.Errorf("limit %d: no page lost", limit)
		}
		if limit >= full/3 && kept < lost/3 {
			t.Errorf("limit %d: only %d pages kept", limit, kept)
		}
	}
}

// writeUntilFull runs the synthetic dump on disk and returns the Writer
// and the first error, for the caller to Abort.
func writeUntilFull(t *testing.T, m synthMachine, disk *fullDisk) (*Writer, error) {
	w, err := NewWriter(disk, testHeader(m.maxMapnr, codec.Zstd))
	if err != nil {
		return nil, err
	}
	per := uint64(8 * 4096)
	for start := uint64(0); start < m.maxMapnr; start += per {
		ram, dump := m.bitmaps(start, min(per, m.maxMapnr-start))
		if err := w.SetBitmaps(start, ram, dump); err != nil {
			return w, err
		}
	}
	if err := w.StartPages(); err != nil {
		return w, err
	}
	comp, _ := codec.NewCompressor(codec.Zstd, 4096)
	page := make([]byte, 4096)
	for pfn := uint64(0); pfn < m.maxMapnr; pfn++ {
		if !m.ram(pfn) || !m.dump(pfn) {
			continue
		}
		m.page(pfn, page)
		if pfn%7 == 0 {
			err = w.WriteZeroPage(pfn)
		} else if out, ok := comp.Compress(nil, page); ok {
			err = w.WritePage(pfn, out, comp.Flag())
		} else {
			err = w.WritePage(pfn, page, 0)
		}
		if err != nil {
			return w, err
		}
	}
	return w, w.Close()
}

// TestHeaderIncompleteUntilClose checks a dump cut short before Close
// (the machine lost power) reads as incomplete.
func TestHeaderIncompleteUntilClose(t *testing.T) {
	fh := fixture.CreateFile(t, "dump")
	w, err := NewWriter(fh, testHeader(1000, codec.Zstd))
	if err != nil {
		t.Fatal(err)
	}
	ram := bytes.Repeat([]byte{0xff}, 125)
	if err := w.SetBitmaps(0, ram, ram); err != nil {
		t.Fatal(err)
	}
	if err := w.StartPages(); err != nil {
		t.Fatal(err)
	}
	for pfn := uint64(0); pfn < 10; pfn++ {
		w.WriteZeroPage(pfn)
	}
	fi, _ := fh.Stat()
	kf, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !kf.Incomplete() {
		t.Error("header not incomplete before Close")
	}
	// Nothing flushed yet: every page reads as zeros, none fails.
	p := make([]byte, 4096)
	for pfn := uint64(0); pfn < 1000; pfn++ {
		if err := kf.ReadPage(pfn, p); err != nil {
			t.Fatalf("pfn %d: %v", pfn, err)
		}
	}
}

// TestIncompleteReal fills the disk while dumping the real 6.1 vmcore
// past the kernel image, then checks our reader and drgn.
func TestIncompleteReal(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a whole dump")
	}
	d := fixture.RealDump(t, "6.1")
	src := d.Open(t)
	// Where the kernel image ends in the file decides the limit: keep
	// it, lose the rest.
	fh := fixture.CreateFile(t, "full")
	if _, _, err := writeDump(t, src, fh, dumpOpts{codec: codec.Zstd, dumpLevel: 1, chunk: 4}); err != nil {
		t.Fatal(err)
	}
	fi, _ := fh.Stat()
	kf, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	var kernelEnd uint64
	for _, s := range src.Segments {
		if s.VirtAddr >= kmem.X86StartKernelMap {
			kernelEnd = (s.PhysAddr + s.MemSize) / 4096
		}
	}
	var limit int64
	for pfn := kernelEnd; pfn < kf.MaxPFN(); pfn++ {
		if d, ok, _ := kf.PageDesc(pfn); ok && d.Offset > limit && d.Size < 4096 {
			limit = d.Offset + 1<<20
			break
		}
	}
	if limit == 0 || limit >= fi.Size() {
		t.Fatalf("no cut point after the kernel image (pfn %#x)", kernelEnd)
	}

	out := fixture.CreateFile(t, "incomplete")
	disk := newFullDisk(out, limit)
	w, st, err := writeDump(t, src, disk, dumpOpts{codec: codec.Zstd, dumpLevel: 1, chunk: 4})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write error %v, want ENOSPC", err)
	}
	if err := w.Abort(err); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	kept, lost := checkIncomplete(t, out.Name(), func(pfn uint64, p []byte) {
		if _, err := src.ReadPhys(p, pfn*4096); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("disk of %d MiB (full dump %d MiB): %d pages kept, %d lost, %d written before ENOSPC",
		limit>>20, fi.Size()>>20, kept, lost, st.pages)
	if kept == 0 || lost == 0 {
		t.Errorf("%d kept, %d lost", kept, lost)
	}
	runDrgn(t, out.Name(), d, false)
}
