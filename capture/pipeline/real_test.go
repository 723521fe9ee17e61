package pipeline

import (
	"bytes"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestRealParallelIdentical: on a real vmcore, the parallel pipeline writes
// the same bytes as one worker, read with pread or through mmap views.
func TestRealParallelIdentical(t *testing.T) {
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) { realParallelIdentical(t, d.Path) })
}

func realParallelIdentical(t *testing.T, path string) {
	levels := []filter.Level{31, 1}
	if testing.Short() {
		levels = levels[:1]
	}
	pread, mapped := openBoth(t, path)
	dir := t.TempDir()
	for _, level := range levels {
		want, st := saveFile(t, pread, dir, Options{Level: level, Codec: codec.Zstd, Workers: 1})
		if st.PagesKept == 0 || len(st.Degraded) > 1 {
			t.Fatalf("-d %d: %s; degraded: %q", level, st.Summary(), st.Degraded)
		}
		t.Logf("-d %d: %s", level, st.Summary())
		for _, src := range []*vmcore.File{pread, mapped} {
			got, _ := saveFile(t, src, dir, Options{Level: level, Codec: codec.Zstd, Workers: 4})
			if !bytes.Equal(got, want) {
				t.Fatalf("-d %d, 4 workers (mapped %v): output differs from 1 worker's at byte %d",
					level, src == mapped, firstDiff(got, want))
			}
		}
	}
}
