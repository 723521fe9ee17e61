package pipeline

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// Faults of the input: Save must not panic, must keep every page it
// cannot judge, and must say what it left out or could not do.

// fxCheckOutput opens a saved dump and compares every page it holds with
// the source; pages in zeroAt must read as zeros.
func fxCheckOutput(t *testing.T, out *os.File, src *vmcore.File, zeroAt func(pfn uint64) bool) (held uint64) {
	t.Helper()
	d, err := anydump.Open(out.Name())
	if err != nil {
		t.Fatalf("output does not open: %v", err)
	}
	defer d.Close()
	a, b := make([]byte, d.PageSize), make([]byte, d.PageSize)
	for pfn, err := range d.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.ReadPhys(a, pfn*uint64(d.PageSize)); err != nil {
			t.Fatalf("output pfn %#x: %v", pfn, err)
		}
		if zeroAt != nil && zeroAt(pfn) {
			clear(b)
		} else if n, err := src.ReadPhys(b, pfn*uint64(d.PageSize)); err != nil {
			if !errors.Is(err, vmcore.ErrHole) || n == 0 {
				t.Fatalf("source pfn %#x: %v", pfn, err)
			}
			// A page the source holds in part: the rest is saved as zeros.
			clear(b[n:])
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("pfn %#x differs from the source", pfn)
		}
		held++
	}
	return held
}

