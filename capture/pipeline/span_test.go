package pipeline

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// Work proportional to the pages present, not to the address span: each
// case puts a little memory very far apart and counts the work done (pfns
// walked, bytes and blocks written), not the time taken.

// fxFar is a core of 64 pages at pfn 0 and pages more at each of pfns,
// with VMCOREINFO's MAX_PHYSMEM_BITS bits (0: none).
func fxFar(bits int, pfns ...uint64) *vmcore.File {
	loads := []fixture.Load{fixture.RAM(0, 64, 64)}
	for _, p := range pfns {
		loads = append(loads, fixture.Load{Paddr: p << 12, FileSize: 4 << 12, MemSize: 4 << 12})
	}
	info := fxInfo
	if bits > 0 {
		info += fmt.Sprintf("NUMBER(MAX_PHYSMEM_BITS)=%d\n", bits)
	}
	src, err := vmcore.NewFile(bytes.NewReader(fxCore(info, loads...)), int64(len(fxCore(info, loads...))))
	if err != nil {
		panic(err)
	}
	return src
}

// TestEstimateFarMemory: memory at pfn 2^40-8 (inside 52 address bits)
// and at 2^40 (outside): Estimate walks the pages present, as Save does,
// and both say what they left out.
func TestEstimateFarMemory(t *testing.T) {
	src := fxFar(52, 1<<40-8, 1<<40)
	start := time.Now()
	est, err := Estimate(src, []filter.Level{1, 31}, Options{Codec: codec.Zstd})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Estimate: %v, walked %d pfns", time.Since(start), est[0].walked)
	for _, e := range est {
		// 64 pages in 8-pfn bytes, 4 more widened to 8.
		if e.walked != 64+8 {
			t.Errorf("level %d: walked %d pfns, want 72", e.Level, e.walked)
		}
		if e.Pages < 64 || e.Pages > 68 {
			t.Errorf("level %d: %d pages", e.Level, e.Pages)
		}
		if !strings.Contains(strings.Join(e.Degraded, "\n"), "physical address bits") {
			t.Errorf("level %d: memory past the bound not reported: %q", e.Level, e.Degraded)
		}
	}
	for _, format := range []Format{FormatKdump, FormatELF} {
		out := &fixture.SparseFile{}
		start := time.Now()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		st, err := Save(src, out, Options{Level: 1, Format: format, Codec: codec.Zstd, Workers: 1})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s Save: %v, %d bytes written in %d writes, file %d bytes, %d bytes allocated", format,
			time.Since(start), out.Written, out.Writes, out.Size(), alloc)
		if st.MaxPFN != 1<<40 || st.PagesTotal != 68 {
			t.Errorf("%s: MaxPFN %#x, %d pages", format, st.MaxPFN, st.PagesTotal)
		}
		if out.Written > 1<<20 {
			t.Errorf("%s: %d bytes written for 68 pages", format, out.Written)
		}
		// Buffers and the compressor; nothing per pfn of the span (a
		// count per bitmap block would be 128 MiB).
		if alloc > 32<<20 {
			t.Errorf("%s: %d bytes allocated for 68 pages", format, alloc)
		}
	}
}

// TestSaveScatteredLoads: one-page PT_LOADs spread over 2^46 bytes cost
// per page, not per pfn of the span: a few bitmap bytes walked and a few
// blocks written each, in both formats; Estimate walks the same.
func TestSaveScatteredLoads(t *testing.T) {
	// More PT_LOADs than elfcore.DefaultMaxPhdrs: the ELF output takes
	// as many headers as it needs.
	n := 9000
	if testing.Short() {
		n = 2000
	}
	const span = 1 << 34 // pfns: 2^46 bytes
	loads := make([]fixture.Load, n)
	for i := range loads {
		loads[i] = fixture.RAM(uint64(i)*(span/uint64(n)), 1, 1)
	}
	core := fixture.Core{Notes: fixture.VMCOREINFO(binary.LittleEndian, fxInfo), Loads: loads, Content: fixture.Mixed}.Build()
	src, err := vmcore.NewFile(core, core.Size())
	if err != nil {
		t.Fatal(err)
	}
	p := newPlan(src, 1<<18)
	// One window of one bitmap byte each (the last cut at MaxPFN).
	if p.pfns > uint64(8*n) || p.pfns < uint64(8*n-7) || len(p.wins) != n {
		t.Errorf("plan: %d windows, %d pfns; want %d, %d", len(p.wins), p.pfns, n, 8*n)
	}
	est, err := Estimate(src, []filter.Level{31}, Options{})
	if err != nil || est[0].walked != p.pfns {
		t.Errorf("Estimate walked %d pfns, %v", est[0].walked, err)
	}
	for _, format := range []Format{FormatKdump, FormatELF} {
		out := &fixture.SparseFile{}
		start := time.Now()
		st, err := Save(src, out, Options{Level: 31, Format: format, Codec: codec.Zstd})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		t.Logf("%s: %v, %d bytes written in %d writes, %d allocated, file %d bytes", format,
			time.Since(start), out.Written, out.Writes, out.Allocated(), out.Size())
		if st.PagesTotal != uint64(n) {
			t.Errorf("%s: %d pages, want %d", format, st.PagesTotal, n)
		}
		// Per page: its data, two bitmap bytes, a descriptor or a
		// program header; a page's worth each is generous.
		if out.Written > int64(n)*8192+1<<20 || out.Writes > 8*n+1000 {
			t.Errorf("%s: %d bytes in %d writes for %d pages", format, out.Written, out.Writes, n)
		}
	}
}

