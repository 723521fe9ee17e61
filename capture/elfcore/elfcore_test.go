package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// checkELF checks what readers expect of the file's headers: program
// headers at 64, no section headers unless PN_XNUM, one PT_NOTE with the
// source's notes.
func checkELF(t *testing.T, out []byte, src *vmcore.File) *vmcore.File {
	t.Helper()
	bo := binary.LittleEndian
	if got := bo.Uint64(out[32:]); got != 64 {
		t.Errorf("e_phoff = %d, want 64", got)
	}
	phnum := bo.Uint16(out[56:])
	if phnum == 0xffff {
		if bo.Uint64(out[40:]) == 0 || bo.Uint16(out[60:]) != 1 {
			t.Errorf("PN_XNUM without its section header")
		}
	} else if bo.Uint64(out[40:]) != 0 || bo.Uint16(out[60:]) != 0 {
		t.Errorf("section headers: e_shoff %d e_shnum %d", bo.Uint64(out[40:]), bo.Uint16(out[60:]))
	}
	// debug/elf agrees with our reader on the basics.
	ef, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	notes := 0
	for _, p := range ef.Progs {
		if p.Type == elf.PT_NOTE {
			notes++
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil || !bytes.Equal(b, src.NoteData) {
				t.Errorf("PT_NOTE is not the source's notes (%v)", err)
			}
		}
	}
	if notes != 1 || ef.Type != elf.ET_CORE || ef.Machine != src.Machine {
		t.Errorf("%d PT_NOTEs, type %v, machine %v", notes, ef.Type, ef.Machine)
	}
	f, err := vmcore.NewFile(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	if f.VMCOREINFO == nil || f.VMCOREINFO.OSRelease() != src.VMCOREINFO.OSRelease() || len(f.PRStatus) != len(src.PRStatus) {
		t.Errorf("notes not carried over")
	}
	return f
}

// checkVirt checks each output PT_LOAD against the source PT_LOAD it comes
// from: inside it, with the virtual address moved by the same delta.
func checkVirt(t *testing.T, out, src *vmcore.File) {
	t.Helper()
	for _, o := range out.Segments {
		found := false
		for _, s := range src.Segments {
			virt := s.VirtAddr + (o.PhysAddr - s.PhysAddr)
			if s.VirtAddr == 0 {
				virt = 0 // physical-only segments stay so
			}
			if o.PhysAddr >= s.PhysAddr && o.PhysAddr+o.MemSize <= s.PhysAddr+s.MemSize && o.VirtAddr == virt {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("output segment %+v matches no source segment", o)
		}
		if o.FileSize > 0 && (o.Offset-o.PhysAddr)%4096 != 0 {
			t.Errorf("segment %+v: file offset not congruent to the address", o)
		}
	}
}

// cover returns the union of ranges, touching ones merged.
func cover(rs []vmcore.PhysRange) [][2]uint64 {
	var out [][2]uint64
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r.End)
			continue
		}
		out = append(out, [2]uint64{r.Start, r.End})
	}
	return out
}

