package collect

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// A synthetic ELF vmcore for the tests.

// testCore writes an x86_64 ELF core of pages 4 KiB pages at physical 0
// (fixture.Mixed: a third each zero, random and text) with a VMCOREINFO
// note, and returns its path. Its notes are at 176, after two program
// headers, its data at 4096; like /proc/vmcore, it has no holes.
func testCore(t testing.TB, pages int) string {
	t.Helper()
	le := binary.LittleEndian
	c := fixture.Core{
		Notes: append(fixture.PRStatus(le, elf.EM_X86_64, 0, nil),
			fixture.VMCOREINFO(le, "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nCRASHTIME=1764246000\n")...),
		Loads:   []fixture.Load{fixture.RAM(0, uint64(pages), uint64(pages))},
		Content: fixture.Mixed,
	}
	p := filepath.Join(t.TempDir(), "vmcore")
	if err := os.WriteFile(p, c.Build().Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
