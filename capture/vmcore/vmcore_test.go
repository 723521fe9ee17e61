package vmcore_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	. "github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
	"github.com/gokdump/gokdump/internal/fixture"
)

func openBytes(t *testing.T, data []byte) *File {
	t.Helper()
	f, err := NewFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	return f
}

func TestSyntheticHeaders(t *testing.T) {
	b := build(x86Core())
	f := openBytes(t, b.data)
	if f.Class != elf.ELFCLASS64 || f.ByteOrder != binary.LittleEndian || f.Machine != elf.EM_X86_64 {
		t.Errorf("class %v order %v machine %v", f.Class, f.ByteOrder, f.Machine)
	}
	if f.Flags != 0 {
		t.Errorf("Flags = %#x", f.Flags)
	}
	if f.PageSize != 4096 {
		t.Errorf("PageSize = %d", f.PageSize)
	}
	if f.Size() != int64(len(b.data)) {
		t.Errorf("Size = %d", f.Size())
	}
	wantSegs := []Segment{
		{b.LoadOff[0], 0xffffffff81000000, 0x104000, 0x4000, 0x4000, 0},
		{b.LoadOff[1], 0xffff888000001000, 0x1000, 0x3000, 0x3000, 0},
		{b.LoadOff[2], 0xffff888000100000, 0x100000, 0x10000, 0x10000, 0},
		{b.LoadOff[3], 0xffff888000110000, 0x110000, 0x2000, 0x2000, 0},
		{b.LoadOff[4], 0xffff888000200000, 0x200000, 0x2000, 0x4000, 0},
	}
	if !reflect.DeepEqual(f.Segments, wantSegs) {
		t.Errorf("Segments:\n got %+v\nwant %+v", f.Segments, wantSegs)
	}
	// The text segment sorts inside the 0x100000 range and disappears;
	// touching ranges stay separate.
	wantRanges := []PhysRange{
		{Start: 0x1000, End: 0x4000, FileEnd: 0x4000},
		{Start: 0x100000, End: 0x110000, FileEnd: 0x110000},
		{Start: 0x110000, End: 0x112000, FileEnd: 0x112000},
		{Start: 0x200000, End: 0x204000, FileEnd: 0x202000},
	}
	if got := f.PhysRanges(); !reflect.DeepEqual(got, wantRanges) {
		t.Errorf("PhysRanges:\n got %+v\nwant %+v", got, wantRanges)
	}
	if got := f.MaxPFN(); got != 0x204 {
		t.Errorf("MaxPFN = %#x, want 0x204", got)
	}
}

func TestSyntheticNotes(t *testing.T) {
	b := build(x86Core())
	f := openBytes(t, b.data)
	if len(f.Notes) != 3 {
		t.Fatalf("%d notes, want 3 (the zero padding is not a note)", len(f.Notes))
	}
	if f.Notes[0].Offset != int64(b.NoteOff[0]) || f.Notes[0].Name != "CORE" || f.Notes[0].Type != NT_PRSTATUS {
		t.Errorf("note 0: %+v", f.Notes[0])
	}
	if !bytes.Equal(f.NoteData, x86Core().Notes) {
		t.Error("NoteData is not the PT_NOTE bytes")
	}
	if len(f.PRStatus) != 2 {
		t.Fatalf("%d PRSTATUS, want 2", len(f.PRStatus))
	}
	ps := f.PRStatus[0]
	if ps.PID != 1234 || len(ps.Regs) != 27 {
		t.Errorf("prstatus 0: pid %d, %d regs", ps.PID, len(ps.Regs))
	}
	if pc, ok := ps.PC(f.Machine); !ok || pc != 0xffffffff81234567 {
		t.Errorf("rip = %#x, %v", pc, ok)
	}
	if sp, ok := ps.SP(f.Machine); !ok || sp != 0xffffc90000123f00 {
		t.Errorf("rsp = %#x, %v", sp, ok)
	}
	if pc, _ := f.PRStatus[1].PC(f.Machine); pc != 0xffffffff81000010 {
		t.Errorf("cpu 1 rip = %#x", pc)
	}
	if names := RegNames(f.Machine); names[16] != "rip" || names[19] != "rsp" || len(names) != 27 {
		t.Errorf("RegNames: %v", names)
	}
	if _, ok := ps.PC(elf.EM_MIPS); ok {
		t.Error("PC for an unknown machine")
	}
	if f.VMCOREINFO == nil {
		t.Fatal("no VMCOREINFO")
	}
	if got := f.VMCOREINFO.OSRelease(); got != "6.1.0-test" {
		t.Errorf("OSRELEASE = %q", got)
	}
	desc := f.NoteData[f.VMCOREINFOOffset : f.VMCOREINFOOffset+f.VMCOREINFOSize]
	if !strings.HasPrefix(string(desc), "OSRELEASE=") || !strings.HasSuffix(string(desc), "\n\x00\x00\x00\x00") {
		t.Errorf("VMCOREINFO offset/size wrong: %q", desc)
	}
}

