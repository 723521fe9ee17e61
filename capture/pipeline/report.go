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
// so that the two tools can be compared line by line. Counts are pages;
// makedumpfile prints them in hex, this table in decimal with MiB.
func (s *Stats) WriteTable(w io.Writer) error {
	mib := func(n uint64) string {
		return fmt.Sprintf("%9.1f MiB", float64(n)*4096/(1<<20))
	}
	var b strings.Builder
	row := func(name string, n uint64) {
		fmt.Fprintf(&b, "  %-26s %10d %s\n", name, n, mib(n))
	}
	fmt.Fprintf(&b, "%-28s %10d %s\n", "Original pages", s.PagesTotal, mib(s.PagesTotal))
	row("Excluded pages", s.Excluded())
	row("  Pages filled with zero", s.Zero)
	row("  Non-private cache pages", s.Cache)
	row("  Private cache pages", s.CachePriv)
	row("  User process data pages", s.User)
	row("  Free pages", s.Free)
	row("  Hwpoison pages", s.HWPoison)
	row("  Offline pages", s.Offline)
	if s.Absent > 0 {
		row("  Absent from the source", s.Absent)
	}
	row("Remaining pages", s.PagesKept)
	if s.Missing > 0 {
		row("Missing pages (not saved)", s.Missing)
		if s.Unreadable > 0 {
			row("  of which unreadable", s.Unreadable)
		}
	}
	fmt.Fprintf(&b, "%-28s %10d\n", "Total pfns (with holes)", s.MaxPFN)
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is one line: level, codec, pages and bytes, speed.
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
	return fmt.Sprintf("level %d, %s %s: %d of %d pages kept (%d zero), %.1f MiB read, %.1f MiB written, %.2fs (%.0f MiB/s%s)%s",
		s.Level, s.Format, s.Codec, s.PagesKept, s.PagesTotal, s.Zero,
		float64(s.BytesIn)/(1<<20), float64(s.BytesOut)/(1<<20), sec, rate, bm, inc)
}
