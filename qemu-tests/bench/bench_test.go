package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []int64
		want int64
	}{
		{nil, 0}, {[]int64{5}, 5}, {[]int64{9, 1, 5}, 5}, {[]int64{4, 1, 3, 2}, 2}, {[]int64{7, 7, 1, 100, 7}, 7},
	} {
		in := append([]int64(nil), tc.in...)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %d, want %d", tc.in, got, tc.want)
		}
		if !equal(in, tc.in) {
			t.Errorf("median reordered its input: %v", tc.in)
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReplaceSection(t *testing.T) {
	doc := "# Benchmarks\n\nWhy.\n\n" + beginMark + "\nold table\n" + endMark + "\n\n## After\n"
	got := replaceSection(doc, "new table\n")
	want := "# Benchmarks\n\nWhy.\n\n" + beginMark + "\nnew table\n" + endMark + "\n\n## After\n"
	if got != want {
		t.Errorf("replace:\n%q\nwant\n%q", got, want)
	}
	if again := replaceSection(got, "new table\n"); again != got {
		t.Error("replacing with the same section changed the document")
	}
	if got := replaceSection("", "t\n"); got != "# Benchmarks\n\n"+beginMark+"\nt\n"+endMark+"\n" {
		t.Errorf("new file: %q", got)
	}
	if got := replaceSection("# B\nno marks\n", "t\n"); !strings.HasPrefix(got, "# B\nno marks\n\n"+beginMark) {
		t.Errorf("appended: %q", got)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		got, limit float64
		want       string
	}{
		{1, 2, "met, 50% of the limit"}, {2, 2, "met, 100% of the limit"}, {3, 2, "**missed** by 50%"}, {1, 0, "no reference"},
	} {
		if v := verdict(tc.got, tc.limit); v != tc.want {
			t.Errorf("verdict(%v, %v) = %q, want %q", tc.got, tc.limit, v, tc.want)
		}
	}
}

func TestTargets(t *testing.T) {
	mk := func(level int, name string, ours bool, wall float64, size int64, rss int64) row {
		return row{Input: "in", RAM: 1024, Level: level, Tool: tool{Name: name, Ours: ours},
			sample: sample{Wall: time.Duration(wall * float64(time.Second)), Size: size, RSSKiB: rss}}
	}
	r := &report{Rows: []row{
		mk(31, "makedumpfile -c (zlib)", false, 1.0, 100, 35000),
		mk(31, "makedumpfile -l (lzo)", false, 0.2, 150, 35000),
		mk(31, "gokdump zstd", true, 0.1, 90, 20000),
		mk(31, "gokdump zstd, 1 worker", true, 0.3, 90, 18000),
		mk(1, "makedumpfile -c (zlib)", false, 4.0, 500, 35000),
		mk(1, "makedumpfile -l (lzo)", false, 1.0, 600, 35000),
		mk(1, "gokdump zstd", true, 1.5, 510, 40000),
		mk(1, "gokdump zstd, 1 worker", true, 2.0, 510, 18000),
	}}
	got := strings.Join(r.Targets(), "\n")
	for _, want := range []string{
		"-d 31: wall 0.10 s ≤ makedumpfile -l 0.20 s: met, 50% of the limit; output 0.0 ≤ makedumpfile -c 0.0 MiB: met, 90%",
		"-d 1: wall 1.50 s ≤ 0.25 × makedumpfile -c 4.00 s: **missed** by 50%; output 0.0 ≤ 0.0 MiB: **missed** by 2%",
		"-d 31, 1 worker: wall 0.30 s ≤ makedumpfile -c 1.00 s: met",
		"peak RSS of ours, any level and workers, 39.1 ≤ 32 MiB: **missed** by 22%",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets lack %q:\n%s", want, got)
		}
	}
	md := r.Markdown()
	if !strings.Contains(md, "| in (1024 MiB RAM) | 31 | gokdump zstd | 0.10 | 0.00 | 19.5 | 0.0 | 0.10 | 0.50 | 0.90 |") {
		t.Errorf("table row missing:\n%s", md)
	}
}

// TestSparse builds a small sparse input from the real 6.1 vmcore and
// checks that both tools see the added RAM as free pages at -d 31.
func TestSparse(t *testing.T) {
	if testing.Short() {
		t.Skip("copies a 1 GiB vmcore")
	}
	// 6.1: Debian's makedumpfile filters its pages right.
	base := fixture.RealDump(t, "6.1").Path
	dir := t.TempDir()
	sp := filepath.Join(dir, "sparse.elf")
	const extra = 1 << 30
	if err := makeSparse(base, sp, extra); err != nil {
		t.Fatal(err)
	}
	save := func(path string) *pipeline.Stats {
		src, err := vmcore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		out, err := os.Create(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		st, err := pipeline.Save(src, out, pipeline.Options{Level: 31, Codec: codec.Snappy})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	b, s := save(base), save(sp)
	// The memory map of 1 GiB is 16 MiB, kept: its zero pages are
	// excluded as such, the rest of the new RAM as free.
	const pages, mapPages = extra >> 12, extra >> 12 * 64 >> 12
	if d := s.Free - b.Free; d != pages-mapPages {
		t.Errorf("free pages: %d more than the base, want %d", d, pages-mapPages)
	}
	if d := s.Zero + s.PagesKept - b.Zero - b.PagesKept; d != mapPages {
		t.Errorf("zero and kept pages: %d more than the base, want %d", d, mapPages)
	}
	if d := s.PagesTotal - b.PagesTotal; d != pages {
		t.Errorf("pages: %d more than the base, want %d", d, pages)
	}
	mkd := func(path string) uint64 {
		out := filepath.Join(dir, "mkd")
		os.Remove(out)
		msg := fixture.Makedumpfile(t, "--message-level", "31", "-l", "-d", "31", path, out)
		m := regexp.MustCompile(`Free pages +: 0x([0-9a-f]+)`).FindSubmatch(bytes.ReplaceAll(msg, []byte("\r"), []byte("\n")))
		if m == nil {
			t.Fatalf("no free page count in makedumpfile's report:\n%s", msg)
		}
		n, _ := strconv.ParseUint(string(m[1]), 16, 64)
		return n
	}
	if d := mkd(sp) - mkd(base); d != pages-mapPages {
		t.Errorf("makedumpfile: %d more free pages than on the base, want %d", d, pages-mapPages)
	}
}
