package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// testVmcore writes an x86_64 ELF vmcore of pages 4 KiB pages at physical
// 0 (a third zero, a third random, a third text) with a PRSTATUS note and
// a VMCOREINFO note carrying crashTime (none when 0), and returns its path.
func testVmcore(t testing.TB, pages int, crashTime int64) string {
	t.Helper()
	return testVmcoreAt(t, crashTime, memRange{0, uint64(pages)})
}

// memRange is a PT_LOAD of a test vmcore: pages from pfn.
type memRange struct{ pfn, pages uint64 }

// testVmcoreAt is testVmcore with memory in the given ranges.
func testVmcoreAt(t testing.TB, crashTime int64, mem ...memRange) string {
	t.Helper()
	bo := binary.LittleEndian
	info := "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"
	if crashTime != 0 {
		info += "CRASHTIME=" + strconv.FormatInt(crashTime, 10) + "\n"
	}
	notes := vmcore.AppendNote(nil, bo, "CORE", 1, make([]byte, 336))
	notes = vmcore.AppendNote(notes, bo, "VMCOREINFO", 0, []byte(info))
	hdr := make([]byte, 4096)
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS], hdr[elf.EI_DATA], hdr[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	bo.PutUint16(hdr[16:], uint16(elf.ET_CORE))
	bo.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	bo.PutUint32(hdr[20:], 1)
	bo.PutUint64(hdr[32:], 64)
	bo.PutUint16(hdr[52:], 64)
	bo.PutUint16(hdr[54:], 56)
	bo.PutUint16(hdr[56:], uint16(1+len(mem)))
	ph := func(i int, typ elf.ProgType, off, vaddr, paddr, size uint64) {
		b := hdr[64+56*i:]
		bo.PutUint32(b[0:], uint32(typ))
		bo.PutUint64(b[8:], off)
		bo.PutUint64(b[16:], vaddr)
		bo.PutUint64(b[24:], paddr)
		bo.PutUint64(b[32:], size)
		bo.PutUint64(b[40:], size)
	}
	noteOff := 64 + 56*(1+len(mem))
	ph(0, elf.PT_NOTE, uint64(noteOff), 0, 0, uint64(len(notes)))
	copy(hdr[noteOff:], notes)
	off, total := uint64(4096), 0
	for i, m := range mem {
		ph(1+i, elf.PT_LOAD, off, 0xffff888000000000+m.pfn*4096, m.pfn*4096, m.pages*4096)
		off += m.pages * 4096
		total += int(m.pages)
	}
	var b bytes.Buffer
	b.Write(hdr)
	r := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, 4096)
	for i := range total {
		clear(page)
		switch i % 3 {
		case 1:
			for j := range page {
				page[j] = byte(r.Uint32())
			}
		case 2:
			copy(page, strings.Repeat("kmalloc-64 task_struct ", 150))
		}
		b.Write(page)
	}
	p := filepath.Join(t.TempDir(), "vmcore")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
