package diskdump

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestRoundTripReal dumps the real vmcores, one with every codec, and
// reads every page back.
func TestRoundTripReal(t *testing.T) {
	if testing.Short() {
		t.Skip("writes whole dumps")
	}
	for _, tc := range realCases(t, codec.Zstd, codec.Zlib, codec.Snappy, codec.None) {
		t.Run(tc.name(), func(t *testing.T) {
			src := tc.d.Open(t)
			fh := fixture.CreateFile(t, "dump")
			start := time.Now()
			_, st, err := writeDump(t, src, fh, dumpOpts{codec: tc.c, dumpLevel: 1, chunk: 4})
			if err != nil {
				t.Fatal(err)
			}
			wrote := time.Since(start)
			fi, _ := fh.Stat()
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
			kf, err := Open(fh, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			if kf.Incomplete() || kf.Header.Compression() != tc.c || kf.NumDumped() != uint64(st.pages) {
				t.Errorf("incomplete %v, compression %v, %d pages (wrote %d)", kf.Incomplete(), kf.Header.Compression(), kf.NumDumped(), st.pages)
			}
			want := HeaderFromVmcore(src)
			h := kf.Header
			if h.Release != want.Release || h.Version != want.Version || h.PhysBase != want.PhysBase ||
				h.MaxMapnr != src.MaxPFN() || !bytes.Equal(h.Notes, src.NoteData) || kf.VMCOREINFO == nil ||
				len(kf.PRStatus) != len(src.PRStatus) || h.NrCPUs != len(src.PRStatus) || h.DumpLevel != 1 {
				t.Errorf("header read back: %+v", h)
			}
			for pfn := uint64(0); pfn < kf.MaxPFN(); pfn++ {
				if ram := ramPFN(src, pfn); kf.IsRAM(pfn) != ram || kf.IsDumpable(pfn) != ram {
					t.Fatalf("pfn %#x: IsRAM %v IsDumpable %v, vmcore has it: %v", pfn, kf.IsRAM(pfn), kf.IsDumpable(pfn), ram)
				}
			}
			readStart := time.Now()
			n := comparePages(t, kf, src)
			t.Logf("%v: %d pages (%d zero, %d raw, %d compressed), %d MiB, written in %v, read back in %v",
				tc.c, n, st.zero, st.raw, st.compressed, fi.Size()>>20, wrote.Round(time.Millisecond), time.Since(readStart).Round(time.Millisecond))
		})
	}
}

// TestReadPhys compares ReadPhys across page boundaries with the vmcore,
// and checks holes fail like the vmcore's.
func TestReadPhys(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a whole dump")
	}
	src := fixture.RealDump(t, "6.1").Open(t)
	fh := fixture.CreateFile(t, "dump")
	// Exclude every third pfn in a region to make holes.
	excl := func(pfn uint64) bool { return pfn >= 0x1000 && pfn < 0x2000 && pfn%3 == 0 }
	if _, _, err := writeDump(t, src, fh, dumpOpts{codec: codec.Snappy, dumpLevel: 1, exclude: excl, chunk: 1}); err != nil {
		t.Fatal(err)
	}
	fi, _ := fh.Stat()
	kf, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	// A MiB from the middle of the largest RAM range: where RAM ends
	// below 4 GiB moves with the crash reservation from run to run.
	var big vmcore.PhysRange
	for _, r := range src.PhysRanges() {
		if r.FileEnd-r.Start > big.FileEnd-big.Start {
			big = r
		}
	}
	if big.FileEnd-big.Start < 4<<20 {
		t.Fatalf("no RAM range of 4 MiB in the dump: %+v", src.PhysRanges())
	}
	for _, tc := range []struct {
		addr uint64
		n    int
	}{
		{0x100000, 4096}, {0x100010, 100}, {0x100ff0, 32}, {0x100800, 3 * 4096}, {0x3001000 + 7, 10000},
		{big.Start + (big.FileEnd-big.Start)/2&^0xfff + 0x800, 1 << 20},
	} {
		got := make([]byte, tc.n)
		want := make([]byte, tc.n)
		n, err := kf.ReadPhys(got, tc.addr)
		if err != nil || n != tc.n {
			t.Errorf("ReadPhys(%#x, %d) = %d, %v", tc.addr, tc.n, n, err)
			continue
		}
		src.ReadPhys(want, tc.addr)
		if !bytes.Equal(got, want) {
			t.Errorf("ReadPhys(%#x, %d) differs", tc.addr, tc.n)
		}
	}
	// Below 1 MiB there is no RAM in this dump: a hole, as in the vmcore.
	buf := make([]byte, 64)
	if _, err := kf.ReadPhys(buf, 0x1000); !errors.Is(err, ErrHole) || errors.Is(err, ErrExcluded) {
		t.Errorf("read of non-RAM: %v", err)
	}
	if _, err := src.ReadPhys(buf, 0x1000); !errors.Is(err, ErrHole) {
		t.Errorf("vmcore read of non-RAM: %v", err)
	}
	// An excluded pfn: ErrExcluded and ErrHole, after the bytes before it.
	n, err := kf.ReadPhys(make([]byte, 8192), 0x1001000)
	if !errors.Is(err, ErrExcluded) || !errors.Is(err, ErrHole) || n != 4096 {
		t.Errorf("read into excluded pfn 0x1002: %d, %v", n, err)
	}
	if _, err := kf.ReadPhys(buf, kf.MaxPFN()*4096); !errors.Is(err, ErrHole) {
		t.Errorf("read past max_mapnr: %v", err)
	}
}
