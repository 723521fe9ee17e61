package printk

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// realRing opens the lockless ring buffer of a real dump as Read does.
func realRing(t testing.TB, m *kmem.Memory) (*ringLayout, *mem, *ring) {
	t.Helper()
	rl, err := newRingLayout(m.Info)
	if err != nil {
		t.Fatal(err)
	}
	pm := &mem{r: m, bo: m.ByteOrder}
	sym, _ := m.Info.Symbol("prb")
	addr, err := pm.word(sym, 8)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := openRing(pm, rl, addr)
	if err != nil {
		t.Fatal(err)
	}
	return rl, pm, rb
}

func openReal(t testing.TB, path string) (*vmcore.File, *kmem.Memory) {
	t.Helper()
	f, err := vmcore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := kmem.New(f, f.VMCOREINFO, f.Machine)
	if err != nil {
		t.Fatal(err)
	}
	return f, m
}

// TestRealDumpsMatchMakedumpfile compares WriteDmesg with makedumpfile's
// output on the same dump, byte for byte.
func TestRealDumpsMatchMakedumpfile(t *testing.T) {
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		path := d.Path
		_, m := openReal(t, path)
		log, err := Read(m)
		if err != nil {
			t.Fatal(err)
		}
		if log.Kind != KindLockless {
			t.Errorf("Kind = %q", log.Kind)
		}
		var got bytes.Buffer
		if err := log.WriteDmesg(&got); err != nil {
			t.Fatal(err)
		}
		if want := fixture.MakedumpfileDmesg(t, path); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("not makedumpfile's log: %s", fixture.FirstDiff(got.Bytes(), want))
		}
		t.Logf("%d records, %d skipped, %d bytes identical to makedumpfile", len(log.Records), log.Skipped, got.Len())

		marker := d.Marker("KMSG", 0)
		var found, sysrq, panicked bool
		for _, r := range log.Records {
			found = found || r.Text == marker
			sysrq = sysrq || r.Text == "sysrq: Trigger a crash"
			panicked = panicked || r.Text == "Kernel panic - not syncing: sysrq triggered crash"
		}
		if !found || !sysrq || !panicked {
			t.Errorf("marker %q found %v, sysrq line %v, panic line %v", marker, found, sysrq, panicked)
		}
		reason, ctx := log.Panic()
		if !strings.Contains(reason, "sysrq triggered crash") {
			t.Errorf("Panic() reason %q", reason)
		}
		var trace bool
		for _, r := range ctx {
			trace = trace || strings.Contains(r.Text, "sysrq_handle_crash")
		}
		if !trace {
			t.Errorf("Panic() context lacks the call trace: %d records", len(ctx))
		}
	})
}

