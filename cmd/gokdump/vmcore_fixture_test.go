package main

import (
	"debug/elf"
	"encoding/binary"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
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
	c := fixture.Core{
		Notes:   append(fixture.PRStatus(bo, elf.EM_X86_64, 1, nil), fixture.VMCOREINFO(bo, info)...),
		Content: thirds,
	}
	for _, m := range mem {
		c.Loads = append(c.Loads, fixture.RAM(m.pfn, m.pages, m.pages))
	}
	p := filepath.Join(t.TempDir(), "vmcore")
	if err := c.Build().WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// thirds fills pfn by pfn%3: zero, random, text, so that counts of zero
// pages in a test's output are known.
func thirds(pfn uint64, page []byte) {
	switch pfn % 3 {
	case 0:
		fixture.Zero(pfn, page)
	case 1:
		fixture.Random(pfn, page)
	default:
		fixture.Text(pfn, page)
	}
}
