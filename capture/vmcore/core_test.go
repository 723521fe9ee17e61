package vmcore

import (
	"debug/elf"
	"encoding/binary"
)

// Synthetic ELF cores built in memory, shaped like the kernel's
// /proc/vmcore: ELF header, program headers at 64, notes, page-aligned
// PT_LOAD data. The byte at physical address a is pat(a) in every segment
// that stores a, so readers can be checked without a copy of "memory".

const testPage = 4096

func pat(a uint64) byte {
	x := a * 0x9E3779B97F4A7C15
	return byte(x>>56) ^ byte(a)
}

type testLoad struct {
	vaddr, paddr  uint64
	filesz, memsz uint64
}

type testCore struct {
	bo      binary.ByteOrder
	class   elf.Class
	typ     elf.Type
	machine elf.Machine
	// notes holds one PT_NOTE segment per element.
	notes [][]byte
	loads []testLoad
	// xnum writes the program header count through PN_XNUM: e_phnum
	// 0xffff and the real count in section 0's sh_info.
	xnum bool
}

// builtCore is a built file and where its parts went.
type builtCore struct {
	data       []byte
	noteOffs   []uint64
	loadOffs   []uint64
	shoff      uint64
	phoff      uint64
	phdrOffset func(i int) uint64
}

func (c *testCore) build() builtCore {
	bo := c.bo
	if bo == nil {
		bo = binary.LittleEndian
	}
	nph := len(c.notes) + len(c.loads)
	phoff := uint64(64)
	end := phoff + uint64(nph)*56
	var shoff uint64
	if c.xnum {
		shoff = end
		end += 64
	}
	var b builtCore
	b.phoff = phoff
	b.shoff = shoff
	b.phdrOffset = func(i int) uint64 { return phoff + uint64(i)*56 }
	for _, n := range c.notes {
		end = (end + 3) &^ 3
		b.noteOffs = append(b.noteOffs, end)
		end += uint64(len(n))
	}
	for _, l := range c.loads {
		end = (end + testPage - 1) &^ (testPage - 1)
		b.loadOffs = append(b.loadOffs, end)
		end += l.filesz
	}
	buf := make([]byte, end)
	copy(buf, elf.ELFMAG)
	class := c.class
	if class == 0 {
		class = elf.ELFCLASS64
	}
	buf[elf.EI_CLASS] = byte(class)
	if bo == binary.BigEndian {
		buf[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
	} else {
		buf[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	}
	buf[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	typ := c.typ
	if typ == 0 {
		typ = elf.ET_CORE
	}
	machine := c.machine
	if machine == 0 {
		machine = elf.EM_X86_64
	}
	bo.PutUint16(buf[16:], uint16(typ))
	bo.PutUint16(buf[18:], uint16(machine))
	bo.PutUint32(buf[20:], uint32(elf.EV_CURRENT))
	bo.PutUint64(buf[32:], phoff)
	bo.PutUint64(buf[40:], shoff)
	bo.PutUint16(buf[52:], 64)
	bo.PutUint16(buf[54:], 56)
	if c.xnum {
		bo.PutUint16(buf[56:], 0xffff)
		bo.PutUint16(buf[58:], 64)
		bo.PutUint16(buf[60:], 1)
		bo.PutUint32(buf[shoff+44:], uint32(nph)) // sh_info
		bo.PutUint64(buf[shoff+32:], 1)           // sh_size: e_shnum
	} else {
		bo.PutUint16(buf[56:], uint16(nph))
	}
	ph := phoff
	for i, n := range c.notes {
		p := buf[ph:]
		bo.PutUint32(p[0:], uint32(elf.PT_NOTE))
		bo.PutUint64(p[8:], b.noteOffs[i])
		bo.PutUint64(p[32:], uint64(len(n)))
		bo.PutUint64(p[40:], uint64(len(n)))
		copy(buf[b.noteOffs[i]:], n)
		ph += 56
	}
	for i, l := range c.loads {
		p := buf[ph:]
		bo.PutUint32(p[0:], uint32(elf.PT_LOAD))
		bo.PutUint32(p[4:], uint32(elf.PF_R|elf.PF_W|elf.PF_X))
		bo.PutUint64(p[8:], b.loadOffs[i])
		bo.PutUint64(p[16:], l.vaddr)
		bo.PutUint64(p[24:], l.paddr)
		bo.PutUint64(p[32:], l.filesz)
		bo.PutUint64(p[40:], l.memsz)
		for a := uint64(0); a < l.filesz; a++ {
			buf[b.loadOffs[i]+a] = pat(l.paddr + a)
		}
		ph += 56
	}
	b.data = buf
	return b
}

// note encodes one ELF note with 4-byte padding after name and desc.
func note(bo binary.ByteOrder, name string, typ uint32, desc []byte) []byte {
	return AppendNote(nil, bo, name, typ, desc)
}

// prstatus builds an LP64 elf_prstatus with pid and nregs registers,
// register i holding regs[i].
func prstatus(bo binary.ByteOrder, pid int32, nregs int, regs map[int]uint64) []byte {
	d := make([]byte, prRegOff+8*nregs+8)
	bo.PutUint32(d[prPIDOff:], uint32(pid))
	for i, v := range regs {
		bo.PutUint64(d[prRegOff+8*i:], v)
	}
	return d
}

const testVMCOREINFO = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82000000\n" +
	"NUMBER(phys_base)=-4096\nKERNELOFFSET=0\n"

// x86Core is a small x86_64 vmcore laid out as the kernel does it: the
// kernel-text PT_LOAD first, repeating part of a RAM PT_LOAD, then RAM
// ranges, one of them stored only in part (p_filesz < p_memsz).
func x86Core() *testCore {
	bo := binary.LittleEndian
	// The VMCOREINFO descriptor is 101 bytes: 3 bytes of padding follow.
	vi := []byte(testVMCOREINFO + "CRASHTIME=1700000000\n\x00\x00\x00\x00")
	notes := append(note(bo, "CORE", NT_PRSTATUS, prstatus(bo, 1234, 27, map[int]uint64{16: 0xffffffff81234567, 19: 0xffffc90000123f00})),
		note(bo, "CORE", NT_PRSTATUS, prstatus(bo, 0, 27, map[int]uint64{16: 0xffffffff81000010, 19: 0xffffc90000200f00}))...)
	notes = append(notes, note(bo, NoteVMCOREINFO, 0, vi)...)
	notes = append(notes, make([]byte, 16)...) // zero padding to the segment end
	return &testCore{
		bo:      bo,
		machine: elf.EM_X86_64,
		notes:   [][]byte{notes},
		loads: []testLoad{
			// kernel text: physical 0x104000-0x108000, inside the next-but-one
			{vaddr: 0xffffffff81000000, paddr: 0x104000, filesz: 0x4000, memsz: 0x4000},
			{vaddr: 0xffff888000001000, paddr: 0x1000, filesz: 0x3000, memsz: 0x3000},
			{vaddr: 0xffff888000100000, paddr: 0x100000, filesz: 0x10000, memsz: 0x10000},
			// touches the previous range: reads may cross from one to the other
			{vaddr: 0xffff888000110000, paddr: 0x110000, filesz: 0x2000, memsz: 0x2000},
			// stored in part: 0x200000-0x202000 present, 0x202000-0x204000 declared only
			{vaddr: 0xffff888000200000, paddr: 0x200000, filesz: 0x2000, memsz: 0x4000},
		},
	}
}
