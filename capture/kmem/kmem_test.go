package kmem

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// TestTranslateMatchesPTLoads walks the page tables for addresses of every
// PT_LOAD: the dead kernel's own mapping must agree with the ELF header's.
func TestTranslateMatchesPTLoads(t *testing.T) {
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		f := d.Open(t)
		m, err := New(f, f.VMCOREINFO, f.Machine)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for _, s := range f.Segments {
			for i := 0; i < 2000; i++ {
				off := r.Uint64N(s.MemSize) &^ 7
				pa, n, err := m.Translate(s.VirtAddr + off)
				if err != nil {
					t.Fatalf("translate %#x: %v", s.VirtAddr+off, err)
				}
				if pa != s.PhysAddr+off {
					t.Fatalf("translate %#x = %#x, PT_LOAD says %#x", s.VirtAddr+off, pa, s.PhysAddr+off)
				}
				if n == 0 || n > 1<<30 {
					t.Fatalf("translate %#x: contiguous %d", s.VirtAddr+off, n)
				}
			}
		}
		uts, err := m.ReadUTSName()
		if err != nil {
			t.Fatal(err)
		}
		if uts.Sysname != "Linux" || uts.Release != f.VMCOREINFO.OSRelease() || !strings.HasPrefix(uts.Version, "#1 SMP") {
			t.Errorf("utsname %+v", uts)
		}
		if _, _, err := m.Translate(0x0000800000000000); !errors.Is(err, ErrNotMapped) {
			t.Errorf("non-canonical address: %v", err)
		}
	})
}

func TestNoVMCOREINFO(t *testing.T) {
	if _, err := New(nil, nil, 62); !errors.Is(err, ErrMissing) {
		t.Fatalf("err = %v", err)
	}
}