func TestTwoNoteSegments(t *testing.T) {
	c := x86Core()
	first := fixture.PRStatus(le, elf.EM_X86_64, 7, nil)
	second := fixture.VMCOREINFO(le, testVMCOREINFO)
	c.Notes, c.MoreNotes = first, [][]byte{second}
	f := openBytes(t, build(c).data)
	if !bytes.Equal(f.NoteData, append(append([]byte(nil), first...), second...)) {
		t.Error("NoteData is not the concatenated segments")
	}
	if f.VMCOREINFOOffset != int64(len(first))+12+12 || f.VMCOREINFOSize != int64(len(testVMCOREINFO)) {
		t.Errorf("VMCOREINFO at %d+%d", f.VMCOREINFOOffset, f.VMCOREINFOSize)
	}
	if len(f.PRStatus) != 1 || f.PRStatus[0].PID != 7 {
		t.Errorf("PRStatus %+v", f.PRStatus)
	}
}

func TestNoVMCOREINFO(t *testing.T) {
	c := x86Core()
	c.Notes = fixture.PRStatus(le, elf.EM_X86_64, 1, nil)
	f := openBytes(t, build(c).data)
	if f.VMCOREINFO != nil || f.VMCOREINFOOffset != -1 {
		t.Errorf("VMCOREINFO %v at %d", f.VMCOREINFO, f.VMCOREINFOOffset)
	}
	if f.PageSize != 4096 {
		t.Errorf("default PageSize = %d", f.PageSize)
	}
}

func TestPageSizeFromVMCOREINFO(t *testing.T) {
	for _, tt := range []struct {
		val  string
		want int64
	}{
		{"65536", 65536},
		{"16384", 16384},
		{"1024", 4096},    // below the bound: machine default
		{"1048576", 4096}, // above it
		{"3000", 4096},
	} {
		c := x86Core()
		c.Notes = fixture.VMCOREINFO(le, "OSRELEASE=x\nPAGESIZE="+tt.val+"\n")
		f := openBytes(t, build(c).data)
		if f.PageSize != tt.want {
			t.Errorf("PAGESIZE=%s: PageSize %d, want %d", tt.val, f.PageSize, tt.want)
		}
	}
}

func TestFileOffset(t *testing.T) {
	b := build(x86Core())
	f := openBytes(t, b.data)
	tests := []struct {
		addr uint64
		off  uint64
		n    uint64
		ok   bool
	}{
		{0x0, 0, 0, false},
		{0x1000, b.LoadOff[1], 0x3000, true},
		{0x3fff, b.LoadOff[1] + 0x2fff, 1, true},
		{0x4000, 0, 0, false},
		// Kernel text addresses resolve through the RAM segment that holds them.
		{0x104000, b.LoadOff[2] + 0x4000, 0xc000, true},
		{0x10ffff, b.LoadOff[2] + 0xffff, 1, true},
		{0x110000, b.LoadOff[3], 0x2000, true},
		{0x200000, b.LoadOff[4], 0x2000, true},
		{0x201fff, b.LoadOff[4] + 0x1fff, 1, true},
		{0x202000, 0, 0, false}, // declared, not stored
		{0x203fff, 0, 0, false},
		{0x204000, 0, 0, false},
		{^uint64(0), 0, 0, false},
	}
	for _, tt := range tests {
		off, n, ok := f.FileOffset(tt.addr)
		if ok != tt.ok || (ok && (uint64(off) != tt.off || n != tt.n)) {
			t.Errorf("FileOffset(%#x) = %#x, %#x, %v; want %#x, %#x, %v", tt.addr, off, n, ok, tt.off, tt.n, tt.ok)
		}
	}
}