// TestSaveTruncatedSource: a /proc/vmcore copy cut short is missing the
// memory past the cut: Save keeps everything it holds, leaves the rest
// out (neither zero nor kept), lists it in the output's GOKDUMP note and
// in the stats, flags the output incomplete, and says so with
// ErrIncomplete. Cut in the first page's data, nothing is complete.
func TestSaveTruncatedSource(t *testing.T) {
	loads := []fixture.Load{fixture.RAM(0, 512, 512), fixture.RAM(1024, 512, 512)}
	core := fxCore(fxInfo, loads...)
	hdr := len(core) - 1024*4096
	for _, cut := range []int{hdr + 700*4096, hdr + 700*4096 + 123, hdr + 100} {
		for _, format := range []Format{FormatKdump, FormatELF} {
			t.Run(fmt.Sprintf("%s-cut%d", format, cut-hdr), func(t *testing.T) {
				src := fixture.OpenBytes(t, core[:cut])
				out := fixture.CreateFile(t, "dump")
				var logs []string
				st, err := Save(src, out, Options{Level: 1, Codec: codec.Zstd, Format: format,
					Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
				if !errors.Is(err, ErrIncomplete) || !st.Incomplete {
					t.Fatalf("Save: %v (incomplete %v), want ErrIncomplete", err, st.Incomplete)
				}
				whole := uint64(cut-hdr) / 4096      // whole pages stored
				storedPFN := func(i uint64) uint64 { // the i'th stored page's pfn
					if i < 512 {
						return i
					}
					return 1024 + i - 512
				}
				cutPFN := storedPFN(whole)
				if want := fxNonZero(loads, cutPFN); st.PagesKept != want {
					t.Errorf("kept %d pages, want the %d non-zero pages before the cut", st.PagesKept, want)
				}
				if st.Missing != 1024-whole || st.Absent != 0 || st.Unreadable != 0 {
					t.Errorf("missing %d, absent %d, unreadable %d; want %d missing", st.Missing, st.Absent, st.Unreadable, 1024-whole)
				}
				if m := st.MissingList; m == nil || m.Pages != st.Missing || m.Ranges[0].Start != cutPFN {
					t.Errorf("missing list %+v, want %d pages from pfn %#x", m, st.Missing, cutPFN)
				}
				if !strings.Contains(err.Error(), "missing") || !strings.Contains(strings.Join(logs, "\n"), "missing:") {
					t.Errorf("error %q, logs %q: the missing memory is not named", err, logs)
				}
				var tbl strings.Builder
				st.WriteTable(&tbl)
				if !strings.Contains(tbl.String(), "Missing") || !strings.Contains(st.Summary(), "missing") {
					t.Errorf("the report does not say pages were missing:\n%s\n%s", tbl.String(), st.Summary())
				}
				fxCheckMissing(t, out, st)
				fxCheckOutput(t, out, src, nil)
			})
		}
	}
}

// fxCheckMissing opens a saved dump: it must be flagged incomplete, list
// st's missing pages in its GOKDUMP note, and not hold any of them.
func fxCheckMissing(t *testing.T, out *os.File, st *Stats) {
	t.Helper()
	d, err := anydump.Open(out.Name())
	if err != nil {
		t.Fatalf("output does not open: %v", err)
	}
	defer d.Close()
	if !d.Incomplete {
		t.Error("output not flagged incomplete")
	}
	var m *vmcore.Missing
	switch {
	case d.KdumpFile != nil:
		m, err = vmcore.MissingFromNotes(d.KdumpFile.Notes, binary.LittleEndian)
	default:
		m = d.ELF.Missing
	}
	if err != nil || !reflect.DeepEqual(m, st.MissingList) {
		t.Fatalf("output lists missing %+v (%v), want %+v", m, err, st.MissingList)
	}
	buf := make([]byte, d.PageSize)
	for _, r := range m.Ranges {
		for _, pfn := range []uint64{r.Start, r.End() - 1} {
			if _, err := d.ReadPhys(buf, pfn*uint64(d.PageSize)); !errors.Is(err, vmcore.ErrHole) {
				t.Errorf("missing pfn %#x reads: %v", pfn, err)
			}
		}
	}
	for pfn, err := range d.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		if m.Contains(pfn) {
			t.Fatalf("missing pfn %#x is in the output", pfn)
		}
	}
}

// TestSaveWithoutVMCOREINFO: without VMCOREINFO (or with one that does
// not locate struct pages) nothing can be classified: every page is kept
// but zero pages (found by content), and Degraded says why.
func TestSaveWithoutVMCOREINFO(t *testing.T) {
	loads := []fixture.Load{fixture.RAM(0, 600, 600)}
	for _, tc := range []struct{ name, info string }{
		{"missing", ""},
		{"no-layout", fxInfo},
		{"absurd", fxInfo + "SYMBOL(mem_section)=ffffffffffffffff\nSIZE(mem_section)=0\nOFFSET(mem_section.section_mem_map)=99999999\n" +
			"NUMBER(SECTION_SIZE_BITS)=200\nNUMBER(MAX_PHYSMEM_BITS)=-1\nSIZE(page)=1099511627776\nOFFSET(page.flags)=-8\n" +
			"SYMBOL(init_top_pgt)=0\nNUMBER(phys_base)=99999999999999999999\nKERNELOFFSET=zz\nLENGTH(mem_section)=-1\n"},
		{"not-text", fxInfo + "\x00\xff\xfe=\n=\n\n==x\nOFFSET(page.flags)\n"},
		{"page-tables-outside-memory", fxInfo + "SYMBOL(init_top_pgt)=ffffffff82000000\nNUMBER(phys_base)=1000000000\nKERNELOFFSET=0\n" +
			"SYMBOL(mem_section)=ffff888000100000\nSIZE(mem_section)=16\nOFFSET(mem_section.section_mem_map)=0\n" +
			"NUMBER(SECTION_SIZE_BITS)=27\nNUMBER(MAX_PHYSMEM_BITS)=46\nSIZE(page)=64\nOFFSET(page.flags)=0\n"},
	} {
		for _, format := range []Format{FormatKdump, FormatELF} {
			t.Run(tc.name+"-"+string(format), func(t *testing.T) {
				src := fixture.OpenBytes(t, fxCore(tc.info, loads...))
				out := fixture.CreateFile(t, "dump")
				st, err := Save(src, out, Options{Level: 31, Codec: codec.Zstd, Format: format})
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				if want := fxNonZero(loads, 1<<62); st.PagesKept != want {
					t.Errorf("kept %d pages, want all %d non-zero ones", st.PagesKept, want)
				}
				if len(st.Degraded) == 0 {
					t.Errorf("Degraded is empty, want a note of what could not be filtered")
				}
				fxCheckOutput(t, out, src, nil)
			})
		}
	}
}

// TestSaveUnreadablePages: pages whose read fails (memory the crashed
// kernel cannot give back) are missing: left out, listed, counted; the
// dump goes on past them and is flagged incomplete.
func TestSaveUnreadablePages(t *testing.T) {
	core := fxCore(fxInfo, fixture.RAM(0, 300, 300))
	data := int64(len(core) - 300*4096)
	from, to := data+100*4096+17, data+140*4096 // pfns 100..139
	for _, format := range []Format{FormatKdump, FormatELF} {
		t.Run(string(format), func(t *testing.T) {
			src, err := vmcore.NewFile(fxFailReader{bytes.NewReader(core), from, to}, int64(len(core)))
			if err != nil {
				t.Fatal(err)
			}
			var logs []string
			out := fixture.CreateFile(t, "dump")
			st, err := Save(src, out, Options{Level: 0, Codec: codec.Zstd, Format: format,
				Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Save: %v, want ErrIncomplete", err)
			}
			if st.Unreadable != 40 || st.Missing != 40 || st.PagesKept != 260 {
				t.Errorf("%d unreadable, %d missing, %d kept; want 40, 40, 260", st.Unreadable, st.Missing, st.PagesKept)
			}
			if want := []vmcore.PFNRange{{Start: 100, Pages: 40}}; st.MissingList == nil || !reflect.DeepEqual(st.MissingList.Ranges, want) {
				t.Errorf("missing list %+v", st.MissingList)
			}
			if !strings.Contains(strings.Join(logs, "\n"), "unreadable") {
				t.Errorf("nothing logged about unreadable pages: %q", logs)
			}
			fxCheckMissing(t, out, st)
			good := bytes.NewReader(core)
			ref, _ := vmcore.NewFile(good, int64(len(core)))
			if n := fxCheckOutput(t, out, ref, nil); n != 260 {
				t.Errorf("output holds %d pages, want 260", n)
			}
		})
	}
}

// TestSaveOutputFails: an output that fails part-way leaves a readable
// dump flagged incomplete and an error wrapping ErrIncomplete.
func TestSaveOutputFails(t *testing.T) {
	src := fixture.OpenBytes(t, fxCore(fxInfo, fixture.RAM(0, 4096, 4096)))
	for _, format := range []Format{FormatKdump, FormatELF} {
		t.Run(string(format), func(t *testing.T) {
			out := fixture.CreateFile(t, "dump")
			full := &fxFullFile{f: out, limit: 4 << 20}
			st, err := Save(src, full, Options{Level: 1, Codec: codec.None, Format: format})
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Save on a full disk: %v, want ErrIncomplete", err)
			}
			if st == nil || !st.Incomplete {
				t.Errorf("stats do not say incomplete: %+v", st)
			}
			d, err := anydump.Open(out.Name())
			if err != nil {
				t.Fatalf("incomplete dump does not open: %v", err)
			}
			defer d.Close()
			if !d.Incomplete {
				t.Error("dump not flagged incomplete")
			}
		})
	}
}

// fxFullFile is a file on a disk that fills at limit bytes.
type fxFullFile struct {
	f     *os.File
	limit int64
}

func (w *fxFullFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= w.limit {
		return w.f.WriteAt(p, off)
	}
	n := 0
	if off < w.limit {
		n, _ = w.f.WriteAt(p[:w.limit-off], off)
	}
	return n, errors.New("no space left on device")
}

func (w *fxFullFile) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }

// TestSaveRealBadVMCOREINFO edits the VMCOREINFO of the real dumps the
// QEMU tests keep (same length, through an overlay) so that it points
// the filter at memory that is not there, or at absurd sizes: every page
// must be kept (zero pages aside), and the run must say why.
func TestSaveRealBadVMCOREINFO(t *testing.T) {
	fxEachRealDump(t, func(t *testing.T, f *os.File, size int64) {
		head := make([]byte, 1<<16)
		f.ReadAt(head, 0)
		for _, tc := range []struct {
			name, key, value string
		}{
			// mem_section somewhere no page table maps: no struct page reads.
			{"mem_section-unmapped", "SYMBOL(mem_section)=", "ffffc90000000000"},
			{"section-bits-absurd", "NUMBER(SECTION_SIZE_BITS)=", "99"},
			{"page-size-absurd", "SIZE(page)=", "9"},
			{"no-page-tables", "SYMBOL(init_top_pgt)=", "0000000000000000"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				i := bytes.Index(head, []byte("\n"+tc.key))
				if i < 0 {
					t.Skipf("%s not in the VMCOREINFO of %s", tc.key, filepath.Base(f.Name()))
				}
				at := i + 1 + len(tc.key)
				end := at + bytes.IndexByte(head[at:], '\n')
				val := []byte(tc.value)
				if len(val) > end-at {
					t.Skipf("%s value %q longer than %q", tc.key, val, head[at:end])
				}
				// Same length: pad with leading zeros (or cut a shorter one).
				patch := append(bytes.Repeat([]byte("0"), end-at-len(val)), val...)
				r := &fxPatched{r: f, at: int64(at), b: patch}
				src, err := vmcore.NewFile(r, size)
				if err != nil {
					t.Fatal(err)
				}
				out := fixture.CreateFile(t, "dump")
				var logs []string
				st, err := Save(src, out, Options{Level: 31, Codec: codec.Snappy,
					Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				excluded := st.Cache + st.CachePriv + st.User + st.Free
				t.Logf("%s: kept %d, zero %d, classes excluded %d; degraded %q", tc.name, st.PagesKept, st.Zero, excluded, st.Degraded)
				if excluded != 0 {
					t.Errorf("%d pages excluded by class with a broken VMCOREINFO", excluded)
				}
				if st.PagesKept+st.Zero+st.Absent+st.HWPoison+st.Offline != st.PagesTotal {
					t.Errorf("pages: %d kept + %d zero + %d absent != %d total", st.PagesKept, st.Zero, st.Absent, st.PagesTotal)
				}
				if len(st.Degraded) == 0 && len(logs) == 0 {
					t.Error("nothing says the filter could not work")
				}
				t.Logf("notes: %q", logs)
			})
		}
	})
}

// TestSaveRealDamagedNote damages the first note of a real vmcore (the
// boot CPU's PRSTATUS, as a kernel dying mid-way through crash_save_cpu
// could): the dump still filters with the VMCOREINFO found past it, says
// what it dropped, and opens with the notes that survived.
func TestSaveRealDamagedNote(t *testing.T) {
	fxEachRealDump(t, func(t *testing.T, f *os.File, size int64) {
		orig, err := vmcore.NewFile(f, size)
		if err != nil {
			t.Fatal(err)
		}
		first := orig.Notes[0]
		if first.Name != "CORE" || first.Type != vmcore.NT_PRSTATUS {
			t.Skipf("first note is %s %d", first.Name, first.Type)
		}
		// descsz far past the segment.
		r := &fxPatched{r: f, at: first.Offset + 4, b: []byte{0, 0, 0, 0x10}}
		src, err := vmcore.NewFile(r, size)
		if err != nil {
			t.Fatalf("NewFile with a damaged note: %v", err)
		}
		if !errors.Is(src.NoteErr, vmcore.ErrCorrupt) || src.VMCOREINFO == nil {
			t.Fatalf("NoteErr %v, VMCOREINFO kept: %v", src.NoteErr, src.VMCOREINFO != nil)
		}
		out := fixture.CreateFile(t, "dump")
		st, err := Save(src, out, Options{Level: 31, Codec: codec.Snappy})
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		if st.Free == 0 || st.User+st.Cache == 0 {
			t.Errorf("not filtered: %+v", st)
		}
		if len(st.Degraded) == 0 || !strings.Contains(st.Degraded[0], "damaged notes") {
			t.Errorf("degraded: %q", st.Degraded)
		}
		d, err := diskdump.OpenFile(out.Name())
		if err != nil {
			t.Fatalf("output does not open: %v", err)
		}
		defer d.Close()
		if d.VMCOREINFO == nil || d.VMCOREINFO.OSRelease() != orig.VMCOREINFO.OSRelease() {
			t.Errorf("output VMCOREINFO: %v", d.VMCOREINFO)
		}
		if len(d.Notes) != len(src.Notes) {
			t.Errorf("output has %d notes, want the %d that parsed", len(d.Notes), len(src.Notes))
		}
	})
}

// fxEachRealDump runs f on the file of each real dump, open. Not in
// -short: the tests that use it save whole dumps.
func fxEachRealDump(t *testing.T, f func(t *testing.T, fh *os.File, size int64)) {
	if testing.Short() {
		t.Skip("saves whole real dumps")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		fh, err := os.Open(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		fi, err := fh.Stat()
		if err != nil {
			t.Fatal(err)
		}
		f(t, fh, fi.Size())
	})
}

// fxPatched overlays b at offset at of r.
type fxPatched struct {
	r  *os.File
	at int64
	b  []byte
}

func (p *fxPatched) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	lo, hi := max(off, p.at), min(off+int64(n), p.at+int64(len(p.b)))
	if lo < hi {
		copy(b[lo-off:hi-off], p.b[lo-p.at:hi-p.at])
	}
	return n, err
}

