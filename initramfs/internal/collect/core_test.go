package collect

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// A synthetic ELF vmcore for the tests.

// testCore writes an x86_64 ELF core of pages 4 KiB pages at physical 0 (a
// third zero, a third random, a third text) with a VMCOREINFO note, and
// returns its path.
func testCore(t testing.TB, pages int) string {
	t.Helper()
	bo := binary.LittleEndian
	note := func(name string, typ uint32, desc []byte) []byte {
		return vmcore.AppendNote(nil, bo, name, typ, desc)
	}
	notes := append(note("CORE", 1, make([]byte, 336)),
		note("VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-test\nPAGESIZE=4096\nCRASHTIME=1764246000\n"))...)
	hdr := make([]byte, 4096)
	copy(hdr, elf.ELFMAG)
	hdr[4], hdr[5], hdr[6] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	bo.PutUint16(hdr[16:], uint16(elf.ET_CORE))
	bo.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	bo.PutUint32(hdr[20:], 1)
	bo.PutUint64(hdr[32:], 64)
	bo.PutUint16(hdr[52:], 64)
	bo.PutUint16(hdr[54:], 56)
	bo.PutUint16(hdr[56:], 2)
	ph := func(i int, typ elf.ProgType, off, vaddr, paddr, size uint64) {
		b := hdr[64+56*i:]
		bo.PutUint32(b[0:], uint32(typ))
		bo.PutUint64(b[8:], off)
		bo.PutUint64(b[16:], vaddr)
		bo.PutUint64(b[24:], paddr)
		bo.PutUint64(b[32:], size)
		bo.PutUint64(b[40:], size)
	}
	ph(0, elf.PT_NOTE, 176, 0, 0, uint64(len(notes)))
	copy(hdr[176:], notes)
	ph(1, elf.PT_LOAD, 4096, 0xffff888000000000, 0, uint64(pages)*4096)
	var b bytes.Buffer
	b.Write(hdr)
	r := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, 4096)
	for i := 0; i < pages; i++ {
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
