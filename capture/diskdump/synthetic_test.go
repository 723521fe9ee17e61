package diskdump

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/internal/fixture"
)

const testVMCOREINFO = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nCRASHTIME=1795782722\nNUMBER(phys_base)=450887680\n"

// testHeader returns a Header like a small x86_64 machine's, with two
// CPUs' NT_PRSTATUS notes and a VMCOREINFO note.
func testHeader(maxMapnr uint64, c codec.Codec) Header {
	le := binary.LittleEndian
	prs := fixture.PRStatus(le, elf.EM_X86_64, 1, nil)
	notes := append(prs, prs...)
	viOff := len(notes) + 12 + 12 // header and "VMCOREINFO\0" padded to 12
	notes = append(notes, fixture.VMCOREINFO(le, testVMCOREINFO)...)
	return Header{
		Sysname: "Linux", Nodename: "(none)", Release: "6.1.0-test", Version: "#1 SMP test",
		Machine: "x86_64", Domainname: "(none)",
		Timestamp: time.Unix(1795782722, 0),
		Status:    c.Flag(),
		BlockSize: 4096, MaxMapnr: maxMapnr, NrCPUs: 2, PhysBase: 450887680, DumpLevel: 1,
		Notes: notes, VMCOREINFOOffset: int64(viOff), VMCOREINFOSize: int64(len(testVMCOREINFO)),
	}
}

// synthMachine is a fake machine's memory: RAM ranges, page contents
// derived from the pfn, some zero pages.
type synthMachine struct {
	maxMapnr uint64
	ram      func(pfn uint64) bool
	dump     func(pfn uint64) bool
}

func (m synthMachine) page(pfn uint64, p []byte) {
	switch {
	case pfn%7 == 0:
		fixture.Zero(pfn, p)
	case pfn%5 == 0:
		fixture.Random(pfn, p) // incompressible: stored raw
	default:
		for i := 0; i < len(p); i += 8 {
			binary.LittleEndian.PutUint64(p[i:], pfn*0x9e3779b97f4a7c15^uint64(i/64))
		}
	}
}

func (m synthMachine) bitmaps(start, n uint64) (ram, dump []byte) {
	ram, dump = make([]byte, (n+7)/8), make([]byte, (n+7)/8)
	for i := uint64(0); i < n && start+i < m.maxMapnr; i++ {
		if m.ram(start + i) {
			ram[i/8] |= 1 << (i % 8)
			if m.dump(start + i) {
				dump[i/8] |= 1 << (i % 8)
			}
		}
	}
	return ram, dump
}

// write dumps the machine with SetBitmaps chunks of chunkBlocks blocks.
func (m synthMachine) write(t testing.TB, out interface {
	WriteAt([]byte, int64) (int, error)
}, c codec.Codec, chunkBlocks int) error {
	t.Helper()
	w, err := NewWriter(out, testHeader(m.maxMapnr, c))
	if err != nil {
		return err
	}
	per := uint64(chunkBlocks) * 8 * 4096
	for start := uint64(0); start < m.maxMapnr; start += per {
		n := min(per, m.maxMapnr-start)
		ram, dump := m.bitmaps(start, n)
		if err := w.SetBitmaps(start, ram, dump); err != nil {
			return err
		}
	}
	if err := w.StartPages(); err != nil {
		return err
	}
	comp, _ := codec.NewCompressor(c, 4096)
	page := make([]byte, 4096)
	for pfn := uint64(0); pfn < m.maxMapnr; pfn++ {
		if !m.ram(pfn) || !m.dump(pfn) {
			continue
		}
		m.page(pfn, page)
		if pfn%7 == 0 {
			if err := w.WriteZeroPage(pfn); err != nil {
				return err
			}
			continue
		}
		if out, ok := comp.Compress(nil, page); ok {
			err = w.WritePage(pfn, out, comp.Flag())
		} else {
			err = w.WritePage(pfn, page, 0)
		}
		if err != nil {
			return err
		}
	}
	return w.Close()
}