func checkPat(t *testing.T, p []byte, addr uint64) {
	t.Helper()
	for i := range p {
		if p[i] != fixture.PatternByte(addr+uint64(i)) {
			t.Fatalf("byte at physical %#x = %#x, want %#x", addr+uint64(i), p[i], fixture.PatternByte(addr+uint64(i)))
		}
	}
}

func TestReadPhys(t *testing.T) {
	f := openBytes(t, build(x86Core()).data)
	tests := []struct {
		addr uint64
		size int
		n    int // bytes read before the hole, or size
		hole bool
	}{
		{0x1000, 0x3000, 0x3000, false},
		{0x1800, 0x100, 0x100, false},
		{0x104010, 0x2000, 0x2000, false},
		// across two touching PT_LOADs
		{0x10f000, 0x2000, 0x2000, false},
		{0x10fffe, 4, 4, false},
		// runs off the end of a range into a hole
		{0x3000, 0x2000, 0x1000, true},
		{0x111000, 0x2000, 0x1000, true},
		// into the declared-but-absent part of p_filesz < p_memsz
		{0x201000, 0x2000, 0x1000, true},
		{0x202000, 1, 0, true},
		{0x0, 1, 0, true},
		{0x50000, 0x1000, 0, true},
		{0x1000, 0, 0, false},
	}
	for _, tt := range tests {
		p := make([]byte, tt.size)
		n, err := f.ReadPhys(p, tt.addr)
		if n != tt.n || (err != nil) != tt.hole {
			t.Errorf("ReadPhys(%#x, %#x) = %#x, %v; want %#x, hole %v", tt.addr, tt.size, n, err, tt.n, tt.hole)
			continue
		}
		if tt.hole {
			if !errors.Is(err, ErrHole) {
				t.Errorf("ReadPhys(%#x): %v is not ErrHole", tt.addr, err)
			}
			if hole := fmt.Sprintf("%#x", tt.addr+uint64(n)); !strings.Contains(err.Error(), hole) {
				t.Errorf("ReadPhys(%#x): %q does not name %s", tt.addr, err, hole)
			}
		}
		checkPat(t, p[:n], tt.addr)
	}
}