// checkPages compares every page of the source with the output: kept pages
// equal, the others holes, zeros or not declared; and that the output
// declares no memory the source does not.
func checkPages(t *testing.T, out, src *vmcore.File, keep KeepFunc) {
	t.Helper()
	if a, b := cover(out.PhysRanges()), cover(src.PhysRanges()); !withinSpans(a, b) {
		t.Fatalf("output covers %#x, outside the source's %#x", a, b)
	}
	for _, s := range out.Segments {
		if s.FileSize != s.MemSize {
			t.Fatalf("segment %+v: p_filesz %#x != p_memsz %#x (makedumpfile reads the difference from the file)", s, s.FileSize, s.MemSize)
		}
	}
	// A page is kept when keep says so and the source stores all of the
	// page that its ranges cover.
	ranges := src.PhysRanges()
	sp := make([]byte, 4096)
	op := make([]byte, 4096)
	zero := make([]byte, 4096)
	for i := 0; i < len(ranges); {
		pfn := ranges[i].Start / 4096
		var parts []vmcore.PhysRange
		for j := i; j < len(ranges) && ranges[j].Start < (pfn+1)*4096; j++ {
			parts = append(parts, ranges[j])
		}
		stored := true
		for _, r := range parts {
			if r.FileEnd < min(r.End, (pfn+1)*4096) {
				stored = false
			}
		}
		kept := stored && (keep == nil || keep(pfn))
		for _, r := range parts {
			a, b := max(r.Start, pfn*4096), min(r.End, (pfn+1)*4096)
			n := b - a
			_, oerr := out.ReadPhys(op[:n], a)
			if oerr != nil && !errors.Is(oerr, vmcore.ErrHole) {
				t.Fatalf("page %#x: %v", a, oerr)
			}
			if !kept {
				if oerr == nil && !bytes.Equal(op[:n], zero[:n]) {
					t.Fatalf("dropped page %#x holds data", a)
				}
				continue
			}
			if _, err := src.ReadPhys(sp[:n], a); err != nil {
				t.Fatal(err)
			}
			if oerr != nil || !bytes.Equal(sp[:n], op[:n]) {
				t.Fatalf("kept page %#x: %v, equal %v", a, oerr, bytes.Equal(sp[:n], op[:n]))
			}
		}
		// Next page: the same range if it goes on, else the next range.
		for i < len(ranges) && ranges[i].End <= (pfn+1)*4096 {
			i++
		}
		if i < len(ranges) && ranges[i].Start < (pfn+1)*4096 {
			ranges[i].Start = (pfn + 1) * 4096
		}
	}
}