// check reads the file back: header, bitmaps bit by bit, every page.
func (m synthMachine) check(t testing.TB, kf *File, c codec.Codec) {
	t.Helper()
	if kf.MaxPFN() != m.maxMapnr || kf.Incomplete() || kf.Header.Compression() != c {
		t.Fatalf("max_mapnr %#x incomplete %v compression %v", kf.MaxPFN(), kf.Incomplete(), kf.Header.Compression())
	}
	want := testHeader(m.maxMapnr, c)
	h := kf.Header
	if h.Sysname != want.Sysname || h.Release != want.Release || h.Version != want.Version || h.Machine != want.Machine ||
		h.Nodename != want.Nodename || h.Domainname != want.Domainname || !h.Timestamp.Equal(want.Timestamp) ||
		h.PhysBase != want.PhysBase || h.NrCPUs != 2 || h.DumpLevel != 1 || h.HeaderVersion != 6 ||
		!bytes.Equal(h.Notes, want.Notes) || h.VMCOREINFOOffset != want.VMCOREINFOOffset || h.VMCOREINFOSize != want.VMCOREINFOSize {
		t.Errorf("header read back %+v", h)
	}
	if kf.VMCOREINFO == nil || kf.VMCOREINFO.OSRelease() != "6.1.0-test" || len(kf.PRStatus) != 2 {
		t.Errorf("notes: VMCOREINFO %v, %d PRSTATUS", kf.VMCOREINFO, len(kf.PRStatus))
	}
	page, got := make([]byte, 4096), make([]byte, 4096)
	var dumped uint64
	next, stop := iterPull(kf)
	defer stop()
	for pfn := uint64(0); pfn < m.maxMapnr+100; pfn++ {
		ram := pfn < m.maxMapnr && m.ram(pfn)
		dump := ram && m.dump(pfn)
		if kf.IsRAM(pfn) != ram || kf.IsDumpable(pfn) != dump {
			t.Fatalf("pfn %#x: IsRAM %v IsDumpable %v, want %v %v", pfn, kf.IsRAM(pfn), kf.IsDumpable(pfn), ram, dump)
		}
		err := kf.ReadPage(pfn, got)
		if !dump {
			if !errors.Is(err, ErrHole) || errors.Is(err, ErrExcluded) != ram {
				t.Fatalf("pfn %#x not dumped: ReadPage error %v", pfn, err)
			}
			continue
		}
		dumped++
		if err != nil {
			t.Fatalf("ReadPage(%#x): %v", pfn, err)
		}
		m.page(pfn, page)
		if !bytes.Equal(got, page) {
			t.Fatalf("pfn %#x differs", pfn)
		}
		if p, ok := next(); !ok || p != pfn {
			t.Fatalf("DumpedPFNs gave %#x (%v), want %#x", p, ok, pfn)
		}
	}
	if _, ok := next(); ok {
		t.Error("DumpedPFNs yields more pfns than dumped")
	}
	if kf.NumDumped() != dumped {
		t.Errorf("NumDumped %d, want %d", kf.NumDumped(), dumped)
	}
}

func iterPull(kf *File) (func() (uint64, bool), func()) {
	next, stop := iter.Pull2(kf.DumpedPFNs())
	return func() (uint64, bool) {
		p, err, ok := next()
		return p, ok && err == nil
	}, stop
}

// patterns of RAM and exclusion, including holes across bitmap blocks
// and max_mapnr values that end mid-byte and mid-block.
var synthMachines = map[string]synthMachine{
	"all": {maxMapnr: 40000,
		ram:  func(uint64) bool { return true },
		dump: func(uint64) bool { return true }},
	"holes": {maxMapnr: 100003,
		ram:  func(p uint64) bool { return p >= 256 && (p < 20000 || (p >= 65536+17 && p < 90000)) },
		dump: func(p uint64) bool { return p%3 != 0 && (p/1000)%4 != 1 }},
	"sparse": {maxMapnr: 3 * 32768,
		ram:  func(p uint64) bool { return p%2 == 0 },
		dump: func(p uint64) bool { return p%97 == 0 || p == 3*32768-2 }},
	"nothing dumped": {maxMapnr: 40000,
		ram:  func(p uint64) bool { return p < 30000 },
		dump: func(uint64) bool { return false }},
}