// TestPatchedDumpMatchesMakedumpfile edits a copy of each real dump into
// the cases a healthy boot log lacks (bytes to escape, lines within a
// record, wide and huge timestamps, a wrapped block, cut and data-less
// records, a text_len past its block) and checks that makedumpfile and
// WriteDmesg still agree byte for byte.
func TestPatchedDumpMatchesMakedumpfile(t *testing.T) {
	if testing.Short() {
		t.Skip("copies each dump (1 GiB)")
	}
	fixture.EachDump(t, func(t *testing.T, d fixture.Dump) {
		fixture.NeedTool(t, "makedumpfile")
		cp := filepath.Join(t.TempDir(), "vmcore")
		copyFile(t, d.Path, cp)
		f, m := openReal(t, cp)
		w, err := os.OpenFile(cp, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		patch := func(va uint64, b []byte) {
			t.Helper()
			for len(b) > 0 {
				pa, n, err := m.Translate(va)
				if err != nil {
					t.Fatal(err)
				}
				// The kernel image is in the file twice: in its own
				// PT_LOAD and in the one of all RAM. Readers may use
				// either.
				k := min(uint64(len(b)), n)
				found := false
				for _, s := range f.Segments {
					if pa < s.PhysAddr || pa-s.PhysAddr >= s.FileSize {
						continue
					}
					k = min(k, s.FileSize-(pa-s.PhysAddr))
					if _, err := w.WriteAt(b[:k], int64(s.Offset+pa-s.PhysAddr)); err != nil {
						t.Fatal(err)
					}
					found = true
				}
				if !found {
					t.Fatalf("physical %#x not in the file", pa)
				}
				b, va = b[k:], va+k
			}
		}
		u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

		rl, pm, rb := realRing(t, m)
		count := uint64(1) << rb.countBits
		// Live ids: the bootstrap tail is reusable, then 0, 1, ...
		id := func(i uint64) uint64 { return (rb.tailID + 1 + i) & rb.idMask }
		descAt := func(i uint64) uint64 { return rb.descs + (id(i)&(count-1))*rl.descSize }
		infoAt := func(i uint64) uint64 { return rb.infos + (id(i)&(count-1))*rl.infoSize }
		lpos := func(i uint64) (uint64, uint64) {
			b, _ := pm.word(descAt(i)+rl.lposBegin, 8)
			n, _ := pm.word(descAt(i)+rl.lposNext, 8)
			return b, n
		}
		if rec, ref, st := rb.record(id(1)); st != recOK {
			t.Fatalf("record 1: %+v", rec)
		} else if text, _ := rb.text(&ref); !strings.HasPrefix(text, "Command line:") {
			t.Fatalf("record 1: %q", text)
		}

		// 1: every kind of byte, and lines.
		b1, _ := lpos(1)
		odd := "esc:\x01\x1b\x7f\xc3\xa9\xff\x80\x00|\t|\r|\v|\f| end\nsecond\n\nfourth"
		patch(rb.data+b1&(1<<rb.sizeBits-1)+8, []byte(odd))
		patch(infoAt(1)+rl.textLen, binary.LittleEndian.AppendUint16(nil, uint16(len(odd))))
		// 2: a timestamp past 100000 s, with a line break.
		patch(infoAt(2)+rl.tsNsec, u64(123456789012345678))
		b2, _ := lpos(2)
		patch(rb.data+b2&(1<<rb.sizeBits-1)+8+3, []byte{'\n'})
		// 3: ts_nsec at 2^63 and above.
		patch(infoAt(3)+rl.tsNsec, u64(1<<63+5))
		// 4, 5: cut by the crash; the kernel's failed reservation.
		patch(descAt(4)+rl.stateVar, u64(id(4))) // reserved
		patch(descAt(5)+rl.lposBegin, u64(failedLpos))
		patch(descAt(5)+rl.lposNext, u64(failedLpos))
		// 6: an empty line, stored without a data block.
		patch(descAt(6)+rl.lposBegin, u64(emptyLineLpos))
		patch(descAt(6)+rl.lposNext, u64(emptyLineLpos))
		// 7: text_len past the block.
		patch(infoAt(7)+rl.textLen, binary.LittleEndian.AppendUint16(nil, 1000))
		// 0: its block is at the start of the ring; make it a block
		// that wrapped there from the end of the previous wrap.
		b0, _ := lpos(0)
		if b0&(1<<rb.sizeBits-1) != 0 {
			t.Fatalf("record 0 begins at %#x", b0)
		}
		patch(descAt(0)+rl.lposBegin, u64(b0-64))

		// Two long records get all 256 byte values, 128 each.
		var long []uint64
		for i := uint64(8); len(long) < 2 && i < (rb.headID-rb.tailID)&rb.idMask; i++ {
			if b, n := lpos(i); n-b >= 8+128 && n-b < 1<<rb.sizeBits {
				long = append(long, i)
			}
		}
		if len(long) < 2 {
			t.Fatal("no two records of 128 bytes")
		}
		for j, i := range long {
			all := make([]byte, 128)
			for c := range all {
				all[c] = byte(128*j + c)
			}
			b, _ := lpos(i)
			patch(rb.data+b&(1<<rb.sizeBits-1)+8, all)
			patch(infoAt(i)+rl.textLen, binary.LittleEndian.AppendUint16(nil, 128))
		}

		// Reopen: the reader must not see cached pages.
		f.Close()
		_, m2 := openReal(t, cp)
		log, err := Read(m2)
		if err != nil {
			t.Fatal(err)
		}
		if log.Skipped != 2 {
			t.Errorf("skipped %d, want 2", log.Skipped)
		}
		var got bytes.Buffer
		if err := log.WriteDmesg(&got); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`\x01\x1b\x7f\xffffffc3\xffffffa9\xffffffff\xffffff80\x00|` + "\t|\r|\v|\f| end\n",
			"[123456789.012345] ", "[9223372036.854775] ", "[    0.000000] Linux version"} {
			if !strings.Contains(got.String(), s) {
				t.Errorf("output lacks %q", s)
			}
		}
		if want := fixture.MakedumpfileDmesg(t, cp); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("not makedumpfile's log: %s", fixture.FirstDiff(got.Bytes(), want))
		}
		t.Logf("%d records, %d skipped, %d bytes identical to makedumpfile", len(log.Records), log.Skipped, got.Len())
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
