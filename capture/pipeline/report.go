package pipeline

import (
	"fmt"
	"io"
	"strings"
)

// Excluded returns the pages left out, all classes together. Missing
// pages are not excluded: they were to be kept and could not be.
func (s *Stats) Excluded() uint64 {
	return s.Zero + s.Cache + s.CachePriv + s.User + s.Free + s.HWPoison + s.Offline + s.Absent
}

// WriteTable writes the page classes as makedumpfile's report lists them,
// so that the two tools can be compared line by line: counts of pages in
// decimal and, as makedumpfile prints them, in hex, with their size.
//
// "Original pages" counts each page of memory once. makedumpfile counts
// the pages of every PT_LOAD of /proc/vmcore, and the kernel maps its own
// image twice there (the kernel-text mapping and the direct map): its
// count is larger by the kernel image's pages, and so are its "Excluded"
// and "Remaining" sums. The table says so in a footnote.
func (s *Stats) WriteTable(w io.Writer) error {
	mib := func(n uint64) string {
		return fmt.Sprintf("%9.1f MiB", float64(n)*4096/(1<<20))
	}
	var b strings.Builder
	row := func(name string, n uint64) {
		fmt.Fprintf(&b, "%-30s %10d  0x%016x %s\n", name, n, n, mib(n))
	}
	fmt.Fprintf(&b, "%-30s %10s  %-18s %13s\n", "", "pages", "(hex)", "size")
	row("Original pages (*)", s.PagesTotal)
	row("  Excluded pages", s.Excluded())
	row("    Pages filled with zero", s.Zero)
	row("    Non-private cache pages", s.Cache)
	row("    Private cache pages", s.CachePriv)
	row("    User process data pages", s.User)
	row("    Free pages", s.Free)
	row("    Hwpoison pages", s.HWPoison)
	row("    Offline pages", s.Offline)
	if s.Absent > 0 {
		row("    Absent from the source", s.Absent)
	}
	row("  Remaining pages", s.PagesKept)
	if s.Missing > 0 {
		row("  Missing pages (not saved)", s.Missing)
		if s.Unreadable > 0 {
			row("    of which unreadable", s.Unreadable)
		}
	}
	row("Pages in the dump file", s.Stored)
	row("Total pfns (with holes)", s.MaxPFN)
	b.WriteString("(*) each page of memory once; makedumpfile also counts the kernel image's pages a second time\n" +
		"    (/proc/vmcore maps them twice), so its Original, Excluded or Remaining pages are larger by that many.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is one line: level, codec, pages and bytes, speed. Its page
// counts are those of the output file ("in the dump", as gokdump info
// counts them), then what was left out.
func (s *Stats) Summary() string {
	sec := s.Duration.Seconds()
	rate := 0.0
	if sec > 0 {
		rate = float64(s.BytesIn) / (1 << 20) / sec
	}
	inc := ""
	if s.Missing > 0 {
		inc = fmt.Sprintf(", %.1f MiB missing", float64(s.Missing)*4096/(1<<20))
		if m := s.MissingList; m != nil {
			inc = fmt.Sprintf(", %.1f MiB missing in %d ranges", mib(m.Bytes()), len(m.Ranges))
		}
	}
	if s.Incomplete {
		inc += " INCOMPLETE"
	}
	bm := ""
	if s.BitmapTime > 0 {
		bm = fmt.Sprintf(", bitmaps %.2fs", s.BitmapTime.Seconds())
	}
	var pages string
	if s.Format == FormatELF {
		filler := s.Stored - min(s.Stored, s.PagesKept)
		pages = fmt.Sprintf("%d of %d pages in the dump (%d with their contents, %d excluded but stored as zeros between them), %d left out",
			s.Stored, s.PagesTotal, s.PagesKept, filler, s.Excluded()-min(s.Excluded(), filler))
	} else {
		pages = fmt.Sprintf("%d of %d pages in the dump (%d with their contents, %d zero pages sharing one), %d left out",
			s.Stored, s.PagesTotal, s.PagesKept, s.Zero, s.Excluded()-min(s.Excluded(), s.Zero))
	}
	return fmt.Sprintf("level %d, %s %s: %s; %.1f MiB read, %.1f MiB written, %.2fs (%.0f MiB/s%s)%s",
		s.Level, s.Format, s.Codec, pages, float64(s.BytesIn)/(1<<20), float64(s.BytesOut)/(1<<20), sec, rate, bm, inc)
}
