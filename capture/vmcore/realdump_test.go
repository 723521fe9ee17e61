package vmcore_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"math/rand"
	"os"
	"testing"

	. "github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// scanFile returns the file offsets where marker occurs, at most max.
func scanFile(t *testing.T, path string, marker []byte, max int) []int64 {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	const chunk = 8 << 20
	buf := make([]byte, chunk+len(marker))
	var hits []int64
	for off := int64(0); ; off += chunk {
		n, err := fh.ReadAt(buf, off)
		b := buf[:n]
		for i := 0; ; {
			j := bytes.Index(b[i:], marker)
			if j < 0 {
				break
			}
			// A hit in the overlap is found again by the next chunk.
			if i+j < chunk {
				hits = append(hits, off+int64(i+j))
				if len(hits) == max {
					return hits
				}
			}
			i += j + 1
		}
		if err == io.EOF || n < len(buf) {
			return hits
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// physOf maps a file offset back to a physical address through the
// PT_LOADs.
func physOf(f *File, off int64) (uint64, bool) {
	for _, s := range f.Segments {
		if uint64(off) >= s.Offset && uint64(off) < s.Offset+s.FileSize {
			return s.PhysAddr + uint64(off) - s.Offset, true
		}
	}
	return 0, false
}

// TestRealDumps reads each real dump (see fixture.RealDumps): the
// headers as the harness's guests make them, and the kernel log marker
// read back by physical address.
func TestRealDumps(t *testing.T) {
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		path := d.Path
		f := d.Open(t)
		if f.VMCOREINFO == nil {
			t.Fatal("no VMCOREINFO")
		}
		if got := f.VMCOREINFO.OSRelease(); got != d.KVer {
			t.Errorf("OSRELEASE = %q, want %q", got, d.KVer)
		}
		if f.Machine != elf.EM_X86_64 || f.PageSize != 4096 || f.Flags != 0 {
			t.Errorf("machine %v page size %d flags %#x", f.Machine, f.PageSize, f.Flags)
		}
		// The guests ran with one CPU.
		if len(f.PRStatus) != 1 {
			t.Fatalf("%d PRSTATUS notes, want 1", len(f.PRStatus))
		}
		pc, _ := f.PRStatus[0].PC(f.Machine)
		sp, _ := f.PRStatus[0].SP(f.Machine)
		if pc < 0xffffffff80000000 || sp < 0xffff800000000000 {
			t.Errorf("rip %#x rsp %#x: not kernel addresses", pc, sp)
		}
		// The kernel's layout: text first, then two RAM ranges (the
		// crashkernel reservation between them is not dumped).
		if len(f.Segments) != 3 || f.Segments[0].VirtAddr < 0xffffffff80000000 {
			t.Errorf("segments %+v", f.Segments)
		}
		// RAM from 1 MiB, with the 128 MiB crashkernel= reservation left
		// out somewhere (6.19 also cuts RAM at a reserved boundary, so
		// the number of ranges varies with the kernel).
		ranges := f.PhysRanges()
		gap := false
		for i := 1; i < len(ranges); i++ {
			if ranges[i].Start < ranges[i-1].End {
				t.Errorf("PhysRanges %+v overlap", ranges)
			}
			gap = gap || ranges[i].Start-ranges[i-1].End >= 128<<20
		}
		if len(ranges) < 2 || ranges[0].Start != 0x100000 || !gap {
			t.Errorf("PhysRanges %+v: want RAM from 1 MiB and a 128 MiB gap", ranges)
		}
		for _, r := range ranges {
			if r.FileEnd != r.End {
				t.Errorf("range %+v not fully stored", r)
			}
		}
		if got, want := f.MaxPFN(), ranges[len(ranges)-1].End/4096; got != want {
			t.Errorf("MaxPFN = %#x, want %#x", got, want)
		}

		// The printk ring holds the marker the guest logged: find it in
		// the file, then read its page by physical address.
		marker := []byte(d.Marker("KMSG", 0))
		hits := scanFile(t, path, marker, 4)
		if len(hits) == 0 {
			t.Fatalf("marker %s not in the dump", marker)
		}
		for _, off := range hits {
			pa, ok := physOf(f, off)
			if !ok {
				t.Errorf("marker at file offset %#x is in no PT_LOAD", off)
				continue
			}
			page := make([]byte, f.PageSize)
			base := pa &^ uint64(f.PageSize-1)
			if _, err := f.ReadPhys(page, base); err != nil {
				t.Fatalf("ReadPhys(%#x): %v", base, err)
			}
			if !bytes.Contains(page, marker) {
				t.Errorf("page at physical %#x (file %#x) lacks the marker", base, off)
			}
		}
	})
}

// TestRealDumpWindowVsPread compares the mmap window reader Open uses
// with pread through a plain *os.File, at random addresses and across
// window boundaries.
func TestRealDumpWindowVsPread(t *testing.T) {
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		mf, err := OpenMapped(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer mf.Close()
		if mf.Viewable(mf.PhysRanges()[0].Start) == 0 {
			t.Skipf("OpenMapped did not map the file (%T)", mf.ReaderAt())
		}
		fh, err := os.Open(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		pf, err := NewFile(fh, mf.Size())
		if err != nil {
			t.Fatal(err)
		}
		if len(pf.Segments) != len(mf.Segments) || !bytes.Equal(pf.NoteData, mf.NoteData) {
			t.Fatal("headers differ between readers")
		}
		type read struct {
			addr uint64
			n    int
		}
		var reads []read
		// Reads that straddle each window boundary inside the data.
		for off := int64(DefaultWindow); off < mf.Size(); off += DefaultWindow {
			if pa, ok := physOf(mf, off-1000); ok {
				reads = append(reads, read{pa, 3000})
			}
		}
		rng := rand.New(rand.NewSource(1))
		ranges := mf.PhysRanges()
		for i := 0; i < 2000; i++ {
			r := ranges[rng.Intn(len(ranges))]
			n := 1 + rng.Intn(3*DefaultWindow/2)
			if i%50 != 0 {
				n = 1 + rng.Intn(20000)
			}
			span := r.FileEnd - r.Start
			if uint64(n) > span {
				n = int(span)
			}
			reads = append(reads, read{r.Start + uint64(rng.Int63n(int64(span-uint64(n)+1))), n})
		}
		a := make([]byte, 3*DefaultWindow/2)
		b := make([]byte, len(a))
		for _, rd := range reads {
			na, erra := mf.ReadPhys(a[:rd.n], rd.addr)
			nb, errb := pf.ReadPhys(b[:rd.n], rd.addr)
			if erra != nil || errb != nil || na != rd.n || nb != rd.n {
				t.Fatalf("ReadPhys(%#x, %d): mmap %d, %v; pread %d, %v", rd.addr, rd.n, na, erra, nb, errb)
			}
			if !bytes.Equal(a[:rd.n], b[:rd.n]) {
				t.Fatalf("ReadPhys(%#x, %d): readers differ", rd.addr, rd.n)
			}
		}
		// Both report the same hole.
		end := ranges[len(ranges)-1].End
		if _, err := mf.ReadPhys(a[:8], end); !errors.Is(err, ErrHole) {
			t.Errorf("mmap reader past the end: %v", err)
		}
	})
}
