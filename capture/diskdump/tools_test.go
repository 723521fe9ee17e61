package diskdump

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/internal/fixture"
)

// Tests that real readers (makedumpfile 1.7.2, drgn 0.0.22 through
// libkdumpfile) accept what the Writer makes.

// runDrgn has drgn open dump, made from d (see fixture.CheckWithDrgn).
func runDrgn(t *testing.T, dump string, d fixture.Dump, kmsg bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("drgn is slow")
	}
	start := time.Now()
	fixture.CheckWithDrgn(t, dump, d, kmsg)
	t.Logf("drgn read %s in %v", filepath.Base(dump), time.Since(start).Round(time.Millisecond))
}

// TestDrgnReadsOurs: drgn opens our zstd, zlib, snappy and lzo dumps.
func TestDrgnReadsOurs(t *testing.T) {
	if testing.Short() {
		t.Skip("writes whole dumps")
	}
	var _ interface {
		ReadPhys([]byte, uint64) (int, error)
	} = (*File)(nil)
	for _, tc := range realCases(t, codec.Zstd, codec.Zlib, codec.Snappy, codec.LZO) {
		t.Run(tc.name(), func(t *testing.T) {
			fh := fixture.CreateFile(t, "dump")
			if _, _, err := writeDump(t, tc.d.Open(t), fh, dumpOpts{codec: tc.c, dumpLevel: 1, chunk: 16}); err != nil {
				t.Fatal(err)
			}
			runDrgn(t, fh.Name(), tc.d, true)
		})
	}
}

// TestMakedumpfileReadsOurs: makedumpfile finds the kernel log in our
// zlib and lzo dumps (the codecs Debian's reads) and re-filters them
// with the same codec; the re-filtered file holds the same pages.
func TestMakedumpfileReadsOurs(t *testing.T) {
	if testing.Short() {
		t.Skip("writes whole dumps")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		for _, c := range []struct {
			codec codec.Codec
			flag  string
		}{{codec.Zlib, "-c"}, {codec.LZO, "-l"}} {
			src := d.Open(t)
			marker := d.Marker("KMSG", 0)
			fh := fixture.CreateFile(t, "dump")
			if _, _, err := writeDump(t, src, fh, dumpOpts{codec: c.codec, dumpLevel: 1, chunk: 16}); err != nil {
				t.Fatal(err)
			}
			if log := fixture.MakedumpfileDmesg(t, fh.Name()); !bytes.Contains(log, []byte(marker)) {
				t.Errorf("%v: kernel log (%d bytes) lacks %s", c.codec, len(log), marker)
			}
			refiltered := filepath.Join(t.TempDir(), "refiltered")
			fixture.Makedumpfile(t, c.flag, "-d", "31", fh.Name(), refiltered)
			kf, err := OpenFile(refiltered)
			if err != nil {
				t.Fatal(err)
			}
			n := comparePages(t, kf, src)
			kf.Close()
			t.Logf("%v re-filtered with %s: %d pages equal the vmcore", c.codec, c.flag, n)
		}
	})
}

// TestHeaderMatchesMakedumpfile compares our header, sub-header, notes
// and 1st bitmap byte for byte with makedumpfile -c -d 31's.
func TestHeaderMatchesMakedumpfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs makedumpfile on whole vmcores")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		src := d.Open(t)
		ref := makedumpfileRef(t, d.Path, "-c", "-d", "31")
		fh := fixture.CreateFile(t, "dump")
		nothing := func(uint64) bool { return true }
		if _, _, err := writeDump(t, src, fh, dumpOpts{codec: codec.Zlib, dumpLevel: 31, exclude: nothing, chunk: 8}); err != nil {
			t.Fatal(err)
		}
		ours, err := os.ReadFile(fh.Name())
		if err != nil {
			t.Fatal(err)
		}
		kf, err := OpenFile(ref)
		if err != nil {
			t.Fatal(err)
		}
		defer kf.Close()
		theirs := make([]byte, kf.lay.bitmap2)
		if _, err := kf.r.ReadAt(theirs, 0); err != nil {
			t.Fatal(err)
		}
		if len(ours) < len(theirs) {
			t.Fatalf("our file is %d bytes, makedumpfile's bitmaps end at %d", len(ours), len(theirs))
		}
		for _, part := range []struct {
			name       string
			start, end int64
		}{
			{"disk_dump_header", 0, headerSize},
			{"header block", headerSize, 4096},
			{"kdump_sub_header", 4096, 4096 + subHeaderSize},
			{"notes and sub-header blocks", 4096 + subHeaderSize, kf.lay.bitmap1},
			{"1st bitmap", kf.lay.bitmap1, kf.lay.bitmap2},
		} {
			a, b := ours[part.start:part.end], theirs[part.start:part.end]
			if !bytes.Equal(a, b) {
				i := 0
				for i < len(a) && a[i] == b[i] {
					i++
				}
				t.Errorf("%s differs at file offset %#x: ours % x, makedumpfile's % x", part.name,
					part.start+int64(i), a[i:min(i+16, len(a))], b[i:min(i+16, len(b))])
			}
		}
	})
}