func TestTruncated(t *testing.T) {
	b := build(x86Core())
	// Cut the file 0x1800 bytes into the 0x100000 range's data.
	cut := b.LoadOff[2] + 0x1800
	f := openBytes(t, b.data[:cut])
	got := f.Segments
	if got[2].FileSize != 0x1800 || got[2].MemSize != 0x10000 {
		t.Errorf("cut segment: %+v", got[2])
	}
	// Segments wholly past the end keep their headers with no data.
	for _, i := range []int{3, 4} {
		if got[i].FileSize != 0 {
			t.Errorf("segment %d past EOF: FileSize %#x", i, got[i].FileSize)
		}
	}
	if got[2].Truncated != 0x10000-0x1800 || got[3].Truncated != 0x2000 || got[4].Truncated != 0x2000 {
		t.Errorf("truncated bytes: %#x %#x %#x", got[2].Truncated, got[3].Truncated, got[4].Truncated)
	}
	// The text segment's data lies before the cut: it still serves the
	// kernel-text addresses the RAM segment lost. What the cut took is
	// missing; the last segment's p_memsz > p_filesz part stays declared.
	wantRanges := []PhysRange{
		{Start: 0x1000, End: 0x4000, FileEnd: 0x4000},
		{Start: 0x100000, End: 0x104000, FileEnd: 0x101800, Missing: 0x2800},
		{Start: 0x104000, End: 0x108000, FileEnd: 0x108000},
		{Start: 0x108000, End: 0x110000, FileEnd: 0x108000, Missing: 0x8000},
		{Start: 0x110000, End: 0x112000, FileEnd: 0x110000, Missing: 0x2000},
		{Start: 0x200000, End: 0x204000, FileEnd: 0x200000, Missing: 0x2000},
	}
	if got := f.PhysRanges(); !reflect.DeepEqual(got, wantRanges) {
		t.Errorf("PhysRanges:\n got %+v\nwant %+v", got, wantRanges)
	}
	text := make([]byte, 0x4000)
	if n, err := f.ReadPhys(text, 0x104000); n != len(text) || err != nil {
		t.Errorf("ReadPhys of kernel text past the cut: %#x, %v", n, err)
	}
	checkPat(t, text, 0x104000)
	if off, _, _ := f.FileOffset(0x104000); uint64(off) != b.LoadOff[0] {
		t.Errorf("kernel text read at %#x, want the text segment's %#x", off, b.LoadOff[0])
	}
	p := make([]byte, 0x2000)
	n, err := f.ReadPhys(p, 0x100000)
	if n != 0x1800 || !errors.Is(err, ErrHole) || !errors.Is(err, ErrMissing) {
		t.Errorf("ReadPhys across the cut: %#x, %v", n, err)
	}
	checkPat(t, p[:n], 0x100000)
	if _, err := f.ReadPhys(p[:1], 0x110000); !errors.Is(err, ErrHole) || !errors.Is(err, ErrMissing) {
		t.Errorf("ReadPhys past EOF: %v", err)
	}
	// Declared but never stored: a hole, not missing.
	if _, err := f.ReadPhys(p[:1], 0x203000); !errors.Is(err, ErrHole) || errors.Is(err, ErrMissing) {
		t.Errorf("ReadPhys of declared memory: %v", err)
	}
	// Missing pages: 0x101 (in part) to 0x103, 0x108 to 0x111, 0x200 and 0x201.
	want := &Missing{PageSize: 4096, Pages: 3 + 10 + 2, Ranges: []PFNRange{{0x101, 3}, {0x108, 10}, {0x200, 2}}}
	if !reflect.DeepEqual(f.Missing, want) {
		t.Errorf("Missing = %+v, want %+v", f.Missing, want)
	}
	if len(f.Warnings) != 3 {
		t.Errorf("Warnings: %q", f.Warnings)
	}
	if _, err := f.ReadPhys(p[:16], 0x1000); err != nil {
		t.Errorf("ReadPhys before the cut: %v", err)
	}
}

// shortReader returns io.EOF with a short read from a given offset on,
// as a file would that shrank after its headers were read.
type shortReader struct {
	r   io.ReaderAt
	end int64
}

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= s.end {
		return s.r.ReadAt(p, off)
	}
	if off >= s.end {
		return 0, io.EOF
	}
	n, _ := s.r.ReadAt(p[:s.end-off], off)
	return n, io.EOF
}

// eofReader returns io.EOF along with complete reads that end at the end
// of the data, as io.ReaderAt allows.
type eofReader struct{ r *bytes.Reader }

func (e eofReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.r.ReadAt(p, off)
	if err == nil && off+int64(n) == e.r.Size() {
		err = io.EOF
	}
	return n, err
}

