package vmcoreinfo_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	. "github.com/gokdump/gokdump/capture/vmcoreinfo"
	"github.com/gokdump/gokdump/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite testdata/<line>.notes and .golden from the newest real dump of each line")

// The PT_NOTE segments of real /proc/vmcore files (QEMU crashes of Debian
// cloud kernels), one per kernel line, kept as testdata so the test runs
// without the dumps; and what they hold. After -update, set these to the
// new snapshot's values.
var realNotes = []struct {
	line     string
	osrel    string
	physBase int64
	kaslr    uint64
}{
	{"6.1", "6.1.0-56-cloud-amd64", 450887680, 0x19800000},
	{"6.12", "6.12.117+deb12-cloud-amd64", -622854144, 0x35800000},
}

// vmcoreinfoDesc returns the VMCOREINFO descriptor from a block of
// little-endian ELF64 notes.
func vmcoreinfoDesc(t *testing.T, notes []byte) []byte {
	t.Helper()
	for pos := 0; pos+12 <= len(notes); {
		namesz := int(binary.LittleEndian.Uint32(notes[pos:]))
		descsz := int(binary.LittleEndian.Uint32(notes[pos+4:]))
		name := pos + 12
		desc := name + (namesz+3)&^3
		if desc+descsz > len(notes) {
			t.Fatalf("note at %#x overruns the block", pos)
		}
		if string(bytes.TrimRight(notes[name:name+namesz], "\x00")) == "VMCOREINFO" {
			return notes[desc : desc+descsz]
		}
		pos = desc + (descsz+3)&^3
	}
	t.Fatal("no VMCOREINFO note")
	return nil
}

