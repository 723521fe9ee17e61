package pipeline

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// Synthetic ELF vmcores for the fault and estimate tests: an x86_64 core
// with a PRSTATUS and a VMCOREINFO note and PT_LOADs whose pages are made
// by fxPage. No page tables: the page filter cannot work on them, which is
// itself one of the faults under test.

// fxLoad is one PT_LOAD: pages of memory from pfn, of which stored are in
// the file (stored < pages: a filtered or truncated segment).
type fxLoad struct {
	pfn, pages, stored uint64
}

// fxKind tells what page pfn holds: 0 zero, 1 random (incompressible) or
// 2 text-like (compressible).
func fxKind(pfn uint64) int { return int(pfn*0x9E3779B97F4A7C15>>61) % 3 }

// fxPage fills b with page pfn's contents.
func fxPage(pfn uint64, b []byte) {
	clear(b)
	switch fxKind(pfn) {
	case 1:
		r := rand.New(rand.NewPCG(pfn, 1))
		for i := 0; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
	case 2:
		r := rand.New(rand.NewPCG(pfn, 2))
		words := []string{"task_struct ", "mm ", "0xffff888012345678 ", "kmalloc-64 ", "ext4_inode "}
		var w bytes.Buffer
		for w.Len() < len(b) {
			w.WriteString(words[r.IntN(len(words))])
			if r.IntN(8) == 0 {
				w.WriteByte(byte(r.Uint32()))
			}
		}
		copy(b, w.Bytes())
	}
}

func fxNote(name string, typ uint32, desc []byte) []byte {
	return vmcore.AppendNote(nil, binary.LittleEndian, name, typ, desc)
}

// fxNotes returns a PRSTATUS note and, unless info is empty, a VMCOREINFO
// note holding info.
func fxNotes(info string) []byte {
	pr := make([]byte, 336)
	binary.LittleEndian.PutUint32(pr[32:], 1)
	n := fxNote("CORE", 1, pr)
	if info != "" {
		n = append(n, fxNote("VMCOREINFO", 0, []byte(info))...)
	}
	return n
}

const fxInfo = "OSRELEASE=6.1.0-fx\nPAGESIZE=4096\nCRASHTIME=1700000000\n"

// fxCore builds the core file with the given notes and loads.
func fxCore(notes []byte, loads []fxLoad) []byte {
	bo := binary.LittleEndian
	nph := 1 + len(loads)
	noteOff := uint64(64 + 56*nph)
	off := (noteOff + uint64(len(notes)) + 4095) &^ 4095
	hdr := make([]byte, off)
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS], hdr[elf.EI_DATA], hdr[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	bo.PutUint16(hdr[16:], uint16(elf.ET_CORE))
	bo.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	bo.PutUint32(hdr[20:], 1)
	bo.PutUint64(hdr[32:], 64)
	bo.PutUint16(hdr[52:], 64)
	bo.PutUint16(hdr[54:], 56)
	bo.PutUint16(hdr[56:], uint16(nph))
	ph := func(i int, typ elf.ProgType, off, vaddr, paddr, filesz, memsz uint64) {
		b := hdr[64+56*i:]
		bo.PutUint32(b[0:], uint32(typ))
		bo.PutUint32(b[4:], 7)
		bo.PutUint64(b[8:], off)
		bo.PutUint64(b[16:], vaddr)
		bo.PutUint64(b[24:], paddr)
		bo.PutUint64(b[32:], filesz)
		bo.PutUint64(b[40:], memsz)
	}
	ph(0, elf.PT_NOTE, noteOff, 0, 0, uint64(len(notes)), uint64(len(notes)))
	copy(hdr[noteOff:], notes)
	dataOff := off
	for i, l := range loads {
		ph(1+i, elf.PT_LOAD, dataOff, 0xffff888000000000+l.pfn<<12, l.pfn<<12, l.stored<<12, l.pages<<12)
		dataOff += l.stored << 12
	}
	out := hdr
	page := make([]byte, 4096)
	for _, l := range loads {
		for p := l.pfn; p < l.pfn+l.stored; p++ {
			fxPage(p, page)
			out = append(out, page...)
		}
	}
	return out
}

// fxOpen opens a core held in memory.
func fxOpen(t testing.TB, core []byte) *vmcore.File {
	t.Helper()
	f, err := vmcore.NewFile(bytes.NewReader(core), int64(len(core)))
	if err != nil {
		t.Fatalf("synthetic core: %v", err)
	}
	return f
}

// fxOut is a temporary output file.
func fxOut(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "dump"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
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
