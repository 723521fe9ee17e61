package pipeline

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"

	"github.com/gokdump/gokdump/internal/fixture"
)

// Synthetic ELF vmcores for the fault and estimate tests: an x86_64 core
// with a PRSTATUS and a VMCOREINFO note, and PT_LOADs of fixture.Mixed
// pages. No page tables: the page filter cannot work on them, which is
// itself one of the faults under test.

const fxInfo = "OSRELEASE=6.1.0-fx\nPAGESIZE=4096\nCRASHTIME=1700000000\n"

// fxCore returns the core file of loads (see fixture.RAM), with a
// VMCOREINFO note holding info unless info is empty.
func fxCore(info string, loads ...fixture.Load) []byte {
	le := binary.LittleEndian
	notes := fixture.PRStatus(le, elf.EM_X86_64, 1, nil)
	if info != "" {
		notes = append(notes, fixture.VMCOREINFO(le, info)...)
	}
	return fixture.Core{Notes: notes, Loads: loads, Content: fixture.Mixed}.Build().Bytes()
}

// fxNonZero counts the non-zero pages stored in loads below pfn cut.
func fxNonZero(loads []fixture.Load, cut uint64) (n uint64) {
	for _, l := range loads {
		for p := l.Paddr / 4096; p < (l.Paddr+l.FileSize)/4096 && p < cut; p++ {
			if fixture.KindOf(p) != fixture.KindZero {
				n++
			}
		}
	}
	return n
}

// fxFailReader fails reads that touch [from, to) with EIO, as reading
// memory the crashed kernel left unreadable does.
type fxFailReader struct {
	r        io.ReaderAt
	from, to int64
}

var errFxIO = errors.New("input/output error")

func (f fxFailReader) ReadAt(p []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(p)) > f.from {
		n := 0
		if off < f.from {
			n, _ = f.r.ReadAt(p[:f.from-off], off)
		}
		return n, errFxIO
	}
	return f.r.ReadAt(p, off)
}

// fxTiny is a vmcore as small as one can be, for fuzz seeds: each load's
// file data follows the notes and the one before, unaligned, and is
// filesz bytes of pattern; loads are given as (paddr, filesz, memsz).
func fxTiny(info string, loads ...[3]uint64) []byte {
	var notes []byte
	if info != "" {
		notes = fixture.VMCOREINFO(binary.LittleEndian, info)
	}
	return fxTinyNotes(notes, loads...)
}

// fxTinyNotes is fxTiny with the given notes.
func fxTinyNotes(notes []byte, loads ...[3]uint64) []byte {
	le := binary.LittleEndian
	nph := 1 + len(loads)
	off := uint64(64 + 56*nph)
	b := make([]byte, off)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS], b[elf.EI_DATA], b[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	le.PutUint16(b[16:], uint16(elf.ET_CORE))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[32:], 64)
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[54:], 56)
	le.PutUint16(b[56:], uint16(nph))
	ph := func(i int, typ elf.ProgType, off, vaddr, paddr, filesz, memsz uint64) {
		p := b[64+56*i:]
		le.PutUint32(p[0:], uint32(typ))
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], vaddr)
		le.PutUint64(p[24:], paddr)
		le.PutUint64(p[32:], filesz)
		le.PutUint64(p[40:], memsz)
	}
	ph(0, elf.PT_NOTE, off, 0, 0, uint64(len(notes)), uint64(len(notes)))
	b = append(b, notes...)
	for i, l := range loads {
		ph(1+i, elf.PT_LOAD, uint64(len(b)), fixture.PageOffset+l[0], l[0], l[1], l[2])
		for a := l[0]; a < l[0]+l[1]; a++ {
			b = append(b, fixture.PatternByte(a))
		}
	}
	return b
}
