package vmcore_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	. "github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
	"github.com/gokdump/gokdump/internal/fixture"
)

// FuzzNewFile feeds NewFile ELF headers, program headers and notes. The
// seeds are small (a few hundred bytes: packed data, short notes), so
// that minimizing what the fuzzer finds is quick; the headers of real
// dumps are checked by TestRealHeaders.
func FuzzNewFile(f *testing.F) {
	for _, c := range smallCores() {
		f.Add(c.Build().Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vf, err := NewFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			for _, want := range []error{ErrNotELF, ErrNotCore, ErrUnsupported, ErrCorrupt,
				vmcoreinfo.ErrEmpty, vmcoreinfo.ErrTooLarge} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		checkFile(t, vf, data)
	})
}

func checkFile(t *testing.T, f *File, data []byte) {
	size := uint64(len(data))
	if uint64(len(f.NoteData)) > size {
		t.Fatalf("%d bytes of notes from a %d-byte file", len(f.NoteData), size)
	}
	if f.PageSize < 4096 || f.PageSize > 1<<16 || f.PageSize&(f.PageSize-1) != 0 {
		t.Fatalf("PageSize %d", f.PageSize)
	}
	if f.VMCOREINFO != nil {
		if f.VMCOREINFOOffset < 0 || f.VMCOREINFOOffset+f.VMCOREINFOSize > int64(len(f.NoteData)) {
			t.Fatalf("VMCOREINFO at %d+%d of %d note bytes", f.VMCOREINFOOffset, f.VMCOREINFOSize, len(f.NoteData))
		}
	} else if f.VMCOREINFOOffset != -1 {
		t.Fatalf("VMCOREINFOOffset %d without VMCOREINFO", f.VMCOREINFOOffset)
	}
	for _, s := range f.Segments {
		if s.FileSize > s.MemSize || (s.FileSize > 0 && s.Offset+s.FileSize > size) {
			t.Fatalf("segment %+v in a %d-byte file", s, size)
		}
	}
	ranges := f.PhysRanges()
	var prevEnd uint64
	for i, r := range ranges {
		if r.Start >= r.End || r.FileEnd < r.Start || r.FileEnd > r.End || (i > 0 && r.Start < prevEnd) {
			t.Fatalf("range %d %+v after end %#x", i, r, prevEnd)
		}
		prevEnd = r.End
		off, n, ok := f.FileOffset(r.Start)
		if ok != (r.FileEnd > r.Start) {
			t.Fatalf("FileOffset(%#x) ok=%v for %+v", r.Start, ok, r)
		}
		if !ok {
			continue
		}
		if n != r.FileEnd-r.Start || uint64(off)+n > size {
			t.Fatalf("FileOffset(%#x) = %#x+%#x in a %d-byte file", r.Start, off, n, size)
		}
		// The first and last stored bytes read back as the file holds them.
		var b [1]byte
		for _, a := range []uint64{r.Start, r.FileEnd - 1} {
			o, _, _ := f.FileOffset(a)
			if _, err := f.ReadPhys(b[:], a); err != nil || b[0] != data[o] {
				t.Fatalf("ReadPhys(%#x) = %#x, %v; file has %#x", a, b[0], err, data[o])
			}
		}
		if r.FileEnd < r.End {
			if _, err := f.ReadPhys(b[:], r.FileEnd); !errors.Is(err, ErrHole) {
				t.Fatalf("ReadPhys(%#x) past the stored part: %v", r.FileEnd, err)
			}
		}
	}
	if len(ranges) > 0 {
		// In pages: MaxPFN*PageSize overflows for memory at the top.
		ps := uint64(f.PageSize)
		if last := ranges[len(ranges)-1].End; f.MaxPFN() < last/ps+min(last%ps, 1) {
			t.Fatalf("MaxPFN %#x below %#x", f.MaxPFN(), last)
		}
	} else if f.MaxPFN() != 0 {
		t.Fatalf("MaxPFN %#x without memory", f.MaxPFN())
	}
	for _, ps := range f.PRStatus {
		ps.PC(f.Machine)
		ps.SP(f.Machine)
	}
}