func TestSynthetic(t *testing.T) {
	type variant struct {
		c     codec.Codec
		chunk int
	}
	for name, m := range synthMachines {
		vs := []variant{{codec.Zstd, 1}, {codec.Snappy, 2}, {codec.None, 64}}
		if name == "holes" {
			vs = append(vs, variant{codec.Zlib, 3}, variant{codec.Zstd, 64})
		}
		for _, v := range vs {
			c, chunk := v.c, v.chunk
			{
				t.Run(fmt.Sprintf("%s/%v/chunk%d", name, c, chunk), func(t *testing.T) {
					fh := fixture.CreateFile(t, "dump")
					if err := m.write(t, fh, c, chunk); err != nil {
						t.Fatal(err)
					}
					fi, _ := fh.Stat()
					kf, err := Open(fh, fi.Size())
					if err != nil {
						t.Fatal(err)
					}
					m.check(t, kf, c)
					// The bitmaps on disk equal what was given, byte for byte.
					ram, dump := m.bitmaps(0, m.maxMapnr)
					gotRAM := make([]byte, len(ram))
					gotDump := make([]byte, len(dump))
					fh.ReadAt(gotRAM, kf.lay.bitmap1)
					fh.ReadAt(gotDump, kf.lay.bitmap2)
					if !bytes.Equal(gotRAM, ram) || !bytes.Equal(gotDump, dump) {
						t.Error("bitmaps on disk differ from those given")
					}
				})
			}
		}
	}
}

// TestLayout checks the file's structure against the format: header
// fields at their offsets, sub-header and notes, data right after the
// descriptors, the shared zero page first.
func TestLayout(t *testing.T) {
	m := synthMachines["holes"]
	fh := fixture.CreateFile(t, "dump")
	if err := m.write(t, fh, codec.Zlib, 1); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fh.Name())
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	hdr := testHeader(m.maxMapnr, codec.Zlib)
	u32 := func(off int) uint32 { return le.Uint32(b[off:]) }
	u64 := func(off int) uint64 { return le.Uint64(b[off:]) }
	bitmapLen := uint32((m.maxMapnr + 7) / 8)
	bitmapLen = (bitmapLen + 4095) &^ 4095
	subBlocks := uint32((104 + len(hdr.Notes) + 4095) / 4096)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"header_version", uint64(u32(8)), 6},
		{"tv_sec", u64(408), 1795782722},
		{"tv_usec", u64(416), 0},
		{"status", uint64(u32(424)), 1},
		{"block_size", uint64(u32(428)), 4096},
		{"sub_hdr_size", uint64(u32(432)), uint64(subBlocks)},
		{"bitmap_blocks", uint64(u32(436)), uint64(2 * bitmapLen / 4096)},
		{"max_mapnr", uint64(u32(440)), m.maxMapnr},
		{"nr_cpus", uint64(u32(460)), 2},
		{"phys_base", u64(4096 + 0), 450887680},
		{"dump_level", uint64(u32(4096 + 8)), 1},
		{"split", uint64(u32(4096 + 12)), 0},
		{"offset_vmcoreinfo", u64(4096 + 32), uint64(4096 + 104 + hdr.VMCOREINFOOffset)},
		{"size_vmcoreinfo", u64(4096 + 40), uint64(len(testVMCOREINFO))},
		{"offset_note", u64(4096 + 48), 4096 + 104},
		{"size_note", u64(4096 + 56), uint64(len(hdr.Notes))},
		{"max_mapnr_64", u64(4096 + 96), m.maxMapnr},
	} {
		if f.got != f.want {
			t.Errorf("%s = %d, want %d", f.name, f.got, f.want)
		}
	}
	if string(b[:8]) != "KDUMP   " || cstring(b[12:77]) != "Linux" || cstring(b[12+4*65:12+5*65]) != "x86_64" {
		t.Errorf("signature or utsname wrong: %q", b[:80])
	}
	if !bytes.Equal(b[4096+104:4096+104+len(hdr.Notes)], hdr.Notes) {
		t.Error("notes not copied after the sub-header")
	}
	vi := 4096 + 104 + hdr.VMCOREINFOOffset
	if string(b[vi:vi+int64(len(testVMCOREINFO))]) != testVMCOREINFO {
		t.Error("offset_vmcoreinfo does not point at VMCOREINFO")
	}
	// Descriptors: the first dumped pfn (256, pfn%7 != 0? 256%7 = 4) and
	// the first zero page, which points at the shared zero page at the
	// start of the data.
	descOff := int64(1+subBlocks)*4096 + 2*int64(bitmapLen)
	var ndesc int64
	for p := uint64(0); p < m.maxMapnr; p++ {
		if m.ram(p) && m.dump(p) {
			ndesc++
		}
	}
	dataOff := descOff + ndesc*24
	zeroPage := bytes.Repeat([]byte{0}, 4096)
	if !bytes.Equal(b[dataOff:dataOff+4096], zeroPage) {
		t.Error("data does not start with the zero page")
	}
	i := int64(0)
	for p := uint64(0); p < m.maxMapnr && i < 200; p++ {
		if !m.ram(p) || !m.dump(p) {
			continue
		}
		d := getDesc(b[descOff+i*24:])
		if p%7 == 0 {
			if d != (PageDesc{Offset: dataOff, Size: 4096}) {
				t.Errorf("zero pfn %#x: descriptor %+v", p, d)
			}
		} else if d.Offset < dataOff+4096 || d.Size == 0 || d.Size > 4096 || (d.Flags != 0 && d.Flags != 1) {
			t.Errorf("pfn %#x: descriptor %+v", p, d)
		}
		i++
	}
	if int64(len(b)) <= dataOff+4096 {
		t.Errorf("file of %d bytes ends at the data", len(b))
	}
}

