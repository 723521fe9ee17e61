package diskdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

var le = binary.LittleEndian

// writeOnly hides an output's ReadAt, as a pipe or a write-only file
// would.
type writeOnly struct{ w io.WriterAt }

func (o writeOnly) WriteAt(p []byte, off int64) (int, error) { return o.w.WriteAt(p, off) }

// TestWriterExcludePage: pages that cannot be read leave the 2nd bitmap
// (readers say "excluded", not zeros), the notes learnt on the way are
// written after the data and found by readers, and the header says
// incomplete.
func TestWriterExcludePage(t *testing.T) {
	for _, readable := range []bool{true, false} {
		name := map[bool]string{true: "readable", false: "write-only"}[readable]
		t.Run(name, func(t *testing.T) {
			hdr := testHeader(100000, codec.Zstd)
			f := &fixture.SparseFile{}
			var out io.WriterAt = f
			if !readable {
				out = writeOnly{f}
			}
			w, err := NewWriter(out, hdr)
			if err != nil {
				t.Fatal(err)
			}
			bm := bytes.Repeat([]byte{0xff}, 13) // pfns 0..103
			if err := w.SetBitmaps(40000, bm, bm); err != nil {
				t.Fatal(err)
			}
			if err := w.StartPages(); err != nil {
				t.Fatal(err)
			}
			bad := map[uint64]bool{40010: true, 40011: true, 40100: true}
			page := make([]byte, 4096)
			for pfn := uint64(40000); pfn < 40104; pfn++ {
				if bad[pfn] {
					ex, err := w.ExcludePage(pfn)
					if err != nil || ex != readable {
						t.Fatalf("ExcludePage(%d) = %v, %v", pfn, ex, err)
					}
					continue
				}
				page[0] = byte(pfn)
				if err := w.WritePage(pfn, page, 0); err != nil {
					t.Fatal(err)
				}
			}
			m := &vmcore.Missing{PageSize: 4096}
			m.Add(40010, 2)
			m.Add(40100, 1)
			notes := vmcore.ReplaceMissingNote(hdr.Notes, le, m)
			ns, _ := vmcore.ParseNotes(notes, le, 0, 0)
			if err := w.ReplaceNotes(notes, ns.VMCOREINFOOffset, ns.VMCOREINFOSize); err != nil {
				t.Fatal(err)
			}
			w.SetIncomplete()
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			d, err := Open(f, f.Size())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !d.Incomplete() {
				t.Error("not flagged incomplete")
			}
			if d.VMCOREINFO == nil || d.Header.VMCOREINFOOffset < 0 {
				t.Errorf("VMCOREINFO lost: %v at %d", d.VMCOREINFO, d.Header.VMCOREINFOOffset)
			}
			got, err := vmcore.MissingFromNotes(d.Notes, le)
			if err != nil || got == nil || got.Pages != 3 {
				t.Fatalf("GOKDUMP note: %+v, %v", got, err)
			}
			buf := make([]byte, 4096)
			for pfn := uint64(40000); pfn < 40104; pfn++ {
				err := d.ReadPage(pfn, buf)
				switch {
				case bad[pfn] && readable:
					if !errors.Is(err, ErrExcluded) || !d.IsRAM(pfn) || d.IsDumpable(pfn) {
						t.Errorf("missing pfn %d: %v, RAM %v, dumpable %v", pfn, err, d.IsRAM(pfn), d.IsDumpable(pfn))
					}
				case bad[pfn]:
					// Stored as zeros where the bit cannot be cleared; the
					// note still lists it.
					if err != nil || buf[0] != 0 {
						t.Errorf("pfn %d: %v, %d", pfn, err, buf[0])
					}
				default:
					if err != nil || buf[0] != byte(pfn) {
						t.Errorf("pfn %d: %v, %d", pfn, err, buf[0])
					}
				}
			}
		})
	}
}

// TestWriterSparseBitmaps: a machine of 2^33 page frames (memory at
// 2^45) with two small chunks of memory: the writer writes a few blocks,
// not the 2 GiB of bitmaps, and keeps a count for two blocks only.
func TestWriterSparseBitmaps(t *testing.T) {
	const maxMapnr = 1 << 33
	f := &fixture.SparseFile{}
	w, err := NewWriter(f, testHeader(maxMapnr, codec.Zstd))
	if err != nil {
		t.Fatal(err)
	}
	one := []byte{0x01}
	for _, pfn := range []uint64{0x100, maxMapnr - 8} {
		if err := w.SetBitmaps(pfn, one, one); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.StartPages(); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for _, pfn := range []uint64{0x100, maxMapnr - 8} {
		if err := w.WritePage(pfn, page, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(w.blocks) != 2 {
		t.Errorf("%d block counts kept, want 2", len(w.blocks))
	}
	t.Logf("file %d bytes, %d written in %d writes, %d allocated", f.Size(), f.Written, f.Writes, f.Allocated())
	if f.Size() < 2*maxMapnr/8 {
		t.Errorf("file of %d bytes cannot hold the bitmaps", f.Size())
	}
	if f.Allocated() > 64<<10 {
		t.Errorf("%d bytes allocated for 2 pages", f.Allocated())
	}
	d, err := Open(f, f.Size())
	if err != nil {
		t.Fatalf("our reader refuses what the writer wrote: %v", err)
	}
	if !d.IsDumpable(maxMapnr-8) || d.IsDumpable(maxMapnr-7) {
		t.Error("bitmap bits")
	}
}