func TestReadPhysShortReads(t *testing.T) {
	b := build(x86Core())
	end := int64(b.LoadOff[1] + 0x1000)
	f, err := NewFile(shortReader{bytes.NewReader(b.data), end}, int64(len(b.data)))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 0x2000)
	n, err := f.ReadPhys(p, 0x1000)
	if n != 0x1000 || !errors.Is(err, ErrHole) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("short read: %#x, %v", n, err)
	}

	// The last segment's data ends the file.
	f, err = NewFile(eofReader{bytes.NewReader(b.data)}, int64(len(b.data)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.ReadPhys(p, 0x200000); n != len(p) || err != nil {
		t.Errorf("complete read with io.EOF: %#x, %v", n, err)
	}
	checkPat(t, p, 0x200000)

	// So do the notes of a core without memory.
	c := x86Core()
	c.Loads = []fixture.Load{{Paddr: 0x1000, MemSize: 0x1000}}
	nb := build(c)
	nb.data = nb.data[:nb.NoteOff[0]+uint64(len(c.Notes))]
	f, err = NewFile(eofReader{bytes.NewReader(nb.data)}, int64(len(nb.data)))
	if err != nil || f.VMCOREINFO == nil {
		t.Fatalf("notes ending the file: %v", err)
	}
}

func TestPNXNUM(t *testing.T) {
	c := x86Core()
	c.XNum = true
	b := build(c)
	f := openBytes(t, b.data)
	if len(f.Segments) != 5 || f.VMCOREINFO == nil {
		t.Fatalf("%d segments, VMCOREINFO %v", len(f.Segments), f.VMCOREINFO != nil)
	}
	p := make([]byte, 0x100)
	if _, err := f.ReadPhys(p, 0x200000); err != nil {
		t.Fatal(err)
	}
	checkPat(t, p, 0x200000)
}

func TestBigEndianAArch64(t *testing.T) {
	bo := binary.BigEndian
	c := fixture.Core{
		ByteOrder: bo,
		Machine:   elf.EM_AARCH64,
		Notes: append(fixture.PRStatus(bo, elf.EM_AARCH64, 42, map[int]uint64{31: 0xffff800012345000, 32: 0xffff800010001234}),
			fixture.VMCOREINFO(bo, "OSRELEASE=6.12-be\nPAGESIZE=65536\n")...),
		Loads: []fixture.Load{{Vaddr: 0xffff000040000000, Paddr: 0x40000000, FileSize: 0x20000, MemSize: 0x20000}},
	}
	f := openBytes(t, build(c).data)
	if f.ByteOrder != binary.BigEndian || f.PageSize != 65536 {
		t.Errorf("order %v page size %d", f.ByteOrder, f.PageSize)
	}
	ps := f.PRStatus[0]
	pc, _ := ps.PC(f.Machine)
	sp, _ := ps.SP(f.Machine)
	if ps.PID != 42 || pc != 0xffff800010001234 || sp != 0xffff800012345000 {
		t.Errorf("pid %d pc %#x sp %#x", ps.PID, pc, sp)
	}
	if got := f.MaxPFN(); got != 0x40000000/65536+2 {
		t.Errorf("MaxPFN = %#x", got)
	}
}

// corrupt describes one damaged header and what NewFile must say.
type corrupt struct {
	name   string
	mutate func(b *built)
	want   error
	// at, when set, must appear in the message (the offset of the fault).
	at func(b *built) uint64
}

func TestCorruptHeaders(t *testing.T) {
	phdr := func(b *built, i int) []byte { return b.data[b.Phdr(i):] }
	tests := []corrupt{
		{name: "bad magic", mutate: func(b *built) { b.data[1] = 'X' }, want: ErrNotELF},
		{name: "too short for ident", mutate: func(b *built) { b.data = b.data[:10] }, want: ErrNotELF},
		{name: "too short for header", mutate: func(b *built) { b.data = b.data[:40] }, want: ErrNotELF},
		{name: "ELFCLASS32", mutate: func(b *built) { b.data[elf.EI_CLASS] = byte(elf.ELFCLASS32) }, want: ErrUnsupported},
		{name: "bad data encoding", mutate: func(b *built) { b.data[elf.EI_DATA] = 3 }, want: ErrUnsupported},
		{name: "ET_EXEC", mutate: func(b *built) { le.PutUint16(b.data[16:], uint16(elf.ET_EXEC)) }, want: ErrNotCore},
		{name: "e_phentsize", mutate: func(b *built) { le.PutUint16(b.data[54:], 32) }, want: ErrCorrupt},
		{name: "no program headers", mutate: func(b *built) { le.PutUint16(b.data[56:], 0) }, want: ErrCorrupt},
		{name: "program headers past EOF", mutate: func(b *built) {
			le.PutUint64(b.data[32:], uint64(len(b.data))-100)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return uint64(len(b.data)) - 100 }},
		{name: "e_phoff huge", mutate: func(b *built) { le.PutUint64(b.data[32:], 1<<63) }, want: ErrCorrupt,
			at: func(b *built) uint64 { return 1 << 63 }},
		{name: "p_filesz > p_memsz", mutate: func(b *built) {
			le.PutUint64(phdr(b, 2)[32:], 0x5000)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return b.Phdr(2) }},
		{name: "PT_NOTE past EOF", mutate: func(b *built) {
			le.PutUint64(phdr(b, 0)[8:], uint64(len(b.data))-8)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return uint64(len(b.data)) - 8 }},
		{name: "PT_NOTE size overflows", mutate: func(b *built) {
			le.PutUint64(phdr(b, 0)[32:], ^uint64(0)-8)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return b.NoteOff[0] }},
		{name: "PT_NOTE over MaxNoteSize", mutate: func(b *built) {
			le.PutUint64(phdr(b, 0)[32:], MaxNoteSize+1)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return b.NoteOff[0] }},
		{name: "PN_XNUM without section header", mutate: func(b *built) {
			le.PutUint16(b.data[56:], 0xffff)
		}, want: ErrCorrupt},
		{name: "PN_XNUM section header past EOF", mutate: func(b *built) {
			le.PutUint16(b.data[56:], 0xffff)
			le.PutUint64(b.data[40:], uint64(len(b.data))-32)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return uint64(len(b.data)) - 32 }},
		{name: "PN_XNUM count zero", mutate: func(b *built) {
			le.PutUint32(b.data[b.ShOff+44:], 0)
		}, want: ErrCorrupt},
		{name: "PN_XNUM count over MaxSegments", mutate: func(b *built) {
			le.PutUint32(b.data[b.ShOff+44:], MaxSegments+1)
		}, want: ErrCorrupt},
		{name: "PN_XNUM count past EOF", mutate: func(b *built) {
			le.PutUint32(b.data[b.ShOff+44:], 60000)
		}, want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := x86Core()
			c.XNum = strings.HasPrefix(tt.name, "PN_XNUM count")
			b := build(c)
			tt.mutate(&b)
			f, err := NewFile(bytes.NewReader(b.data), int64(len(b.data)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewFile = %v, %v; want %v", f, err, tt.want)
			}
			if tt.at != nil {
				if at := fmt.Sprintf("%#x", tt.at(&b)); !strings.Contains(err.Error(), at) {
					t.Errorf("%q does not name offset %s", err, at)
				}
			}
		})
	}
}

// TestDamagedNotes checks that a damaged note costs only itself: the
// notes before it and a VMCOREINFO after it are kept, and NoteData is
// rebuilt from them as a block any reader can parse.
func TestDamagedNotes(t *testing.T) {
	// x86Core's notes: two PRSTATUS, then VMCOREINFO.
	prLen := 2 * len(fixture.PRStatus(le, elf.EM_X86_64, 1234, nil))
	tests := []struct {
		name     string
		mutate   func(b *built)
		want     error
		at       func(b *built) uint64
		notes    int  // notes kept
		prstatus int  // of which PRSTATUS
		info     bool // VMCOREINFO kept
	}{
		{name: "PRSTATUS descsz overruns", mutate: func(b *built) {
			le.PutUint32(b.data[b.NoteOff[0]+4:], 0x10000)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return b.NoteOff[0] }, notes: 1, info: true},
		{name: "PRSTATUS namesz overruns", mutate: func(b *built) {
			le.PutUint32(b.data[b.NoteOff[0]:], 0xfffffff0)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return b.NoteOff[0] }, notes: 1, info: true},
		{name: "VMCOREINFO descsz overruns", mutate: func(b *built) {
			le.PutUint32(b.data[b.NoteOff[0]+uint64(prLen)+4:], 0x10000)
		}, want: ErrCorrupt, at: func(b *built) uint64 { return b.NoteOff[0] + uint64(prLen) },
			notes: 2, prstatus: 2},
		{name: "VMCOREINFO without entries", mutate: func(b *built) {
			desc := b.data[b.NoteOff[0]+uint64(prLen)+24:]
			for i := 0; desc[i] != 0; i++ {
				desc[i] = ' '
			}
		}, want: vmcoreinfo.ErrEmpty, at: func(b *built) uint64 { return b.NoteOff[0] + uint64(prLen) },
			notes: 3, prstatus: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := x86Core()
			b := build(c)
			tt.mutate(&b)
			f, err := NewFile(bytes.NewReader(b.data), int64(len(b.data)))
			if err != nil {
				t.Fatalf("NewFile: %v", err)
			}
			if !errors.Is(f.NoteErr, tt.want) {
				t.Fatalf("NoteErr = %v, want %v", f.NoteErr, tt.want)
			}
			if at := fmt.Sprintf("%#x", tt.at(&b)); !strings.Contains(f.NoteErr.Error(), at) {
				t.Errorf("%q does not name offset %s", f.NoteErr, at)
			}
			if len(f.Notes) != tt.notes || len(f.PRStatus) != tt.prstatus || (f.VMCOREINFO != nil) != tt.info {
				t.Fatalf("kept %d notes, %d PRSTATUS, VMCOREINFO %v", len(f.Notes), len(f.PRStatus), f.VMCOREINFO != nil)
			}
			if tt.info && f.VMCOREINFO.OSRelease() != "6.1.0-test" {
				t.Errorf("OSRELEASE %q", f.VMCOREINFO.OSRelease())
			}
			// The rebuilt block parses as it is, and its offsets point into it.
			ns, err := ParseNotes(f.NoteData, f.ByteOrder, f.Machine, 0)
			if len(ns.Notes) != tt.notes || (err != nil) != (tt.want == vmcoreinfo.ErrEmpty) {
				t.Errorf("NoteData: %d notes, %v", len(ns.Notes), err)
			}
			if tt.info {
				desc := f.NoteData[f.VMCOREINFOOffset : f.VMCOREINFOOffset+f.VMCOREINFOSize]
				if !bytes.HasPrefix(desc, []byte("OSRELEASE=6.1.0-test")) {
					t.Errorf("VMCOREINFO at %d: %q", f.VMCOREINFOOffset, desc[:20])
				}
			}
		})
	}
}

