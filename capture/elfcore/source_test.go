package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// Synthetic sources: ELF vmcores whose headers are built in memory and
// whose page data is computed on read, so a test can describe gigabytes
// without storing them. The byte at physical address a is pat(a) wherever
// a source stores a.

func pat(a uint64) byte {
	x := (a | 1) * 0x9E3779B97F4A7C15
	return byte(x>>56) ^ byte(a>>12)
}

type srcLoad struct {
	vaddr, paddr  uint64
	filesz, memsz uint64
}

// synthSource is an io.ReaderAt over a synthetic core file.
type synthSource struct {
	hdr   []byte
	loads []srcLoad
	offs  []uint64 // file offset of each load's data
	size  int64
	// zero, when set, makes a page read as zeros (its pfn, 4 KiB pages).
	zero func(pfn uint64) bool
}

func (s *synthSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	clear(p[:n])
	copy(p[:n], s.hdr[min(off, int64(len(s.hdr))):])
	// Each load's data, where it overlaps the read.
	for i, l := range s.loads {
		lo, hi := max(uint64(off), s.offs[i]), min(uint64(off)+uint64(n), s.offs[i]+l.filesz)
		for fo := lo; fo < hi; fo++ {
			a := l.paddr + (fo - s.offs[i])
			if s.zero != nil && s.zero(a/4096) {
				continue
			}
			p[fo-uint64(off)] = pat(a)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func note(bo binary.ByteOrder, name string, typ uint32, desc []byte) []byte {
	return vmcore.AppendNote(nil, bo, name, typ, desc)
}

// testNotes are a PRSTATUS and a VMCOREINFO, as the kernel writes them.
func testNotes(bo binary.ByteOrder) []byte {
	pr := make([]byte, 336)
	bo.PutUint32(pr[32:], 77)
	bo.PutUint64(pr[112+16*8:], 0xffffffff81001234)
	n := note(bo, "CORE", 1, pr)
	n = append(n, note(bo, "VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-test\nPAGESIZE=4096\nKERNELOFFSET=0\n"))...)
	return n
}

// newSource builds a synthetic core with loads (and the given truncation:
// size < 0 means the full size) and opens it with capture/vmcore.
func newSource(t testing.TB, loads []srcLoad, size int64) (*vmcore.File, *synthSource) {
	t.Helper()
	bo := binary.LittleEndian
	notes := testNotes(bo)
	nph := 1 + len(loads)
	noteOff := uint64(64 + nph*56)
	end := noteOff + uint64(len(notes))
	s := &synthSource{loads: loads}
	for _, l := range loads {
		end = alignUp(end, 4096) + l.paddr%4096
		s.offs = append(s.offs, end)
		end += l.filesz
	}
	hdr := make([]byte, noteOff+uint64(len(notes)))
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS], hdr[elf.EI_DATA], hdr[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	bo.PutUint16(hdr[16:], uint16(elf.ET_CORE))
	bo.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	bo.PutUint32(hdr[20:], 1)
	bo.PutUint64(hdr[32:], 64)
	bo.PutUint16(hdr[52:], 64)
	bo.PutUint16(hdr[54:], 56)
	bo.PutUint16(hdr[56:], uint16(nph))
	putPhdr(bo, hdr[64:], elf.PT_NOTE, 0, vmcore.Segment{Offset: noteOff, FileSize: uint64(len(notes)), MemSize: uint64(len(notes))}, 0)
	for i, l := range loads {
		putPhdr(bo, hdr[64+(1+i)*56:], elf.PT_LOAD, 7, vmcore.Segment{
			Offset: s.offs[i], VirtAddr: l.vaddr, PhysAddr: l.paddr, FileSize: l.filesz, MemSize: l.memsz}, 0)
	}
	copy(hdr[noteOff:], notes)
	s.hdr = hdr
	s.size = int64(end)
	if size >= 0 {
		s.size = size
	}
	f, err := vmcore.NewFile(s, s.size)
	if err != nil {
		t.Fatalf("synthetic source: %v", err)
	}
	return f, s
}

// x86Loads is laid out like the kernel's x86_64 /proc/vmcore: kernel text
// first, repeating part of a RAM range; a RAM range whose end is not page
// aligned and a next one starting in the same page; a range stored only in
// part.
func x86Loads() []srcLoad {
	return []srcLoad{
		{vaddr: 0xffffffff81000000, paddr: 0x1000000, filesz: 0x80000, memsz: 0x80000},
		{vaddr: 0xffff888000001000, paddr: 0x1000, filesz: 0x9ec00, memsz: 0x9ec00},
		{vaddr: 0xffff88800009fe00, paddr: 0x9fe00, filesz: 0x200, memsz: 0x200},
		{vaddr: 0xffff888000100000, paddr: 0x100000, filesz: 0x1f00000, memsz: 0x1f00000},
		{vaddr: 0xffff888004000000, paddr: 0x4000000, filesz: 0x100000, memsz: 0x200000},
	}
}

// memFile is an in-memory io.WriterAt.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if need := int(off) + len(p); need > len(m.b) {
		if need > cap(m.b) {
			m.b = append(make([]byte, 0, max(2*cap(m.b), need)), m.b...)
		}
		m.b = m.b[:need]
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) open(t testing.TB) *vmcore.File {
	t.Helper()
	f, err := vmcore.NewFile(bytes.NewReader(m.b), int64(len(m.b)))
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	return f
}