// FuzzSaveHostile feeds Save and Estimate hostile vmcores built from a
// few fuzzed values (FuzzNewFile fuzzes the parsing of raw ELF bytes):
// up to eight PT_LOADs placed anywhere (segs: 8 bytes each), a VMCOREINFO
// text, flags for a PRSTATUS note, a GOKDUMP missing-memory note, a
// damaged first note and e_flags incomplete, and where to cut the file.
// No panic; work bounded by what the file holds (outputs are sparse, so
// memory claimed anywhere costs what is written); a dump that does not
// fail reads back whole. The inputs stay a few dozen bytes, so that each
// runs in well under a millisecond and minimizing one is quick.
func FuzzSaveHostile(f *testing.F) {
	seg := func(page uint16, shift, pages, memShift, stored, flags byte) []byte {
		return []byte{byte(page), byte(page >> 8), shift, pages, memShift, stored, flags, 0}
	}
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	f.Add(seg(0, 12, 2, 12, 128, 1), fxInfo, uint8(1), uint16(0))
	f.Add(cat(seg(3, 12, 2, 12, 64, 1), seg(1, 12, 2, 12, 128, 0)), "", uint8(0), uint16(40000))
	f.Add(cat(seg(0, 12, 1, 12, 64, 1), seg(1, 51, 1, 12, 64, 0), seg(0xffff, 48, 255, 60, 0, 0)),
		fxInfo+"NUMBER(MAX_PHYSMEM_BITS)=52\n", uint8(3), uint16(0))
	f.Add(cat(seg(1, 12, 4, 12, 255, 1), seg(2, 12, 1, 12, 64, 1)), fxInfo, uint8(2|4|8), uint16(60000))
	// Claims without data: far declared memory, a huge truncated segment.
	f.Add(cat(seg(1, 12, 2, 12, 1, 1), seg(1, 40, 1, 63, 0, 0)), fxInfo, uint8(0), uint16(0))
	f.Add(cat(seg(1, 12, 2, 12, 200, 1), seg(4, 40, 1, 40, 255, 0)), fxInfo, uint8(0), uint16(50000))

	// Claims of memory without data are walked up to claimedFree pages:
	// fewer here, so that claims take the bounded path sooner.
	defer func(n uint64) { claimedFree = n }(claimedFree)
	claimedFree = 64
	f.Fuzz(func(t *testing.T, segs []byte, info string, flags uint8, cut uint16) {
		fxSaveHostile(t, fxHostileCore(segs, info, flags, cut))
	})
}

