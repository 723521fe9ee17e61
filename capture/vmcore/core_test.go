package vmcore_test

import (
	"debug/elf"
	"encoding/binary"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// Synthetic cores are fixture.Cores: the byte at physical address a is
// fixture.PatternByte(a) in every segment that stores a, so readers can
// be checked without a copy of "memory".

var le = binary.LittleEndian

// built is a synthetic core's bytes, which tests may damage, and where its
// parts went.
type built struct {
	*fixture.Image
	data []byte
}

func build(c fixture.Core) built {
	im := c.Build()
	return built{im, im.Bytes()}
}

// note encodes one ELF note with 4-byte padding after name and desc.
func note(bo binary.ByteOrder, name string, typ uint32, desc []byte) []byte {
	return vmcore.AppendNote(nil, bo, name, typ, desc)
}

const testVMCOREINFO = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82000000\n" +
	"NUMBER(phys_base)=-4096\nKERNELOFFSET=0\n"

// x86Core is a small x86_64 vmcore laid out as the kernel does it: the
// kernel-text PT_LOAD first, repeating part of a RAM PT_LOAD, then RAM
// ranges, one of them stored only in part (p_filesz < p_memsz).
func x86Core() fixture.Core {
	// The VMCOREINFO descriptor is 101 bytes: 3 bytes of padding follow.
	notes := append(fixture.PRStatus(le, elf.EM_X86_64, 1234, map[int]uint64{16: 0xffffffff81234567, 19: 0xffffc90000123f00}),
		fixture.PRStatus(le, elf.EM_X86_64, 0, map[int]uint64{16: 0xffffffff81000010, 19: 0xffffc90000200f00})...)
	notes = append(notes, fixture.VMCOREINFO(le, testVMCOREINFO+"CRASHTIME=1700000000\n\x00\x00\x00\x00")...)
	notes = append(notes, make([]byte, 16)...) // zero padding to the segment end
	return fixture.Core{
		Notes: notes,
		Loads: []fixture.Load{
			// kernel text: physical 0x104000-0x108000, inside the next-but-one
			{Vaddr: 0xffffffff81000000, Paddr: 0x104000, FileSize: 0x4000, MemSize: 0x4000},
			{Vaddr: 0xffff888000001000, Paddr: 0x1000, FileSize: 0x3000, MemSize: 0x3000},
			{Vaddr: 0xffff888000100000, Paddr: 0x100000, FileSize: 0x10000, MemSize: 0x10000},
			// touches the previous range: reads may cross from one to the other
			{Vaddr: 0xffff888000110000, Paddr: 0x110000, FileSize: 0x2000, MemSize: 0x2000},
			// stored in part: 0x200000-0x202000 present, 0x202000-0x204000 declared only
			{Vaddr: 0xffff888000200000, Paddr: 0x200000, FileSize: 0x2000, MemSize: 0x4000},
		},
	}
}
