package elfcore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// zeroPages reads every stored page of src and returns a keep-set that
// drops the all-zero ones, as the save pipeline's first pass does.
func zeroPages(t *testing.T, src *vmcore.File) (KeepFunc, uint64) {
	t.Helper()
	nonzero := make([]uint64, (src.MaxPFN()+63)/64)
	ps := uint64(src.PageSize)
	buf := make([]byte, 1<<20)
	zero := make([]byte, ps)
	var zeros uint64
	for _, r := range src.PhysRanges() {
		for a := r.Start; a < r.FileEnd; {
			n := min(uint64(len(buf)), r.FileEnd-a)
			if _, err := src.ReadPhys(buf[:n], a); err != nil {
				t.Fatal(err)
			}
			for p := uint64(0); p < n; p += ps {
				if bytes.Equal(buf[p:min(p+ps, n)], zero[:min(ps, n-p)]) {
					zeros++
					continue
				}
				pfn := (a + p) / ps
				nonzero[pfn/64] |= 1 << (pfn % 64)
			}
			a += n
		}
	}
	return func(pfn uint64) bool {
		return pfn/64 < uint64(len(nonzero)) && nonzero[pfn/64]&(1<<(pfn%64)) != 0
	}, zeros
}

// TestRealDumps saves each real dump without its zero pages, reads every
// page back, and has drgn and makedumpfile open the output.
func TestRealDumps(t *testing.T) {
	if testing.Short() {
		t.Skip("reads and writes gigabytes")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		start := time.Now()
		src := d.Open(t)
		keep, zeros := zeroPages(t, src)

		dir := t.TempDir()
		out := filepath.Join(dir, "dump.elf")
		fh, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Save(fh, src, keep, Options{})
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		fi, _ := os.Stat(out)
		t.Logf("%d zero pages of %d; kept %d, zero-filled %d, dropped %d; %d MiB -> %d MiB in %v",
			zeros, src.MaxPFN(), st.KeptPages, st.ZeroFilledPages, st.DroppedPages,
			src.Size()>>20, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
		if st.DroppedPages == 0 || fi.Size() >= src.Size() {
			t.Errorf("nothing dropped: %+v", st)
		}

		t.Run("vmcore", func(t *testing.T) {
			f, err := vmcore.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Flags != 0 || f.VMCOREINFO.OSRelease() != d.KVer || !bytes.Equal(f.NoteData, src.NoteData) {
				t.Errorf("flags %#x, notes differ", f.Flags)
			}
			// The kernel-text PT_LOAD comes out whole and first.
			if s, o := src.Segments[0], f.Segments[0]; s.VirtAddr != o.VirtAddr || s.PhysAddr != o.PhysAddr ||
				s.MemSize != o.MemSize || o.FileSize != o.MemSize {
				t.Errorf("kernel text: source %+v, output %+v", s, o)
			}
			// Every kept page equals the source; every other one is a
			// hole or zeros.
			ps := uint64(src.PageSize)
			a, b := make([]byte, ps), make([]byte, ps)
			zero := make([]byte, ps)
			var kept uint64
			for _, r := range src.PhysRanges() {
				for addr := r.Start; addr < r.FileEnd; addr += ps {
					_, oerr := f.ReadPhys(b, addr)
					if !keep(addr / ps) {
						if oerr == nil && !bytes.Equal(b, zero) {
							t.Fatalf("dropped page %#x holds data", addr)
						}
						if oerr != nil && !errors.Is(oerr, vmcore.ErrHole) {
							t.Fatal(oerr)
						}
						continue
					}
					kept++
					if _, err := src.ReadPhys(a, addr); err != nil {
						t.Fatal(err)
					}
					if oerr != nil || !bytes.Equal(a, b) {
						t.Fatalf("kept page %#x: %v, equal %v", addr, oerr, bytes.Equal(a, b))
					}
				}
			}
			if kept != st.KeptPages {
				t.Errorf("%d kept pages read, layout kept %d", kept, st.KeptPages)
			}
		})

		t.Run("drgn", func(t *testing.T) {
			fixture.CheckWithDrgn(t, out, d, true)
		})

		t.Run("makedumpfile", func(t *testing.T) {
			if log := fixture.MakedumpfileDmesg(t, out); !bytes.Contains(log, []byte(d.Marker("KMSG", 0))) {
				t.Errorf("makedumpfile --dump-dmesg: marker not in the log:\n%s", log)
			}
			// Re-filtering reads every page header and the mm structures.
			kdump := filepath.Join(dir, "dump.kdump")
			fixture.Makedumpfile(t, "-d", "31", "-c", out, kdump)
			if fi, err := os.Stat(kdump); err != nil || fi.Size() < 1<<20 {
				t.Errorf("makedumpfile wrote %v: %v", fi, err)
			}
		})
	})
}