// TestWriterMisuse checks the Writer refuses calls that would make a
// wrong file.
func TestWriterMisuse(t *testing.T) {
	newW := func(t *testing.T) *Writer {
		w, err := NewWriter(fixture.CreateFile(t, "d"), testHeader(100000, codec.Zstd))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	full := bytes.Repeat([]byte{0xff}, 4096)
	some := make([]byte, 4096)
	some[0] = 0b1010 // pfns 1 and 3 of the chunk
	for _, tc := range []struct {
		name string
		run  func(w *Writer) error
	}{
		{"unaligned chunk", func(w *Writer) error { return w.SetBitmaps(3, full, full) }},
		{"chunks out of order", func(w *Writer) error {
			w.SetBitmaps(32768, full, full)
			return w.SetBitmaps(0, full, full)
		}},
		{"overlapping chunks", func(w *Writer) error {
			w.SetBitmaps(0, full[:100], full[:100])
			return w.SetBitmaps(0, full, full)
		}},
		{"length mismatch", func(w *Writer) error { return w.SetBitmaps(0, full, full[:10]) }},
		{"bits past max_mapnr", func(w *Writer) error { return w.SetBitmaps(98304, full, full) }},
		{"dumpable not RAM", func(w *Writer) error { return w.SetBitmaps(0, some, full) }},
		{"page before StartPages", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			return w.WritePage(1, make([]byte, 4096), 0)
		}},
		{"pfn not in bitmap", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			return w.WritePage(2, make([]byte, 4096), 0) // only 1 and 3 are set
		}},
		{"too many pages in block", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			w.WriteZeroPage(1)
			w.WriteZeroPage(3)
			return w.WriteZeroPage(5)
		}},
		{"pfns out of order", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			w.WriteZeroPage(3)
			return w.WriteZeroPage(1)
		}},
		{"block left short", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.SetBitmaps(32768, some, some)
			w.StartPages()
			w.WriteZeroPage(1)
			return w.WriteZeroPage(32769)
		}},
		{"raw page of wrong size", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			return w.WritePage(1, make([]byte, 100), 0)
		}},
		{"compressed page too big", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			return w.WritePage(1, make([]byte, 4096), codec.FlagZstd)
		}},
		{"unknown flags", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			return w.WritePage(1, make([]byte, 100), 0x8)
		}},
		{"Close with pages missing", func(w *Writer) error {
			w.SetBitmaps(0, some, some)
			w.StartPages()
			w.WriteZeroPage(1)
			return w.Close()
		}},
		{"SetBitmaps after StartPages", func(w *Writer) error {
			w.StartPages()
			return w.SetBitmaps(0, some, some)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(newW(t)); err == nil {
				t.Error("no error")
			}
		})
	}

	for _, h := range []func(*Header){
		func(h *Header) { h.Sysname = "" },
		func(h *Header) { h.Version = "" },
		func(h *Header) { h.Machine = "" },
		func(h *Header) { h.Release = string(bytes.Repeat([]byte{'x'}, 65)) },
		func(h *Header) { h.BlockSize = 3000 },
		func(h *Header) { h.MaxMapnr = 0 },
		func(h *Header) { h.VMCOREINFOOffset = int64(len(h.Notes)) },
		func(h *Header) { h.Status = 0x40 },
		func(h *Header) { h.Status = codec.FlagZstd | codec.FlagZlib },
	} {
		hdr := testHeader(1000, codec.Zstd)
		h(&hdr)
		if _, err := NewWriter(fixture.CreateFile(t, "d"), hdr); err == nil {
			t.Errorf("NewWriter accepted %+v", hdr)
		}
	}
}
