package diskdump

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestReadersReadOurLZO: the readers of Fedora's and RHEL's dumps
// (makedumpfile -l) accept ours: makedumpfile finds the kernel log in our
// LZO dump and re-filters it with -l (decoding every page with liblzo2),
// the re-filtered file holds the pages of the vmcore, and drgn opens our
// dump through libkdumpfile.
func TestReadersReadOurLZO(t *testing.T) {
	if testing.Short() {
		t.Skip("writes whole dumps")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		src := d.Open(t)
		fh := fixture.CreateFile(t, "dump")
		_, st, err := writeDump(t, src, fh, dumpOpts{codec: codec.LZO, dumpLevel: 1, chunk: 16})
		if err != nil {
			t.Fatal(err)
		}
		if st.compressed == 0 {
			t.Fatal("no page compressed")
		}
		kf, err := OpenFile(fh.Name())
		if err != nil {
			t.Fatal(err)
		}
		n := comparePages(t, kf, src)
		kf.Close()
		t.Logf("ours: %d pages (%d LZO) equal the vmcore", n, st.compressed)

		marker := d.Marker("KMSG", 0)
		if log := fixture.MakedumpfileDmesg(t, fh.Name()); !bytes.Contains(log, []byte(marker)) {
			t.Errorf("makedumpfile --dump-dmesg: kernel log (%d bytes) lacks %s", len(log), marker)
		}
		refiltered := filepath.Join(t.TempDir(), "refiltered")
		fixture.Makedumpfile(t, "-l", "-d", "31", fh.Name(), refiltered)
		rf, err := OpenFile(refiltered)
		if err != nil {
			t.Fatal(err)
		}
		defer rf.Close()
		t.Logf("re-filtered by makedumpfile -l: %d pages equal the vmcore", comparePages(t, rf, src))
		runDrgn(t, fh.Name(), d, true)
	})
}
