package diskdump

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// openView writes m, opens it and its ELF view as a vmcore.
func openView(t *testing.T, m synthMachine, c codec.Codec) (*File, *ELFView, *vmcore.File) {
	t.Helper()
	fh := fixture.CreateFile(t, "dump")
	if err := m.write(t, fh, c, 2); err != nil {
		t.Fatal(err)
	}
	return viewOf(t, fh)
}

// viewOf opens the kdump file fh and its ELF view as a vmcore.
func viewOf(t *testing.T, fh *os.File) (*File, *ELFView, *vmcore.File) {
	t.Helper()
	fi, _ := fh.Stat()
	kf, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	v, err := kf.ELFView()
	if err != nil {
		t.Fatal(err)
	}
	vf, err := vmcore.NewFile(v, v.Size())
	if err != nil {
		t.Fatal(err)
	}
	return kf, v, vf
}

// TestELFView reads synthetic dumps through their ELF views: the notes are
// the dump's, every dumped page reads as in the dump, every other pfn is
// a hole, and the RAM that follows a run of dumped pages is declared.
func TestELFView(t *testing.T) {
	for name, m := range synthMachines {
		t.Run(name, func(t *testing.T) {
			kf, v, vf := openView(t, m, codec.Zstd)
			if !bytes.Equal(vf.NoteData, kf.Header.Notes) || vf.VMCOREINFO == nil || len(vf.PRStatus) != 2 {
				t.Errorf("notes: %d bytes, want %d; VMCOREINFO %v, %d PRSTATUS", len(vf.NoteData), len(kf.Header.Notes), vf.VMCOREINFO != nil, len(vf.PRStatus))
			}
			if vf.Machine != kf.Machine || vf.PageSize != 4096 || vf.Missing != nil || len(vf.Warnings) > 0 {
				t.Errorf("machine %v page size %d missing %v warnings %q", vf.Machine, vf.PageSize, vf.Missing, vf.Warnings)
			}
			if len(vf.Segments) != v.Runs() || v.Segments() != v.Runs() {
				t.Errorf("%d PT_LOADs (%d) for %d runs: no kernel image to map", len(vf.Segments), v.Segments(), v.Runs())
			}
			got, want := make([]byte, 4096), make([]byte, 4096)
			var dumped, declared uint64
			for pfn := uint64(0); pfn < m.maxMapnr; pfn++ {
				_, err := vf.ReadPhys(got, pfn*4096)
				if !m.ram(pfn) || !m.dump(pfn) {
					if !errors.Is(err, vmcore.ErrHole) {
						t.Fatalf("pfn %#x, not dumped: %v", pfn, err)
					}
					continue
				}
				dumped++
				if err != nil {
					t.Fatalf("pfn %#x: %v", pfn, err)
				}
				m.page(pfn, want)
				if !bytes.Equal(got, want) {
					t.Fatalf("pfn %#x differs", pfn)
				}
			}
			for _, r := range vf.PhysRanges() {
				declared += (r.End - r.FileEnd) / 4096
				// Declared memory is RAM that was not dumped.
				for a := r.FileEnd; a < r.End; a += 4096 {
					if p := a / 4096; !m.ram(p) || m.dump(p) {
						t.Fatalf("pfn %#x declared: RAM %v dumped %v", p, m.ram(p), m.dump(p))
					}
				}
			}
			if dumped != kf.NumDumped() {
				t.Errorf("%d pages read, the dump holds %d", dumped, kf.NumDumped())
			}
			t.Logf("%d runs, %d pages, %d declared without data", v.Runs(), dumped, declared)
			// Reads across page boundaries and in small pieces.
			if dumped > 1 {
				s := vf.Segments[0]
				if s.FileSize >= 8192 {
					b := make([]byte, 100)
					full := make([]byte, 8192)
					vf.ReadPhys(full, s.PhysAddr)
					if _, err := vf.ReadPhys(b, s.PhysAddr+4096-50); err != nil || !bytes.Equal(b, full[4096-50:4096+50]) {
						t.Errorf("read across a page boundary: %v", err)
					}
				}
			}
		})
	}
}

