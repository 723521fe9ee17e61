package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
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

// TestSaveTruncatedSource: a /proc/vmcore copy cut short (or a source
// whose last pages cannot be reached) still saves everything it holds,
// and the pages it lacks are counted as absent.
func TestSaveTruncatedSource(t *testing.T) {
	loads := []fixture.Load{fixture.RAM(0, 512, 512), fixture.RAM(1024, 512, 512)}
	core := fxCore(fxInfo, loads...)
	hdr := len(core) - 1024*4096
	for _, cut := range []int{hdr + 700*4096, hdr + 700*4096 + 123, hdr + 100} {
		for _, format := range []Format{FormatKdump, FormatELF} {
			t.Run(fmt.Sprintf("%s-cut%d", format, cut-hdr), func(t *testing.T) {
				src := fixture.OpenBytes(t, core[:cut])
				out := fixture.CreateFile(t, "dump")
				st, err := Save(src, out, Options{Level: 1, Codec: codec.Zstd, Format: format})
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				whole := uint64(cut-hdr) / 4096      // whole pages stored
				storedPFN := func(i uint64) uint64 { // the i'th stored page's pfn
					if i < 512 {
						return i
					}
					return 1024 + i - 512
				}
				cutPFN := storedPFN(whole)
				want := fxNonZero(loads, cutPFN)
				if st.PagesKept != want {
					t.Errorf("kept %d pages, want the %d non-zero pages before the cut", st.PagesKept, want)
				}
				if st.Absent == 0 && !(format == FormatELF && whole == 0) {
					// (An ELF save that finds nothing at all to keep
					// counts nothing: see the report to the lead.)
					t.Error("no absent pages counted")
				}
				var tbl strings.Builder
				st.WriteTable(&tbl)
				if st.Absent > 0 && !strings.Contains(tbl.String(), "Absent from the source") {
					t.Errorf("the report does not say pages were absent:\n%s", tbl.String())
				}
				fxCheckOutput(t, out, src, nil)
			})
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
// kernel cannot give back) are saved as zero pages, counted, and do not
// stop the dump.
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
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			if st.Unreadable != 40 {
				t.Errorf("%d unreadable pages, want 40", st.Unreadable)
			}
			if !strings.Contains(strings.Join(logs, "\n"), "unreadable") {
				t.Errorf("nothing logged about unreadable pages: %q", logs)
			}
			good := bytes.NewReader(core)
			ref, _ := vmcore.NewFile(good, int64(len(core)))
			if n := fxCheckOutput(t, out, ref, func(p uint64) bool { return p >= 100 && p < 140 }); n != 300 {
				t.Errorf("output holds %d pages, want 300", n)
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

// FuzzSaveHostile feeds Save garbage vmcores (whatever vmcore.NewFile
// accepts): no panic, and a dump that does not fail reads back whole.
func FuzzSaveHostile(f *testing.F) {
	f.Add(fxCore(fxInfo, fixture.RAM(0, 4, 4)))
	f.Add(fxCore("", fixture.RAM(3, 5, 2), fixture.RAM(1, 2, 2)))
	f.Add(fxCore(fxInfo+"SYMBOL(init_top_pgt)=ffffffff82000000\nSYMBOL(mem_section)=ffff888000001000\n",
		fixture.RAM(0, 8, 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := vmcore.NewFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// Bitmaps, and an ELF output's holes, grow with the highest pfn:
		// keep the machine small so each input runs in milliseconds.
		if src.MaxPFN() > 1<<12 {
			return
		}
		for _, format := range []Format{FormatKdump, FormatELF} {
			out := &fixture.MemFile{Limit: 64 << 20}
			_, err := Save(src, out, Options{Level: 31, Codec: codec.Snappy, Format: format, Workers: 2})
			if err != nil {
				continue
			}
			var phys interface {
				ReadPhys([]byte, uint64) (int, error)
			}
			var pages func(func(uint64) bool)
			switch format {
			case FormatKdump:
				d, err := diskdump.Open(bytes.NewReader(out.Bytes()), int64(len(out.Bytes())))
				if err != nil {
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
				d, err := vmcore.NewFile(bytes.NewReader(out.Bytes()), int64(len(out.Bytes())))
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
			ps := src.PageSize
			buf := make([]byte, ps)
			for pfn := range pages {
				if _, err := phys.ReadPhys(buf, pfn*uint64(ps)); err != nil && !errors.Is(err, vmcore.ErrHole) {
					t.Fatalf("%s output: pfn %#x: %v", format, pfn, err)
				}
			}
		}
	})
}
