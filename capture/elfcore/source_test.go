package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"io"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// Synthetic sources are fixture.Cores, whose page data is computed on
// read, so a test can describe gigabytes without storing them. The byte at
// physical address a is fixture.PatternByte(a) wherever a source stores a.

var pat = fixture.PatternByte

// testCore is an x86_64 core of loads with a PRSTATUS and a VMCOREINFO, as
// the kernel writes them.
func testCore(bo binary.ByteOrder, loads []fixture.Load) fixture.Core {
	notes := fixture.PRStatus(bo, elf.EM_X86_64, 77, map[int]uint64{16: 0xffffffff81001234})
	notes = append(notes, fixture.VMCOREINFO(bo, "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nKERNELOFFSET=0\n")...)
	return fixture.Core{ByteOrder: bo, Notes: notes, Loads: loads}
}

// newSource builds a little-endian testCore, cut to size bytes unless size
// is negative, and opens it with capture/vmcore.
func newSource(t testing.TB, loads []fixture.Load, size int64) (*vmcore.File, *fixture.Image) {
	t.Helper()
	im := testCore(binary.LittleEndian, loads).Build()
	if size < 0 {
		size = im.Size()
	}
	f, err := vmcore.NewFile(io.NewSectionReader(im, 0, size), size)
	if err != nil {
		t.Fatalf("synthetic source: %v", err)
	}
	return f, im
}

// x86Loads is laid out like the kernel's x86_64 /proc/vmcore: kernel text
// first, repeating part of a RAM range; a RAM range whose end is not page
// aligned and a next one starting in the same page; a range stored only in
// part.
func x86Loads() []fixture.Load {
	return []fixture.Load{
		{Vaddr: 0xffffffff81000000, Paddr: 0x1000000, FileSize: 0x80000, MemSize: 0x80000},
		{Vaddr: 0xffff888000001000, Paddr: 0x1000, FileSize: 0x9ec00, MemSize: 0x9ec00},
		{Vaddr: 0xffff88800009fe00, Paddr: 0x9fe00, FileSize: 0x200, MemSize: 0x200},
		{Vaddr: 0xffff888000100000, Paddr: 0x100000, FileSize: 0x1f00000, MemSize: 0x1f00000},
		{Vaddr: 0xffff888004000000, Paddr: 0x4000000, FileSize: 0x100000, MemSize: 0x200000},
	}
}