// An incomplete dump's pages without data (makedumpfile leaves their
// descriptors zero) are missing in the view, not zero: a dump made from it
// lists them. (Our Writer points them at the shared zero page instead, for
// libkdumpfile; the view, as crash does, reads those as zeros, and the
// view is flagged incomplete as the dump is.)
// writeUncompressed writes m's dumped pages below pfn upTo, uncompressed,
// with header h, and returns the writer to close or abort.
func writeUncompressed(t *testing.T, m synthMachine, h Header, upTo uint64) (*Writer, *os.File) {
	t.Helper()
	fh := fixture.CreateFile(t, "dump")
	w, err := NewWriter(fh, h)
	if err != nil {
		t.Fatal(err)
	}
	ram, dump := m.bitmaps(0, m.maxMapnr)
	if err := w.SetBitmaps(0, ram, dump); err != nil {
		t.Fatal(err)
	}
	if err := w.StartPages(); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for pfn := uint64(0); pfn < upTo; pfn++ {
		if m.ram(pfn) && m.dump(pfn) {
			m.page(pfn, page)
			if err := w.WritePage(pfn, page, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w, fh
}

func TestELFViewIncomplete(t *testing.T) {
	m := synthMachines["all"]
	w, fh := writeUncompressed(t, m, testHeader(m.maxMapnr, codec.Zstd), 100)
	w.Abort(errors.New("disk full"))
	page := make([]byte, 4096)
	fi, _ := fh.Stat()
	kf, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !kf.Incomplete() {
		t.Fatal("not flagged incomplete")
	}
	// As makedumpfile leaves them: the descriptors after the last page
	// written are zero.
	if _, err := fh.WriteAt(make([]byte, (m.maxMapnr-100)*descSize), kf.lay.desc+100*descSize); err != nil {
		t.Fatal(err)
	}
	_, _, vf := viewOf(t, fh)
	if vf.Flags&vmcore.FlagIncomplete == 0 {
		t.Error("the view is not flagged incomplete")
	}
	if _, err := vf.ReadPhys(page, 99*4096); err != nil {
		t.Errorf("a written page: %v", err)
	}
	if _, err := vf.ReadPhys(page, 100*4096); err == nil {
		t.Error("a page never written reads")
	}
}

func TestELFViewRefuses(t *testing.T) {
	kf, _, _ := openView(t, synthMachines["holes"], codec.Zstd)
	kf.Header.Split = true
	if _, err := kf.ELFView(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("split: %v", err)
	}
	// Every other page dumped: more runs than program headers.
	m := synthMachine{maxMapnr: 2*maxViewRuns + 10, ram: func(uint64) bool { return true }, dump: func(p uint64) bool { return p%2 == 0 }}
	fh := fixture.CreateFile(t, "dump")
	if err := m.write(t, fh, codec.None, 64); err != nil {
		t.Fatal(err)
	}
	fi, _ := fh.Stat()
	kf, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kf.ELFView(); !errors.Is(err, ErrTooManyRuns) {
		t.Errorf("%d runs: %v", m.maxMapnr/2, err)
	}
}

// TestELFViewReal: a real vmcore saved at level 1, read through the view,
// gives back every page of the vmcore.
func TestELFViewReal(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a whole dump")
	}
	d := fixture.RealDump(t, "6.1")
	src := d.Open(t)
	fh := fixture.CreateFile(t, "dump")
	excl := func(pfn uint64) bool { return pfn >= 0x1000 && pfn < 0x3000 && (pfn/7)%3 == 0 }
	if _, _, err := writeDump(t, src, fh, dumpOpts{codec: codec.Zlib, dumpLevel: 1, exclude: excl, chunk: 4}); err != nil {
		t.Fatal(err)
	}
	kf, v, vf := viewOf(t, fh)
	got, want := make([]byte, 4096), make([]byte, 4096)
	var n, holes int
	for pfn := uint64(0); pfn < src.MaxPFN(); pfn++ {
		_, werr := src.ReadPhys(want, pfn*4096)
		_, gerr := vf.ReadPhys(got, pfn*4096)
		switch {
		case werr != nil || excl(pfn):
			if !errors.Is(gerr, vmcore.ErrHole) {
				t.Fatalf("pfn %#x: vmcore %v, view %v", pfn, werr, gerr)
			}
			holes++
		case gerr != nil || !bytes.Equal(got, want):
			t.Fatalf("pfn %#x: %v, or differs", pfn, gerr)
		default:
			n++
		}
	}
	if uint64(n) != kf.NumDumped() {
		t.Errorf("%d pages equal, the dump holds %d", n, kf.NumDumped())
	}
	t.Logf("%s: %d pages equal through %d PT_LOADs, %d holes", d.Name(), n, v.Runs(), holes)
}

// TestELFViewKernelText: with _stext and phys_base in VMCOREINFO (x86_64),
// the view maps the kernel image's virtual addresses too, as /proc/vmcore
// does, over the same file data: drgn needs it to find the page tables.
func TestELFViewKernelText(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		lo, hi     uint64 // _stext's physical address, phys_base + KERNEL_IMAGE_SIZE
		physBase   uint64
	}{
		{"phys_base 0", "SYMBOL(_stext)=ffffffff81000000\nNUMBER(phys_base)=0\nNUMBER(KERNEL_IMAGE_SIZE)=33554432\n", 0x1000000, 0x2000000, 0},
		// KASLR moved the kernel further in virtual than in physical
		// memory: phys_base is negative (a CI run's 6.1 guest had one).
		{"phys_base negative", "SYMBOL(_stext)=ffffffffa1000000\nNUMBER(phys_base)=-520093696\nNUMBER(KERNEL_IMAGE_SIZE)=1073741824\n", 0x2000000, 0x21000000, -520093696 & (1<<64 - 1)},
	} {
		t.Run(tc.name, func(t *testing.T) { testELFViewKernelText(t, tc.info, tc.lo, tc.hi, tc.physBase) })
	}
}

func testELFViewKernelText(t *testing.T, text0 string, lo, hi, pb uint64) {
	m := synthMachines["holes"]
	info := "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n" + text0
	le := binary.LittleEndian
	h := testHeader(m.maxMapnr, codec.Zstd)
	prs := fixture.PRStatus(le, elf.EM_X86_64, 1, nil)
	h.Notes = append(prs, fixture.VMCOREINFO(le, info)...)
	h.VMCOREINFOOffset, h.VMCOREINFOSize = int64(len(prs)+24), int64(len(info))
	w, fh := writeUncompressed(t, m, h, m.maxMapnr)
	page := make([]byte, 4096)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	kf, v, vf := viewOf(t, fh)
	var text uint64
	got := make([]byte, 4096)
	for _, s := range vf.Segments {
		if s.VirtAddr == 0 {
			continue
		}
		if s.VirtAddr != s.PhysAddr+0xffffffff80000000-pb || s.PhysAddr < lo || s.PhysAddr+s.MemSize > hi || s.FileSize != s.MemSize {
			t.Fatalf("kernel text segment %+v", s)
		}
		for a := s.PhysAddr; a < s.PhysAddr+s.FileSize; a += 4096 {
			if _, err := vf.ReaderAt().ReadAt(got, int64(s.Offset+a-s.PhysAddr)); err != nil {
				t.Fatal(err)
			}
			m.page(a/4096, page)
			if !bytes.Equal(got, page) {
				t.Fatalf("kernel text at physical %#x is not the page's data", a)
			}
		}
		text += s.FileSize / 4096
	}
	var want uint64
	for pfn := lo / 4096; pfn < hi/4096; pfn++ {
		if m.ram(pfn) && m.dump(pfn) {
			want++
		}
	}
	if text == 0 || text != want || v.Segments() <= v.Runs() {
		t.Errorf("%d pages mapped as kernel text, want %d (%d segments, %d runs)", text, want, v.Segments(), v.Runs())
	}
	// The pages are counted once.
	var stored uint64
	for _, r := range vf.PhysRanges() {
		stored += (r.FileEnd - r.Start) / 4096
	}
	if stored != kf.NumDumped() {
		t.Errorf("%d pages stored, the dump holds %d", stored, kf.NumDumped())
	}
}
