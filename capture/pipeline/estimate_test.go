package pipeline

import (
	"math"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
	"golang.org/x/sys/unix"
)

// checkEstimate saves src at each level and compares the size with the
// estimate; tol is the relative error allowed.
func checkEstimate(t *testing.T, src *vmcore.File, levels []filter.Level, opts Options, tol float64) []SizeEstimate {
	t.Helper()
	est, err := Estimate(src, levels, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(est) != len(levels) {
		t.Fatalf("%d estimates for %d levels", len(est), len(levels))
	}
	for i, level := range levels {
		o := opts
		o.Level = level
		out := fixture.CreateFile(t, "dump")
		st, err := Save(src, out, o)
		if err != nil {
			t.Fatal(err)
		}
		e := est[i]
		used := st.BytesOut
		if opts.Format == FormatELF {
			// Zero-filled gaps are holes: what counts is the disk used.
			var sst unix.Stat_t
			if err := unix.Fstat(int(out.Fd()), &sst); err != nil {
				t.Fatal(err)
			}
			used = min(used, sst.Blocks*512)
		}
		rel := math.Abs(float64(e.Bytes-used)) / float64(used)
		t.Logf("%s %v %s: estimate %d, written %d (%.1f%%), kept %d+%d zero / est %d", opts.Format, opts.Codec, e,
			e.Bytes, used, 100*rel, st.PagesKept, st.Zero, e.Pages)
		if e.Level != level || rel > tol {
			t.Errorf("%s %v level %d: estimate %d bytes, Save wrote %d (%.1f%% off, %.0f%% allowed)",
				opts.Format, opts.Codec, level, e.Bytes, used, 100*rel, 100*tol)
		}
	}
	return est
}

func TestEstimateSynthetic(t *testing.T) {
	// 40 MiB in two ranges with a hole between, and a segment stored in
	// part; about a third each zero, random and text-like pages.
	src := fixture.OpenBytes(t, fxCore(fxInfo, fixture.RAM(0, 6000, 6000), fixture.RAM(8192, 4240, 4000)))
	for _, tc := range []struct {
		opts Options
		tol  float64
	}{
		{Options{Codec: codec.Zstd}, 0.05},
		{Options{Codec: codec.Snappy}, 0.05},
		{Options{Codec: codec.None}, 0.02},
		{Options{Format: FormatELF}, 0.02},
	} {
		est := checkEstimate(t, src, []filter.Level{0, 1, 31}, tc.opts, tc.tol)
		// No page tables: nothing can be filtered, and the estimate says so.
		if len(est[2].Degraded) == 0 {
			t.Errorf("level 31 on a core without page tables: no degraded note")
		}
		if est[0].Pages != 10000 || est[0].Sampled < 3000 {
			t.Errorf("level 0: %d pages (want 10000), %d sampled", est[0].Pages, est[0].Sampled)
		}
	}
}

func TestEstimateErrors(t *testing.T) {
	src := fixture.OpenBytes(t, fxCore(fxInfo, fixture.RAM(0, 16, 16)))
	if _, err := Estimate(src, []filter.Level{32}, Options{}); err == nil {
		t.Error("level 32 accepted")
	}
	if _, err := Estimate(src, []filter.Level{1}, Options{Format: "tar"}); err == nil {
		t.Error("unknown format accepted")
	}
	// Nothing held at all: an estimate of the headers, no samples.
	empty := fixture.OpenBytes(t, fxCore(fxInfo, fixture.RAM(0, 16, 0)))
	est, err := Estimate(empty, []filter.Level{1}, Options{Codec: codec.Zstd})
	if err != nil || est[0].Pages != 0 || est[0].Bytes <= 0 || est[0].Bytes > 64<<10 {
		t.Errorf("empty source: %+v %v", est, err)
	}
}

// TestEstimateReal checks the estimate on the real dumps the QEMU tests
// keep, where filtering works: levels 1 and 31 within 10%.
func TestEstimateReal(t *testing.T) {
	if testing.Short() {
		t.Skip("saves each real dump twice")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		checkEstimate(t, d.Open(t), []filter.Level{31, 1}, Options{Codec: codec.Zstd}, 0.10)
	})
}