func TestParseNotes(t *testing.T) {
	bo := binary.LittleEndian
	n1 := fixture.PRStatus(bo, elf.EM_X86_64, 9, map[int]uint64{16: 0x1234})
	n2 := note(bo, "LINUX", 0x202, []byte{1, 2, 3}) // NT_X86_XSTATE-like, odd size
	n3 := fixture.VMCOREINFO(bo, testVMCOREINFO)
	data := append(append(append([]byte(nil), n1...), n2...), n3...)
	data = append(data, make([]byte, 100)...)
	ns, err := ParseNotes(data, bo, elf.EM_X86_64, 0x1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Notes) != 3 {
		t.Fatalf("%d notes", len(ns.Notes))
	}
	if ns.Notes[1].Name != "LINUX" || ns.Notes[1].Type != 0x202 || !bytes.Equal(ns.Notes[1].Desc, []byte{1, 2, 3}) ||
		ns.Notes[1].Offset != 0x1000+int64(len(n1)) {
		t.Errorf("note 1: %+v", ns.Notes[1])
	}
	if len(ns.PRStatus) != 1 || ns.PRStatus[0].PID != 9 || ns.PRStatus[0].Regs[16] != 0x1234 {
		t.Errorf("PRStatus: %+v", ns.PRStatus)
	}
	if ns.VMCOREINFO == nil || ns.VMCOREINFOOffset != int64(len(n1)+len(n2)+12+12) || ns.VMCOREINFOSize != int64(len(testVMCOREINFO)) {
		t.Errorf("VMCOREINFO at %d+%d", ns.VMCOREINFOOffset, ns.VMCOREINFOSize)
	}

	// A short PRSTATUS yields the pid but no registers.
	ns, err = ParseNotes(note(bo, "CORE", NT_PRSTATUS, make([]byte, 40)), bo, elf.EM_X86_64, 0)
	if err != nil || len(ns.PRStatus) != 1 || ns.PRStatus[0].Regs != nil {
		t.Errorf("short prstatus: %+v, %v", ns, err)
	}
	// The last note may omit the padding after its descriptor.
	last := note(bo, "X", 1, []byte{1, 2, 3, 4, 5})
	ns, err = ParseNotes(last[:len(last)-3], bo, elf.EM_X86_64, 0)
	if err != nil || len(ns.Notes) != 1 || len(ns.Notes[0].Desc) != 5 {
		t.Errorf("unpadded last note: %+v, %v", ns, err)
	}
	// Empty and all-zero blocks hold no notes.
	for _, d := range [][]byte{nil, make([]byte, 11), make([]byte, 64)} {
		ns, err := ParseNotes(d, bo, elf.EM_X86_64, 0)
		if err != nil || len(ns.Notes) != 0 || ns.VMCOREINFOOffset != -1 {
			t.Errorf("ParseNotes(%d zero bytes) = %+v, %v", len(d), ns, err)
		}
	}
}

