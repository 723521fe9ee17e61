package vmcore_test

import (
	"path/filepath"
	"testing"

	. "github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestViewPhys: a File opened with OpenMapped lends physical memory within
// a window, and one opened with Open does not.
func TestViewPhys(t *testing.T) {
	c := x86Core()
	path := filepath.Join(t.TempDir(), "core")
	if err := c.Build().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMapped(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := c.Loads[len(c.Loads)-1]
	addr := l.Paddr + 4096
	n := m.Viewable(addr)
	if n == 0 || n > l.FileSize-4096 {
		t.Fatalf("Viewable(%#x) = %d", addr, n)
	}
	if p.Viewable(addr) != 0 {
		t.Error("a File read with pread reports viewable memory")
	}
	if _, ok := p.ViewPhys(addr, 16); ok {
		t.Error("a File read with pread lent a view")
	}
	if _, ok := m.ViewPhys(addr, int(n)+1); ok {
		t.Error("ViewPhys lent more than Viewable allows")
	}
	v, ok := m.ViewPhys(addr, int(n))
	if !ok {
		t.Fatal("ViewPhys refused what Viewable allows")
	}
	for i, x := range v.Bytes() {
		if x != fixture.PatternByte(addr+uint64(i)) {
			t.Fatalf("view byte %d: %#x, want %#x", i, x, fixture.PatternByte(addr+uint64(i)))
		}
	}
	v.Release()
	v.Release() // a second release does nothing
	if m.Viewable(l.Paddr+l.MemSize+4096) != 0 {
		t.Error("memory the dump does not hold is viewable")
	}
}
