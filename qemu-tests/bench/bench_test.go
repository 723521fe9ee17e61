package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	mk := func(level int, name string, wall float64, size int64, rss int64) row {
		for _, tl := range tools("gokdump", "mkd-up") {
			if tl.Name == name {
				return row{Input: "in", RAM: 1024, Level: level, Tool: tl,
					sample: sample{Wall: time.Duration(wall * float64(time.Second)), Size: size, RSSKiB: rss}}
			}
		}
		t.Fatalf("no tool %q", name)
		return row{}
	}
	r := &report{Machine: machine{CPUs: 2}, Rows: []row{
		mk(31, mkdC, 1.0, 100, 35000),
		mk(31, mkdL, 0.2, 150, 35000),
		mk(31, upZ, 0.3, 95, 36000),
		mk(31, upL, 0.15, 140, 36000),
		mk(31, oursZstd, 0.1, 90, 20000),
		mk(31, oursZstd1, 0.36, 90, 18000),
		mk(31, oursLZO1, 0.14, 139, 17000),
		mk(1, mkdC, 4.0, 500, 35000),
		mk(1, oursZstd, 1.5, 510, 40000),
	}}
	got := strings.Join(r.Targets(), "\n")
	for _, want := range []string{
		"in, -d 31, gokdump zstd, 1 CPU: wall 0.36 s ≤ upstream makedumpfile -z (zstd) 0.30 s: **missed** by 20%; output 0.0 ≤ 0.0 MiB: met, 95% of the limit",
		"in, -d 31, gokdump lzo, 1 CPU: wall 0.14 s ≤ upstream makedumpfile -l (lzo) 0.15 s: met",
		"in, -d 31, gokdump zstd (2 workers): wall 0.10 s ≤ 0.5 × upstream makedumpfile -z (zstd) 0.30 s: met, 67% of the limit",
		"in, -d 1: wall 1.50 s ≤ 0.25 × makedumpfile -c 4.00 s: **missed** by 50%",
		"in: peak RSS of ours, any level, codec and workers, 39.1 ≤ 32 MiB: **missed** by 22%",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets lack %q:\n%s", want, got)
		}
	}
	md := r.Markdown()
	if !strings.Contains(md, "| in (1024 MiB RAM) | 31 | gokdump zstd | 0.10 | 0.00 | 0.00 | 19.5 | 0.0 | 0.33 | 0.95 |") {
		t.Errorf("table row missing:\n%s", md)
	}
	// Without upstream, zstd compares with Debian's -c, lzo with its -l.
	r.Rows = slices.DeleteFunc(r.Rows, func(x row) bool { return x.Tool.Upstream })
	got = strings.Join(r.Targets(), "\n")
	if !strings.Contains(got, "gokdump lzo, 1 CPU: wall 0.14 s ≤ makedumpfile -l (lzo) 0.20 s: met") ||
		strings.Contains(got, "(2 workers)") {
		t.Errorf("targets without upstream:\n%s", got)
	}
}

func TestPass1(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want time.Duration
	}{
		{"x.kd: level 31, kdump zstd: 22769 of 229079 pages kept (3226 zero), 101.5 MiB read, 29.6 MiB written, 0.27s (369 MiB/s, bitmaps 0.05s)\n", 50 * time.Millisecond},
		{"STEP [Checking for memory holes  ] : 0.500000 seconds\nSTEP [Excluding unnecessary pages] : 1.250000 seconds\n" +
			"STEP [Copying data               ] : 9.000000 seconds\nSTEP [Excluding unnecessary pages] : 1.000000 seconds\n", 1750 * time.Millisecond},
		{"nothing", 0},
	} {
		if got := pass1(tc.out); got != tc.want {
			t.Errorf("pass1(%q) = %v, want %v", tc.out, got, tc.want)
		}
	}
	if got := readMiB("…, 101.5 MiB read, 29.6 MiB written"); got != 101.5 {
		t.Errorf("readMiB = %v", got)
	}
}

// TestSparse builds sparse inputs from the real 6.1 vmcore, one within
// the first root of mem_section and the first PMD table of vmemmap, one
// past both, and checks that both tools see all the added RAM as free
// pages at -d 31.
func TestSparse(t *testing.T) {
	if testing.Short() {
		t.Skip("copies a 1 GiB vmcore")
	}
	// 6.1: Debian's makedumpfile filters its pages right.
	base := fixture.RealDump(t, "6.1").Path
	dir := t.TempDir()
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
	b, mb := save(base), mkd(base)
	// 4 GiB + 92 GiB ends at a root of mem_section (32 GiB) and past the
	// first GiB of vmemmap (64 GiB of RAM).
	for _, extra := range []uint64{1 << 30, 92 << 30} {
		t.Run(fmt.Sprintf("%dG", extra>>30), func(t *testing.T) {
			sp := filepath.Join(dir, "sparse.elf")
			if err := makeSparse(base, sp, extra); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(sp)
			pages := extra >> 12
			s := save(sp)
			if d := s.Free - b.Free; d != pages {
				t.Errorf("free pages: %d more than the base, want %d", d, pages)
			}
			if d := s.Zero + s.PagesKept - b.Zero - b.PagesKept; d != 0 {
				t.Errorf("zero and kept pages: %d more than the base, want none", d)
			}
			if d := s.PagesTotal - b.PagesTotal; d != pages {
				t.Errorf("pages: %d more than the base, want %d", d, pages)
			}
			if d := mkd(sp) - mb; d != pages {
				t.Errorf("makedumpfile: %d more free pages than on the base, want %d", d, pages)
			}
		})
	}
}