func TestTooManyNotes(t *testing.T) {
	bo := binary.LittleEndian
	one := note(bo, "", 1, nil) // 16 bytes: namesz 1, padded
	data := bytes.Repeat(one, MaxNotes+1)
	if _, err := ParseNotes(data, bo, elf.EM_X86_64, 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ParseNotes of %d notes: %v", MaxNotes+1, err)
	}
	if ns, err := ParseNotes(data[:len(one)*MaxNotes], bo, elf.EM_X86_64, 0); err != nil || len(ns.Notes) != MaxNotes {
		t.Errorf("ParseNotes of MaxNotes notes: %v", err)
	}
}

func TestReaderAtAndClose(t *testing.T) {
	b := build(x86Core())
	r := bytes.NewReader(b.data)
	f, err := NewFile(r, int64(len(b.data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.ReaderAt() != io.ReaderAt(r) {
		t.Error("ReaderAt is not the reader given")
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close of a File over a caller's reader: %v", err)
	}
}

func TestOverlappingRanges(t *testing.T) {
	tests := []struct {
		name  string
		loads []fixture.Load
		want  []PhysRange
		// offs maps a physical address to the load whose data serves it.
		served map[uint64]int
	}{
		{
			name: "partial overlap: the lower segment serves the overlap",
			loads: []fixture.Load{
				{Paddr: 0x2000, FileSize: 0x3000, MemSize: 0x3000},
				{Paddr: 0x0, FileSize: 0x3000, MemSize: 0x3000},
			},
			want: []PhysRange{
				{Start: 0x0, End: 0x3000, FileEnd: 0x3000},
				{Start: 0x3000, End: 0x5000, FileEnd: 0x5000},
			},
			served: map[uint64]int{0x2800: 1, 0x3000: 0},
		},
		{
			name: "a stored segment fills the lower one's missing data",
			loads: []fixture.Load{
				{Paddr: 0x0, FileSize: 0x1000, MemSize: 0x4000},
				{Paddr: 0x2000, FileSize: 0x1000, MemSize: 0x1000},
			},
			want: []PhysRange{
				{Start: 0x0, End: 0x2000, FileEnd: 0x1000},
				{Start: 0x2000, End: 0x3000, FileEnd: 0x3000},
				{Start: 0x3000, End: 0x4000, FileEnd: 0x3000},
			},
			served: map[uint64]int{0x0: 0, 0x2fff: 1},
		},
		{
			name: "same range twice: the first in file order serves it",
			loads: []fixture.Load{
				{Paddr: 0x1000, FileSize: 0x1000, MemSize: 0x1000},
				{Paddr: 0x1000, FileSize: 0x1000, MemSize: 0x1000},
			},
			want:   []PhysRange{{Start: 0x1000, End: 0x2000, FileEnd: 0x2000}},
			served: map[uint64]int{0x1000: 0},
		},
		{
			name: "empty segments are ignored",
			loads: []fixture.Load{
				{Paddr: 0x1000},
				{Paddr: 0x1000, FileSize: 0x800, MemSize: 0x1000},
			},
			want:   []PhysRange{{Start: 0x1000, End: 0x2000, FileEnd: 0x1800}},
			served: map[uint64]int{0x17ff: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := x86Core()
			c.Loads = tt.loads
			b := build(c)
			f := openBytes(t, b.data)
			if got := f.PhysRanges(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PhysRanges:\n got %+v\nwant %+v", got, tt.want)
			}
			for addr, li := range tt.served {
				off, _, ok := f.FileOffset(addr)
				if want := b.LoadOff[li] + addr - tt.loads[li].Paddr; !ok || uint64(off) != want {
					t.Errorf("FileOffset(%#x) = %#x, %v; want %#x in load %d", addr, off, ok, want, li)
				}
			}
			for _, r := range tt.want {
				p := make([]byte, r.FileEnd-r.Start)
				if _, err := f.ReadPhys(p, r.Start); err != nil {
					t.Fatal(err)
				}
				checkPat(t, p, r.Start)
			}
		})
	}
}