// smallCores are x86Core's layouts at their smallest: packed data of a
// few bytes, one short VMCOREINFO.
func smallCores() []fixture.Core {
	info := fixture.VMCOREINFO(le, "OSRELEASE=6.1\nPAGESIZE=4096\n")
	var loads []fixture.Load
	for _, l := range x86Core().Loads {
		l.FileSize = min(l.FileSize, 16)
		loads = append(loads, l)
	}
	a := fixture.Core{Notes: info, Loads: loads, Packed: true}
	b := fixture.Core{Notes: info, Loads: loads[1:3], Packed: true, XNum: true}
	// A PRSTATUS, a GOKDUMP note, a truncated last segment.
	m := &Missing{PageSize: 4096}
	m.Add(0x101, 1)
	c := fixture.Core{Notes: AppendMissingNote(append(fixture.PRStatus(le, elf.EM_X86_64, 1, nil), info...), le, m),
		Loads: []fixture.Load{loads[2], {Paddr: 0x200000, FileSize: 0x1000, MemSize: 0x2000}}, Packed: true}
	return []fixture.Core{a, b, c}
}

// TestRealHeaders runs FuzzNewFile's checks on the first 7.6 KiB (ELF
// header, program headers, PT_NOTE) of two real dumps: a copy cut short.
func TestRealHeaders(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join("testdata", "headers", "*.core"))
	if len(names) == 0 {
		t.Fatal("no headers in testdata/headers")
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		vf, err := NewFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if vf.VMCOREINFO == nil || vf.Missing.Empty() {
			t.Errorf("%s: VMCOREINFO %v, missing %+v", name, vf.VMCOREINFO != nil, vf.Missing)
		}
		checkFile(t, vf, data)
	}
}

// TestParseRealNotes parses the notes of real dumps kept by package
// vmcoreinfo's tests.
func TestParseRealNotes(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join("..", "vmcoreinfo", "testdata", "*.notes"))
	if len(names) == 0 {
		t.Fatal("no notes in ../vmcoreinfo/testdata")
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := ParseNotes(b, le, elf.EM_X86_64, 0)
		if err != nil || ns.VMCOREINFO == nil || len(ns.PRStatus) == 0 {
			t.Errorf("%s: %v, VMCOREINFO %v, %d PRSTATUS", name, err, ns.VMCOREINFO != nil, len(ns.PRStatus))
		}
	}
}

// FuzzParseNotes parses blocks of notes. Seeds are small; the notes of
// real dumps are checked by TestParseRealNotes.
func FuzzParseNotes(f *testing.F) {
	f.Add(smallCores()[2].Notes, false)
	f.Add(fixture.PRStatus(binary.BigEndian, elf.EM_AARCH64, 3, map[int]uint64{32: 1}), true)
	f.Add(note(binary.LittleEndian, "X", 1, []byte{1, 2, 3, 4, 5})[:22], false)
	f.Fuzz(func(t *testing.T, data []byte, big bool) {
		var bo binary.ByteOrder = binary.LittleEndian
		m := elf.EM_X86_64
		if big {
			bo, m = binary.BigEndian, elf.EM_AARCH64
		}
		const base = 0x1000
		ns, err := ParseNotes(data, bo, m, base)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, vmcoreinfo.ErrEmpty) && !errors.Is(err, vmcoreinfo.ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		prev := int64(-1)
		for _, n := range ns.Notes {
			if n.Offset <= prev || n.Offset < base || n.Offset+12 > base+int64(len(data)) {
				t.Fatalf("note at %#x after %#x in %d bytes", n.Offset, prev, len(data))
			}
			prev = n.Offset
			if len(n.Desc) > len(data) {
				t.Fatalf("desc of %d bytes from %d", len(n.Desc), len(data))
			}
		}
		if ns.VMCOREINFO != nil {
			if ns.VMCOREINFOOffset < 12 || ns.VMCOREINFOOffset+ns.VMCOREINFOSize > int64(len(data)) {
				t.Fatalf("VMCOREINFO at %d+%d of %d bytes", ns.VMCOREINFOOffset, ns.VMCOREINFOSize, len(data))
			}
			desc := data[ns.VMCOREINFOOffset : ns.VMCOREINFOOffset+ns.VMCOREINFOSize]
			if _, err := vmcoreinfo.Parse(desc); err != nil {
				t.Fatalf("VMCOREINFO offset points elsewhere: %v", err)
			}
		}
		for _, ps := range ns.PRStatus {
			if ps.Regs != nil && len(ps.Regs) != len(RegNames(m)) {
				t.Fatalf("%d regs", len(ps.Regs))
			}
		}
	})
}