// realNoteSegment reads the PT_NOTE of a real dump.
func realNoteSegment(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [64 + 4*56]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	phoff := binary.LittleEndian.Uint64(hdr[32:])
	phnum := int(binary.LittleEndian.Uint16(hdr[56:]))
	ph := make([]byte, phnum*56)
	if _, err := f.ReadAt(ph, int64(phoff)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < phnum; i++ {
		p := ph[i*56:]
		if binary.LittleEndian.Uint32(p) == 4 { // PT_NOTE
			seg := make([]byte, binary.LittleEndian.Uint64(p[32:]))
			if _, err := f.ReadAt(seg, int64(binary.LittleEndian.Uint64(p[8:]))); err != nil {
				t.Fatal(err)
			}
			return seg
		}
	}
	t.Fatalf("%s: no PT_NOTE", path)
	return nil
}

// TestGolden parses the testdata notes of each kernel line and checks
// them against the golden text and what the dump they come from holds.
func TestGolden(t *testing.T) {
	for _, rn := range realNotes {
		t.Run(rn.line, func(t *testing.T) {
			notesPath := filepath.Join("testdata", rn.line+".notes")
			goldenPath := filepath.Join("testdata", rn.line+".golden")
			if *update {
				seg := realNoteSegment(t, fixture.RealDump(t, rn.line).Path)
				if err := os.WriteFile(notesPath, seg, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			notes, err := os.ReadFile(notesPath)
			if err != nil {
				t.Fatal(err)
			}
			info, err := Parse(vmcoreinfoDesc(t, notes))
			if err != nil {
				t.Fatal(err)
			}
			got := info.String()
			if *update {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("sorted VMCOREINFO differs from %s:\n%s", goldenPath, lineDiff(string(want), got))
			}
			if !slices.Equal(goldenKeys(string(want)), slices.Sorted(slices.Values(info.Keys()))) {
				t.Errorf("the keys of %s are not those of the notes", goldenPath)
			}

			if got := info.OSRelease(); got != rn.osrel {
				t.Errorf("OSRelease = %q, want %q", got, rn.osrel)
			}
			if pb, ok := info.Number("phys_base"); !ok || pb != rn.physBase {
				t.Errorf("NUMBER(phys_base) = %d, %v; want %d", pb, ok, rn.physBase)
			}
			if ko, ok := info.KernelOffset(); !ok || ko != rn.kaslr {
				t.Errorf("KERNELOFFSET = %#x, %v; want %#x", ko, ok, rn.kaslr)
			}
			checkX86Info(t, info)
		})
	}
}

// TestRealVMCOREINFO parses the VMCOREINFO of each real dump: what any
// x86_64 kernel's holds, and the keys of its line's testdata.
func TestRealVMCOREINFO(t *testing.T) {
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		info, err := Parse(vmcoreinfoDesc(t, realNoteSegment(t, d.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.OSRelease(); got != d.KVer {
			t.Errorf("OSRelease = %q, want %q", got, d.KVer)
		}
		checkX86Info(t, info)
		got := slices.Sorted(slices.Values(info.Keys()))
		golden, err := os.ReadFile(filepath.Join("testdata", d.Line+".golden"))
		if err == nil {
			if want := goldenKeys(string(golden)); !slices.Equal(got, want) {
				t.Errorf("keys differ from testdata/%s.golden (go test -run TestGolden -update refreshes it):\n%s",
					d.Line, lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
			}
			return
		}
		// A line newer than every golden file (the matrix's "latest" moved
		// on): what the kernel added is logged, what it dropped or renamed
		// fails, since a reader of ours may look for it.
		prev := previousGolden(t, d.Line)
		if prev == "" {
			t.Fatalf("no testdata for kernel line %s nor an older one", d.Line)
		}
		b, err := os.ReadFile(filepath.Join("testdata", prev+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		var gone, added []string
		for _, k := range goldenKeys(string(b)) {
			if !slices.Contains(got, k) {
				gone = append(gone, k)
			}
		}
		for _, k := range got {
			if !slices.Contains(goldenKeys(string(b)), k) {
				added = append(added, k)
			}
		}
		t.Logf("no testdata/%s.golden: compared with %s's; new keys: %q", d.Line, prev, added)
		if len(gone) > 0 {
			t.Errorf("kernel line %s lacks keys line %s had (renamed or dropped: check the readers that use them, then add testdata/%s.golden with go test -run TestGolden -update): %q",
				d.Line, prev, d.Line, gone)
		}
	})
}

// goldenKeys returns the keys of a golden file's KEY=VALUE lines, sorted.
func goldenKeys(golden string) []string {
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(golden), "\n") {
		k, _, _ := strings.Cut(l, "=")
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkX86Info checks what the VMCOREINFO of every x86_64 Debian kernel
// holds.
func checkX86Info(t *testing.T, info *Info) {
	t.Helper()
	if ps, ok := info.PageSize(); !ok || ps != 4096 {
		t.Errorf("PageSize = %d, %v", ps, ok)
	}
	// The x86_64 page-table walk and the printk ring need these.
	for _, sym := range []string{"init_top_pgt", "prb", "mem_section", "init_uts_ns", "_stext"} {
		if v, ok := info.Symbol(sym); !ok || v < 0xffff800000000000 {
			t.Errorf("SYMBOL(%s) = %#x, %v: not a kernel address", sym, v, ok)
		}
	}
	if sz, ok := info.Size("page"); !ok || sz != 64 {
		t.Errorf("SIZE(page) = %d, %v", sz, ok)
	}
	if n, ok := info.Length("mem_section"); !ok || n != 2048 {
		t.Errorf("LENGTH(mem_section) = %d, %v", n, ok)
	}
	if n, ok := info.Number("SECTION_SIZE_BITS"); !ok || n != 27 {
		t.Errorf("NUMBER(SECTION_SIZE_BITS) = %d, %v", n, ok)
	}
	if bid := info.BuildID(); len(bid) != 40 {
		t.Errorf("BUILD-ID = %q", bid)
	}
	if ct, ok := info.CrashTime(); !ok || ct < 1.7e9 {
		t.Errorf("CRASHTIME = %d, %v", ct, ok)
	}
	if keys := info.Keys(); keys[0] != "OSRELEASE" || len(keys) < 100 {
		t.Errorf("Keys: %d keys, first %q", len(keys), keys[0])
	}
}

// lineDiff lists lines present in only one of a and b.
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := make(map[string]bool)
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out strings.Builder
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out.WriteString("+ " + l + "\n")
		}
	}
	return out.String()
}

// previousGolden returns the newest kernel line older than line that has a
// golden file, "" if none.
func previousGolden(t *testing.T, line string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	best := ""
	for _, f := range files {
		l := strings.TrimSuffix(filepath.Base(f), ".golden")
		if lineLess(l, line) && (best == "" || lineLess(best, l)) {
			best = l
		}
	}
	return best
}

// lineLess orders kernel lines ("6.19" < "7.3") by their numbers.
func lineLess(a, b string) bool {
	num := func(s string) (int, int) {
		x, y, _ := strings.Cut(s, ".")
		i, _ := strconv.Atoi(x)
		j, _ := strconv.Atoi(y)
		return i, j
	}
	ai, aj := num(a)
	bi, bj := num(b)
	return ai < bi || ai == bi && aj < bj
}

func TestLineLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{{"6.1", "6.12", true}, {"6.12", "6.19", true}, {"6.19", "7.3", true}, {"7.3", "7.10", true}, {"7.3", "7.3", false}, {"7.4", "7.3", false}} {
		if got := lineLess(tc.a, tc.b); got != tc.less {
			t.Errorf("lineLess(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}