// TestSaveHostileInputs runs the fuzz target's checks on the hostile
// vmcores kept in testdata/hostile (found by fuzzing raw ELF files).
func TestSaveHostileInputs(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.core"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, name := range names {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			fxSaveHostile(t, b)
		})
	}
}

// fxHostileCore builds the vmcore FuzzSaveHostile describes.
func fxHostileCore(segs []byte, info string, flags uint8, cut uint16) []byte {
	le := binary.LittleEndian
	var loads []fixture.Load
	for i := 0; i+8 <= len(segs) && len(loads) < 8; i += 8 {
		b := segs[i:]
		l := fixture.Load{
			Paddr:   uint64(le.Uint16(b)) << (b[2] & 63),
			MemSize: uint64(b[3]) << (b[4] & 63),
		}
		l.FileSize = min(l.MemSize, uint64(b[5])*64) // at most 16 KiB of data
		if b[6]&1 != 0 {
			l.Vaddr = fixture.PageOffset + l.Paddr
		}
		l.Skew = uint64(b[6] >> 1)
		loads = append(loads, l)
	}
	var notes []byte
	if flags&4 != 0 {
		// A first note whose descsz overruns the segment.
		notes = vmcore.AppendNote(nil, le, "CORE", vmcore.NT_PRSTATUS, make([]byte, 8))
		le.PutUint32(notes[4:], 1<<20)
	}
	if flags&1 != 0 {
		notes = append(notes, fixture.PRStatus(le, elf.EM_X86_64, 1, nil)...)
	}
	if info != "" {
		notes = append(notes, fixture.VMCOREINFO(le, info)...)
	}
	if flags&2 != 0 && len(loads) > 0 {
		m := &vmcore.Missing{PageSize: 4096}
		m.Add(loads[0].Paddr/4096, 1+uint64(flags>>5))
		notes = vmcore.ReplaceMissingNote(notes, le, m)
	}
	b := fixture.Core{Notes: notes, Loads: loads, Content: fixture.Mixed}.Build().Bytes()
	if flags&8 != 0 {
		le.PutUint32(b[48:], vmcore.FlagIncomplete)
	}
	if cut != 0 {
		b = b[:uint64(len(b))*uint64(cut)>>16]
	}
	return b
}

