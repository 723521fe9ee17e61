package vmcore

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Real dumps: ELF /proc/vmcore copies of QEMU crashes of Debian kernels
// (1 GiB guests), kept out of the repository. The .id file beside each
// holds the run id of the markers its guest wrote.
var realDumps = []struct {
	name    string
	release string
}{
	{"6.1.0-56-cloud-amd64-nvme-1024M.elf", "6.1.0-56-cloud-amd64"},
	{"6.12.117+deb12-cloud-amd64-nvme-1024M.elf", "6.12.117+deb12-cloud-amd64"},
}

func realDumpPath(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", ".cache", "vmcores", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real dump not present: %v", err)
	}
	return p
}

func realDumpID(t *testing.T, path string) string {
	t.Helper()
	id, err := os.ReadFile(path + ".id")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(id))
}

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

func TestRealDumps(t *testing.T) {
	for _, rd := range realDumps {
		t.Run(rd.release, func(t *testing.T) {
			path := realDumpPath(t, rd.name)
			id := realDumpID(t, path)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.VMCOREINFO == nil {
				t.Fatal("no VMCOREINFO")
			}
			if got := f.VMCOREINFO.OSRelease(); got != rd.release {
				t.Errorf("OSRELEASE = %q, want %q", got, rd.release)
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
			ranges := f.PhysRanges()
			if len(ranges) != 2 || ranges[0].Start != 0x100000 {
				t.Errorf("PhysRanges %+v", ranges)
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
			marker := []byte("GOKDUMP-KMSG-" + id + "-000000")
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
}

// TestRealDumpWindowVsPread compares the mmap window reader Open uses
// with pread through a plain *os.File, at random addresses and across
// window boundaries.
func TestRealDumpWindowVsPread(t *testing.T) {
	for _, rd := range realDumps {
		t.Run(rd.release, func(t *testing.T) {
			path := realDumpPath(t, rd.name)
			mf, err := OpenMapped(path)
			if err != nil {
				t.Fatal(err)
			}
			defer mf.Close()
			if _, ok := mf.ReaderAt().(*windowReader); !ok {
				t.Skipf("Open did not map the file (%T)", mf.ReaderAt())
			}
			fh, err := os.Open(path)
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
}

func TestWindowReaderSmallWindows(t *testing.T) {
	// A window of a few pages forces remapping on almost every read.
	b := x86Core().build()
	path := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(path, b.data, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWindowReader(fh, int64(len(b.data)), 3*4096)
	if err != nil {
		t.Skipf("cannot map: %v", err)
	}
	defer w.Close()
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 500; i++ {
		off := rng.Int63n(int64(len(b.data)))
		n := 1 + rng.Intn(5*4096)
		p := make([]byte, n)
		got, err := w.ReadAt(p, off)
		want := min(n, len(b.data)-int(off))
		if got != want || (want < n) != (err == io.EOF) || (want == n && err != nil) {
			t.Fatalf("ReadAt(%d, %#x) = %d, %v; want %d", n, off, got, err, want)
		}
		if !bytes.Equal(p[:got], b.data[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d, %#x): wrong bytes", n, off)
		}
	}
	if _, err := w.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	if n, err := w.ReadAt(make([]byte, 1), int64(len(b.data))); n != 0 || err != io.EOF {
		t.Errorf("read at EOF: %d, %v", n, err)
	}
}