// withinSpans reports whether every span of a lies inside one of b.
func withinSpans(a, b [][2]uint64) bool {
	for _, x := range a {
		ok := false
		for _, y := range b {
			if x[0] >= y[0] && x[1] <= y[1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func save(t *testing.T, src *vmcore.File, keep KeepFunc, opts Options) (*fixture.MemFile, Stats) {
	t.Helper()
	var m fixture.MemFile
	st, err := Save(&m, src, keep, opts)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	return &m, st
}

func TestKeepAll(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	m, st := save(t, src, nil, Options{})
	out := checkELF(t, m.Bytes(), src)
	if out.Flags != 0 {
		t.Errorf("e_flags = %#x", out.Flags)
	}
	// One PT_LOAD per source PT_LOAD, with the same addresses and file
	// sizes; memory the source declares but does not store is not
	// declared (p_memsz is p_filesz).
	if len(out.Segments) != len(src.Segments) {
		t.Fatalf("%d segments, want %d", len(out.Segments), len(src.Segments))
	}
	for i, o := range out.Segments {
		s := src.Segments[i]
		if o.VirtAddr != s.VirtAddr || o.PhysAddr != s.PhysAddr || o.MemSize != s.FileSize || o.FileSize != s.FileSize {
			t.Errorf("segment %d: %+v, source %+v", i, o, s)
		}
	}
	// The kernel-text segment shares the RAM segment's data.
	text, ram := out.Segments[0], out.Segments[3]
	if text.Offset != ram.Offset+(text.PhysAddr-ram.PhysAddr) {
		t.Errorf("text at %#x, RAM data for it at %#x", text.Offset, ram.Offset+(text.PhysAddr-ram.PhysAddr))
	}
	checkVirt(t, out, src)
	checkPages(t, out, src, nil)
	wantKept := uint64(0x9f + 0x1f00 + 0x100) // page 0x9f holds two ranges and counts once
	if st.KeptPages != wantKept || st.ZeroFilledPages != 0 || st.DroppedPages != 0x100 {
		t.Errorf("stats %+v, want %#x kept and the 0x100 unstored pages dropped", st, wantKept)
	}
	if int64(len(m.Bytes())) >= src.Size() {
		t.Errorf("output %d bytes, source %d: text stored twice?", len(m.Bytes()), src.Size())
	}
}

// keepPatterns are keep-sets over the synthetic x86 layout, with
// MinExcludedRun 8.
var keepPatterns = []struct {
	name string
	keep func(pfn uint64) bool
}{
	{"drop all", func(uint64) bool { return false }},
	{"every other page", func(pfn uint64) bool { return pfn%2 == 0 }},
	{"runs of 7 (zero-filled)", func(pfn uint64) bool { return pfn%15 < 8 }},
	{"runs of 8 (split)", func(pfn uint64) bool { return pfn%16 < 8 }},
	{"long runs", func(pfn uint64) bool { return pfn%1000 < 300 }},
	{"drop the first pages of each range", func(pfn uint64) bool {
		return !(pfn < 0x40 || (pfn >= 0x100 && pfn < 0x140) || (pfn >= 0x4000 && pfn < 0x4020))
	}},
	{"drop the last pages of each range", func(pfn uint64) bool {
		return !(pfn >= 0x90 && pfn < 0xa0 || pfn >= 0x1f00 && pfn < 0x2000)
	}},
	{"drop all but the kernel text", func(pfn uint64) bool { return pfn >= 0x1000 && pfn < 0x1080 }},
	{"drop the kernel text", func(pfn uint64) bool { return pfn < 0x1000 || pfn >= 0x1080 }},
	{"drop runs ending at the kernel text", func(pfn uint64) bool { return pfn < 0xf00 || pfn >= 0x1000 }},
	{"random", func(pfn uint64) bool { return mix(pfn)%3 == 0 }},
	{"random runs", func(pfn uint64) bool { return mix(pfn/37)%2 == 0 }},
}

// mix is a 64-bit finalizer: a cheap, fixed pseudo-random function.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}

func TestRoundTrip(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	const minRun = 8
	for _, kp := range keepPatterns {
		t.Run(kp.name, func(t *testing.T) {
			m, st := save(t, src, kp.keep, Options{MinExcludedRun: minRun})
			out := checkELF(t, m.Bytes(), src)
			checkVirt(t, out, src)
			checkPages(t, out, src, kp.keep)

			// Every run of holes is long enough to earn its split, or ends
			// its source range (p_filesz < p_memsz at a range's end).
			ends := map[uint64]bool{}
			for _, s := range src.Segments {
				ends[s.PhysAddr+s.MemSize] = true
			}
			for _, r := range out.PhysRanges() {
				if r.FileEnd < r.End && !ends[r.End] && (r.End-r.FileEnd)/4096 < minRun {
					t.Errorf("hole %#x-%#x shorter than %d pages", r.FileEnd, r.End, minRun)
				}
			}
			// The kernel text comes out whole, as one segment.
			text := out.Segments[0]
			if text.VirtAddr != 0xffffffff81000000 || text.MemSize != 0x80000 || text.FileSize != 0x80000 {
				t.Errorf("kernel text segment %+v", text)
			}
			// Stats add up and match what was written.
			var kept uint64
			for pa := range mustLayout(t, src, kp.keep, Options{MinExcludedRun: minRun}).KeptPages() {
				if !kp.keep(pa / 4096) {
					t.Fatalf("KeptPages yields %#x", pa)
				}
				kept++
			}
			if kept != st.KeptPages {
				t.Errorf("KeptPages yields %d pages, stats say %d", kept, st.KeptPages)
			}
			// 0x21a0 pages: page 0x9f, split between two ranges, counts
			// once when kept and once in each range otherwise.
			if total := st.KeptPages + st.ZeroFilledPages + st.DroppedPages; total != 0x21a0 && total != 0x219f {
				t.Errorf("stats %+v add up to %#x pages", st, total)
			}
			// Kept and zero-filled pages are in the file, each once; the
			// two partial pages and the alignment of each piece aside.
			data := (st.KeptPages + st.ZeroFilledPages) * 4096
			pieces := uint64(len(out.Segments))
			if n := uint64(len(m.Bytes())); n+2*4096 < data || n > data+(pieces+1)*4096 {
				t.Errorf("file %d bytes for %+v in %d segments", n, st, pieces)
			}
		})
	}
}

func mustLayout(t *testing.T, src *vmcore.File, keep KeepFunc, opts Options) *Layout {
	t.Helper()
	l, err := NewLayout(src, keep, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDefaultMinRun(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	// Runs of 255 dropped pages are zero-filled; of 256, split out.
	for _, tt := range []struct {
		run    uint64
		splits bool
	}{{255, false}, {256, true}} {
		keep := func(pfn uint64) bool { return pfn < 0x200 || pfn >= 0x200+tt.run }
		m, st := save(t, src, keep, Options{})
		out := checkELF(t, m.Bytes(), src)
		checkPages(t, out, src, keep)
		if got := len(out.Segments) > len(src.Segments); got != tt.splits {
			t.Errorf("run of %d: %d segments", tt.run, len(out.Segments))
		}
		if tt.splits && st.ZeroFilledPages != 0 || !tt.splits && st.ZeroFilledPages != tt.run {
			t.Errorf("run of %d: stats %+v", tt.run, st)
		}
	}
}

func TestSegmentCap(t *testing.T) {
	src, _ := newSource(t, []fixture.Load{{Vaddr: 0xffff888000000000, FileSize: 0x900000, MemSize: 0x900000}}, -1)
	// Dropped runs of growing length 1..63 pages between single kept pages.
	var starts []uint64
	dropped := map[uint64]uint64{} // run start → length
	pfn := uint64(0)
	for n := uint64(1); n < 64; n++ {
		pfn++ // a kept page
		starts = append(starts, pfn)
		dropped[pfn] = n
		pfn += n
	}
	keep := func(p uint64) bool {
		i := sort.Search(len(starts), func(i int) bool { return starts[i] > p }) - 1
		return i < 0 || p >= starts[i]+dropped[starts[i]]
	}
	for _, max := range []int{2, 3, 10, 40, 100} {
		m, st := save(t, src, keep, Options{MinExcludedRun: 1, MaxPhdrs: max})
		out := checkELF(t, m.Bytes(), src)
		checkPages(t, out, src, keep)
		if n := 1 + len(out.Segments); n > max {
			t.Errorf("MaxPhdrs %d: %d program headers", max, n)
		}
		// The longest runs get the splits: budget max-2 (PT_NOTE, the one
		// PT_LOAD); runs of 63, 62, ... pages.
		splits := min(max-2, 63)
		if got := len(out.Segments) - 1; got != splits {
			t.Errorf("MaxPhdrs %d: %d splits, want %d", max, got, splits)
		}
		rs := out.PhysRanges()
		for i, r := range rs[:len(rs)-1] {
			// A split run is the undeclared memory between two segments.
			if l := (rs[i+1].Start - r.End) / 4096; l < uint64(64-splits) {
				t.Errorf("MaxPhdrs %d: split run of %d pages, want the %d longest", max, l, splits)
			}
		}
		// Dropped runs are the splits' 63, 62, ... pages; the rest zero-filled.
		var split uint64
		for n := 63; n > 63-splits; n-- {
			split += uint64(n)
		}
		if st.DroppedPages != split || st.ZeroFilledPages != 2016-split || st.KeptPages != 0x900-2016 {
			t.Errorf("MaxPhdrs %d: stats %+v, want %d dropped", max, st, split)
		}
	}
}

func TestTooManySegments(t *testing.T) {
	var loads []fixture.Load
	for i := uint64(0); i < 10; i++ {
		loads = append(loads, fixture.Load{Paddr: i << 20, FileSize: 0x1000, MemSize: 0x1000})
	}
	src, _ := newSource(t, loads, -1)
	if _, err := NewLayout(src, nil, Options{MaxPhdrs: 10}); !errors.Is(err, ErrTooManySegments) {
		t.Errorf("10 PT_LOADs under MaxPhdrs 10: %v", err)
	}
	if _, err := NewLayout(src, nil, Options{MaxPhdrs: 11}); err != nil {
		t.Errorf("10 PT_LOADs under MaxPhdrs 11: %v", err)
	}
	for _, bad := range []Options{{MaxPhdrs: 1}, {MaxPhdrs: MaxPhdrs + 1}, {PageSize: 3000}, {PageSize: 256}} {
		if _, err := NewLayout(src, nil, bad); err == nil {
			t.Errorf("NewLayout accepted %+v", bad)
		}
	}
}

func TestPNXNUM(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 32 MiB")
	}
	// 512-byte pages alternately kept and dropped: one split per kept page.
	const ps = 512
	for _, tt := range []struct {
		maxPhdrs int
		xnum     bool
	}{{0xfffe, false}, {0xffff, true}, {MaxPhdrs, true}} {
		n := uint64(tt.maxPhdrs) // kept pages: one PT_LOAD each, the last one's tail aside
		src, _ := newSource(t, []fixture.Load{{Vaddr: 0xffff888000000000, FileSize: 2 * n * ps, MemSize: 2 * n * ps}}, -1)
		keep := func(pfn uint64) bool { return pfn%2 == 0 }
		m, _ := save(t, src, keep, Options{PageSize: ps, MinExcludedRun: 1, MaxPhdrs: tt.maxPhdrs})
		out := checkELF(t, m.Bytes(), src)
		if got := 1 + len(out.Segments); got != tt.maxPhdrs {
			t.Errorf("MaxPhdrs %d: %d program headers", tt.maxPhdrs, got)
		}
		if got := binary.LittleEndian.Uint16(m.Bytes()[56:]) == 0xffff; got != tt.xnum {
			t.Errorf("MaxPhdrs %d: PN_XNUM %v", tt.maxPhdrs, got)
		}
		// Sampled pages read back.
		p := make([]byte, ps)
		for pfn := uint64(0); pfn < 2*n; pfn += 997 {
			_, err := out.ReadPhys(p, pfn*ps)
			if keep(pfn) != (err == nil) {
				t.Fatalf("page %d: %v", pfn, err)
			}
			if err == nil && p[5] != pat(pfn*ps+5) {
				t.Fatalf("page %d differs", pfn)
			}
		}
	}
}

func TestTruncatedSource(t *testing.T) {
	loads := x86Loads()
	_, s := newSource(t, loads, -1)
	// Cut the source 0x700 pages into the big RAM range: the RAM data for
	// the kernel text (pages 0x1000-0x107f) is gone, the text segment's
	// own copy, earlier in the file, is not.
	src, _ := newSource(t, loads, int64(s.LoadOff[3]+0x700000+0x800))
	m, st := save(t, src, nil, Options{})
	out := checkELF(t, m.Bytes(), src)
	checkPages(t, out, src, nil)
	text := out.Segments[0]
	if text.VirtAddr != 0xffffffff81000000 || text.FileSize != 0x80000 {
		t.Errorf("text segment %+v", text)
	}
	p := make([]byte, 0x80000)
	if _, err := out.ReadPhys(p, 0x1000000); err != nil || p[0x1234] != pat(0x1001234) {
		t.Errorf("kernel text: %v", err)
	}
	if st.KeptPages != 0x9f+0x700+0x80 {
		t.Errorf("stats %+v", st)
	}
}

func TestPhysicalOnlySource(t *testing.T) {
	// Segments without virtual addresses keep none when split.
	src, _ := newSource(t, []fixture.Load{{Paddr: 0x100000, FileSize: 0x400000, MemSize: 0x400000}}, -1)
	keep := func(pfn uint64) bool { return pfn%0x200 < 0x80 }
	m, _ := save(t, src, keep, Options{})
	out := checkELF(t, m.Bytes(), src)
	checkPages(t, out, src, keep)
	// A leading dropped run (not declared), two kept parts.
	if len(out.Segments) != 2 || out.Segments[0].PhysAddr != 0x200000 || out.Segments[1].PhysAddr != 0x400000 {
		t.Errorf("segments %+v", out.Segments)
	}
	for _, s := range out.Segments {
		if s.VirtAddr != 0 {
			t.Errorf("segment %+v has a virtual address", s)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	keep := func(pfn uint64) bool { return pfn%0x400 < 0x200 }
	l := mustLayout(t, src, keep, Options{})
	var m fixture.MemFile
	w, err := NewWriter(&m, l)
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	if err := w.WritePage(0x1001, page); err == nil {
		t.Error("unaligned address accepted")
	}
	if err := w.WritePage(0x1000, page[:100]); err == nil {
		t.Error("short page accepted")
	}
	if err := w.WritePage(0x0, page); !errors.Is(err, ErrNotKept) {
		t.Errorf("page 0, not in memory: %v", err)
	}
	if err := w.WritePage(0x201000, page); !errors.Is(err, ErrNotKept) {
		t.Errorf("dropped page: %v", err)
	}
	if err := w.WritePage(0x2000, page); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePage(0x2000, page); !errors.Is(err, ErrOrder) {
		t.Errorf("same page twice: %v", err)
	}
	if err := w.WritePage(0x1000, page); !errors.Is(err, ErrOrder) {
		t.Errorf("lower page: %v", err)
	}
	if err := w.WritePage(0x4100000, page); !errors.Is(err, ErrNotKept) {
		t.Errorf("page the source does not store: %v", err)
	}
	if w.Written() != 1 {
		t.Errorf("Written = %d", w.Written())
	}
	// Close with pages missing: incomplete, flagged, readable, full size.
	err = w.Close()
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Close with missing pages: %v", err)
	}
	if int64(len(m.Bytes())) != l.FileSize() {
		t.Errorf("file %d bytes, layout %d", len(m.Bytes()), l.FileSize())
	}
	out := fixture.OpenBytes(t, m.Bytes())
	if out.Flags&vmcore.FlagIncomplete == 0 {
		t.Error("incomplete flag not set")
	}
	if err := w.WritePage(0x3000, page); !errors.Is(err, ErrClosed) {
		t.Errorf("WritePage after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// failWriter fails every write at or past a file offset.
type failWriter struct {
	fixture.MemFile
	failAt int64
}

var errDiskFull = errors.New("no space left on device")

func (f *failWriter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.failAt && off != 48 {
		return 0, errDiskFull
	}
	return f.MemFile.WriteAt(p, off)
}

func TestAbort(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	l := mustLayout(t, src, nil, Options{})
	// The disk fills halfway through the data.
	fw := &failWriter{failAt: l.FileSize() / 2}
	w, err := NewWriter(fw, l)
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	buf := make([]byte, 4096)
	for pa := range l.KeptPages() {
		if err := l.readPage(buf, pa); err != nil {
			t.Fatal(err)
		}
		if werr = w.WritePage(pa, buf); werr != nil {
			break
		}
	}
	if !errors.Is(werr, errDiskFull) {
		t.Fatalf("WritePage: %v", werr)
	}
	if err := w.WritePage(0x1ff0000, buf); !errors.Is(err, errDiskFull) {
		t.Errorf("WritePage after a failure: %v", err)
	}
	// Close reports the failure; marking the file needs no new space, but
	// without Truncate its size comes from a last byte that cannot be
	// written either: the file stays as long as the data that made it.
	err = w.Close()
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "set file size") {
		t.Errorf("Close after a failed write: %v", err)
	}
	if err := w.Abort(werr); !errors.Is(err, ErrClosed) {
		t.Errorf("Abort after Close: %v", err)
	}
	fw.failAt = 1 << 62
	out := fixture.OpenBytes(t, fw.Bytes())
	if out.Flags&vmcore.FlagIncomplete == 0 {
		t.Error("incomplete flag not set")
	}
	// What was written reads back; the rest is a hole.
	p := make([]byte, 4096)
	if _, err := out.ReadPhys(p, 0x1000); err != nil || p[9] != pat(0x1009) {
		t.Errorf("first page: %v", err)
	}
	if _, err := out.ReadPhys(p, 0x4000000); !errors.Is(err, vmcore.ErrHole) {
		t.Errorf("last range: %v", err)
	}
}

func TestFileOutput(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	keep := func(pfn uint64) bool { return pfn < 0x1e00 }
	path := filepath.Join(t.TempDir(), "dump.elf")
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	l := mustLayout(t, src, keep, Options{})
	if _, err := Save(fh, src, keep, Options{}); err != nil {
		t.Fatal(err)
	}
	st, _ := fh.Stat()
	if st.Size() != l.FileSize() {
		t.Errorf("file %d bytes, layout %d", st.Size(), l.FileSize())
	}
	out, err := vmcore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	checkPages(t, out, src, keep)

	// A second save into the same, now non-empty, file is refused.
	if _, err := Save(fh, src, keep, Options{}); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Save into a non-empty file: %v", err)
	}
	// Abort on a file: flagged, full size (Truncate), zeros after the cut.
	path2 := filepath.Join(t.TempDir(), "aborted.elf")
	fh2, err := os.Create(path2)
	if err != nil {
		t.Fatal(err)
	}
	defer fh2.Close()
	w, err := NewWriter(fh2, l)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if err := l.readPage(buf, 0x1000); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePage(0x1000, buf); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(errors.New("stopped")); err != nil {
		t.Fatal(err)
	}
	if st, _ := fh2.Stat(); st.Size() != l.FileSize() {
		t.Errorf("aborted file %d bytes, layout %d", st.Size(), l.FileSize())
	}
	out2, err := vmcore.Open(path2)
	if err != nil {
		t.Fatal(err)
	}
	defer out2.Close()
	if out2.Flags != 1 {
		t.Errorf("e_flags %#x", out2.Flags)
	}
	if _, err := out2.ReadPhys(buf, 0x1000); err != nil || buf[7] != pat(0x1007) {
		t.Errorf("page written before Abort: %v", err)
	}
	if _, err := out2.ReadPhys(buf, 0x2000); err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Errorf("page never written: %v, not zero", err)
	}
}

func TestBigEndianSource(t *testing.T) {
	be := binary.BigEndian
	src := testCore(be, x86Loads()[3:4]).Build().Open(t)
	if src.ByteOrder != binary.ByteOrder(be) {
		t.Fatalf("source in %v", src.ByteOrder)
	}
	keep := func(pfn uint64) bool { return pfn%0x300 < 0x100 }
	var m fixture.MemFile
	if _, err := Save(&m, src, keep, Options{}); err != nil {
		t.Fatal(err)
	}
	if m.Bytes()[elf.EI_DATA] != byte(elf.ELFDATA2MSB) || be.Uint64(m.Bytes()[32:]) != 64 {
		t.Fatal("output not big-endian")
	}
	out := fixture.OpenBytes(t, m.Bytes())
	checkPages(t, out, src, keep)
	if out.PRStatus[0].PID != 77 {
		t.Errorf("PRSTATUS pid %d", out.PRStatus[0].PID)
	}
}

// badReader fails reads from a file offset on, as a damaged disk would.
type badReader struct {
	r      io.ReaderAt
	failAt int64
}

var errIO = errors.New("input/output error")

func (b badReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > b.failAt && off >= 4096 {
		return 0, errIO
	}
	return b.r.ReadAt(p, off)
}

func TestSaveReadError(t *testing.T) {
	_, s := newSource(t, x86Loads(), -1)
	src, err := vmcore.NewFile(badReader{s, int64(s.LoadOff[3] + 0x100000)}, s.Size())
	if err != nil {
		t.Fatal(err)
	}
	var m fixture.MemFile
	st, err := Save(&m, src, nil, Options{})
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, errIO) {
		t.Fatalf("Save: %v", err)
	}
	out := fixture.OpenBytes(t, m.Bytes())
	if out.Flags&vmcore.FlagIncomplete == 0 || int64(len(m.Bytes())) != mustLayout(t, src, nil, Options{}).FileSize() {
		t.Errorf("flags %#x, %d bytes", out.Flags, len(m.Bytes()))
	}
	if st.KeptPages == 0 {
		t.Errorf("stats %+v", st)
	}
	// Pages before the bad spot are there; after it, zeros.
	p := make([]byte, 4096)
	if _, err := out.ReadPhys(p, 0x1000); err != nil || p[1] != pat(0x1001) {
		t.Errorf("page before the failure: %v", err)
	}
	if _, err := out.ReadPhys(p, 0x1ff0000); err != nil || !bytes.Equal(p, make([]byte, 4096)) {
		t.Errorf("page after the failure: %v, not zero", err)
	}
}