// fxSaveHostile saves the vmcore data in both formats and estimates it:
// no panic, bounded output, and a dump that does not fail reads back.
func fxSaveHostile(t *testing.T, data []byte) {
	src, err := vmcore.NewFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return
	}
	opts := Options{Level: 31, Codec: codec.Snappy, Workers: 1, ChunkPages: 64}
	if _, err := Estimate(src, []filter.Level{1, 31}, opts); err != nil {
		t.Fatalf("Estimate: %v", err)
	}
	for _, format := range []Format{FormatKdump, FormatELF} {
		opts.Format = format
		out := &fixture.SparseFile{Limit: 1 << 40}
		st, err := Save(src, out, opts)
		if out.Written > 2*int64(len(data))+1<<20 {
			t.Fatalf("%s: %d bytes written from a %d-byte vmcore", format, out.Written, len(data))
		}
		if err != nil && !errors.Is(err, ErrIncomplete) {
			continue
		}
		if st.MaxPFN > 1<<20 {
			continue // reading back walks whole bitmaps: not this target's concern
		}
		fxReadBack(t, format, out, src)
	}
}

// fxReadBack opens a saved dump and reads every page it holds.
func fxReadBack(t *testing.T, format Format, out *fixture.SparseFile, src *vmcore.File) {
	var phys interface {
		ReadPhys([]byte, uint64) (int, error)
	}
	var pages func(func(uint64) bool)
	switch format {
	case FormatKdump:
		d, err := diskdump.Open(out, out.Size())
		if err != nil {
			if src.NoteErr != nil && errors.Is(err, vmcore.ErrCorrupt) {
				return // notes the source had damaged, copied as they are
			}
			t.Fatalf("Save succeeded but its kdump output does not open: %v", err)
		}
		phys = d
		pages = func(yield func(uint64) bool) {
			for pfn, err := range d.DumpedPFNs() {
				if err != nil {
					t.Fatalf("pfns of the output: %v", err)
				}
				if !yield(pfn) {
					return
				}
			}
		}
	case FormatELF:
		d, err := vmcore.NewFile(out, out.Size())
		if err != nil {
			t.Fatalf("Save succeeded but its ELF output does not open: %v", err)
		}
		phys = d
		pages = func(yield func(uint64) bool) {
			for _, r := range d.PhysRanges() {
				for pfn := r.Start / uint64(d.PageSize); pfn*uint64(d.PageSize) < r.FileEnd; pfn++ {
					if !yield(pfn) {
						return
					}
				}
			}
		}
	}
	buf := make([]byte, src.PageSize)
	for pfn := range pages {
		if _, err := phys.ReadPhys(buf, pfn*uint64(src.PageSize)); err != nil && !errors.Is(err, vmcore.ErrHole) {
			t.Fatalf("%s output: pfn %#x: %v", format, pfn, err)
		}
	}
}

// TestSaveRealCut saves the real dumps cut to 300 MiB and to 100 KiB, as
// a copy cut short would be: the output is flagged incomplete, lists the
// memory past the cut as missing (about what the cut took), holds only
// pages before it, and Save's error wraps ErrIncomplete.
func TestSaveRealCut(t *testing.T) {
	fxEachRealDump(t, func(t *testing.T, f *os.File, size int64) {
		for _, cut := range []int64{300 << 20, 100 << 10} {
			if cut >= size {
				continue
			}
			for _, format := range []Format{FormatKdump, FormatELF} {
				t.Run(fmt.Sprintf("%s-%dKiB", format, cut>>10), func(t *testing.T) {
					src, err := vmcore.NewFile(io.NewSectionReader(f, 0, cut), cut)
					if err != nil {
						t.Fatal(err)
					}
					out := fixture.CreateFile(t, "dump")
					st, err := Save(src, out, Options{Level: 31, Codec: codec.Zstd, Format: format})
					if !errors.Is(err, ErrIncomplete) {
						t.Fatalf("Save: %v, want ErrIncomplete", err)
					}
					lost := float64(size - cut)
					got := float64(st.MissingList.Bytes())
					t.Logf("%s; %s", st.Summary(), strings.Join(st.MissingLines(4), "; "))
					// The cut takes file data; missing memory is that, in
					// whole pages, plus the kernel text the RAM repeats.
					if got < 0.95*lost || got > 1.2*lost {
						t.Errorf("%.1f MiB missing, the cut took %.1f MiB", got/(1<<20), lost/(1<<20))
					}
					if st.Unfiltered == 0 && cut < 1<<20 {
						t.Errorf("no unfiltered pages reported: %q", st.Degraded)
					}
					fxCheckMissing(t, out, st)
				})
			}
		}
	})
}
