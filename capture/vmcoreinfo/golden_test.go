package vmcoreinfo

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden and the .notes extracted from the real dumps")

// The PT_NOTE segments of two real /proc/vmcore files (QEMU crashes of
// Debian 6.1 and 6.12 cloud kernels), kept as testdata so the test runs
// without the dumps.
var realNotes = []struct {
	release  string
	osrel    string
	physBase int64
	kaslr    uint64
}{
	{"6.1.0-56-cloud-amd64", "6.1.0-56-cloud-amd64", 450887680, 0x19800000},
	{"6.12.117+deb12-cloud-amd64", "6.12.117+deb12-cloud-amd64", -622854144, 0x35800000},
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

// realNoteSegment reads the PT_NOTE of a real dump when it is present.
func realNoteSegment(t *testing.T, release string) []byte {
	path := filepath.Join("..", "..", ".cache", "vmcores", release+"-nvme-1024M.elf")
	f, err := os.Open(path)
	if err != nil {
		return nil
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

func TestGolden(t *testing.T) {
	for _, rn := range realNotes {
		t.Run(rn.release, func(t *testing.T) {
			notesPath := filepath.Join("testdata", rn.release+".notes")
			goldenPath := filepath.Join("testdata", rn.release+".golden")
			if *update {
				if seg := realNoteSegment(t, rn.release); seg != nil {
					if err := os.WriteFile(notesPath, seg, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			notes, err := os.ReadFile(notesPath)
			if err != nil {
				t.Fatal(err)
			}
			if seg := realNoteSegment(t, rn.release); seg != nil && !bytes.Equal(seg, notes) {
				t.Errorf("%s differs from the dump's PT_NOTE (run with -update)", notesPath)
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

			if got := info.OSRelease(); got != rn.osrel {
				t.Errorf("OSRelease = %q, want %q", got, rn.osrel)
			}
			if ps, ok := info.PageSize(); !ok || ps != 4096 {
				t.Errorf("PageSize = %d, %v", ps, ok)
			}
			if pb, ok := info.Number("phys_base"); !ok || pb != rn.physBase {
				t.Errorf("NUMBER(phys_base) = %d, %v; want %d", pb, ok, rn.physBase)
			}
			if ko, ok := info.KernelOffset(); !ok || ko != rn.kaslr {
				t.Errorf("KERNELOFFSET = %#x, %v; want %#x", ko, ok, rn.kaslr)
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
		})
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
