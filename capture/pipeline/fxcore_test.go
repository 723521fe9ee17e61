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