// TestSaveTopOfAddressSpace: a PT_LOAD ending at 2^64-1, or wrapping,
// must not make MaxPFN wrap: the memory below is saved, the rest is
// reported, and the output is never empty.
func TestSaveTopOfAddressSpace(t *testing.T) {
	for _, top := range []fixture.Load{
		{Paddr: ^uint64(0) - 0x1fff, FileSize: 0x1000, MemSize: 0x2000},
		{Paddr: ^uint64(0) - 0x1fff, FileSize: 0x1000, MemSize: 0x10000},
	} {
		core := fxCore(fxInfo, fixture.RAM(0, 64, 64), top)
		src := fixture.OpenBytes(t, core)
		for _, format := range []Format{FormatKdump, FormatELF} {
			out := &fixture.SparseFile{}
			st, err := Save(src, out, Options{Level: 1, Format: format, Codec: codec.Zstd})
			if err != nil {
				t.Fatalf("%s %+v: %v", format, top, err)
			}
			if st.MaxPFN == 0 || st.PagesKept+st.Zero != 64 || out.Size() == 0 {
				t.Errorf("%s %+v: MaxPFN %#x, %d kept + %d zero, %d bytes", format, top, st.MaxPFN, st.PagesKept, st.Zero, out.Size())
			}
			if !strings.Contains(strings.Join(st.Degraded, "\n"), "physical address bits") {
				t.Errorf("%s: the top segment is not reported: %q", format, st.Degraded)
			}
		}
	}
}

// TestSaveCarriesIncomplete: a source flagged incomplete gives an output
// flagged incomplete, and the missing pages a source lists stay missing
// (not the zeros it holds for them).
func TestSaveCarriesIncomplete(t *testing.T) {
	core := fxCore(fxInfo, fixture.RAM(0, 64, 64))
	flagged := append([]byte(nil), core...)
	binary.LittleEndian.PutUint32(flagged[48:], vmcore.FlagIncomplete)

	// A source that lists pfns 10..19 missing (its file has zeros there).
	m := &vmcore.Missing{PageSize: 4096}
	m.Add(10, 10)
	notes := vmcore.ReplaceMissingNote(append(fixture.PRStatus(binary.LittleEndian, elf.EM_X86_64, 1, nil),
		fixture.VMCOREINFO(binary.LittleEndian, fxInfo)...), binary.LittleEndian, m)
	listed := fixture.Core{Notes: notes, Loads: []fixture.Load{fixture.RAM(0, 64, 64)}, Content: fixture.Mixed}.Build().Bytes()
	binary.LittleEndian.PutUint32(listed[48:], vmcore.FlagIncomplete)

	for _, tc := range []struct {
		name    string
		core    []byte
		missing uint64
	}{{"flagged", flagged, 0}, {"listed", listed, 10}} {
		for _, format := range []Format{FormatKdump, FormatELF} {
			t.Run(tc.name+"-"+string(format), func(t *testing.T) {
				src := fixture.OpenBytes(t, tc.core)
				out := fixture.CreateFile(t, "dump")
				st, err := Save(src, out, Options{Level: 0, Format: format, Codec: codec.Zstd})
				if !errors.Is(err, ErrIncomplete) || !st.Incomplete {
					t.Fatalf("Save: %v, want ErrIncomplete", err)
				}
				if st.Missing != tc.missing || st.PagesKept != 64-tc.missing {
					t.Errorf("missing %d, kept %d; want %d, %d", st.Missing, st.PagesKept, tc.missing, 64-tc.missing)
				}
				if tc.missing > 0 {
					fxCheckMissing(t, out, st)
				} else if d, err := diskdump.OpenFile(out.Name()); err == nil {
					if !d.Incomplete() {
						t.Error("kdump output not flagged incomplete")
					}
					d.Close()
				} else if f, err := vmcore.Open(out.Name()); err != nil || f.Flags&vmcore.FlagIncomplete == 0 {
					t.Errorf("ELF output not flagged incomplete: %v", err)
				}
			})
		}
	}
}
