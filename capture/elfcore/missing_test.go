package elfcore

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestUnstoredOverlap: a copy cut before the kernel text's own data and
// after the RAM that repeats it keeps no data for the kernel text: the
// output drops those pages (p_filesz < p_memsz) rather than store zeros
// for them, even though two segments overlap there.
func TestUnstoredOverlap(t *testing.T) {
	loads := x86Loads()
	// The text data first in the file, as the kernel writes it; cut in
	// the big RAM range's data, before the kernel text's memory (RAM
	// 0x100000 + 0x700000 < 0x1000000), and the text segment after it.
	loads[0], loads[3] = loads[3], loads[0]
	_, s := newSource(t, loads, -1)
	src, _ := newSource(t, loads, int64(s.LoadOff[0]+0x700000))
	m, st := save(t, src, nil, Options{})
	out := checkELF(t, m.Bytes(), src)
	checkPages(t, out, src, nil)
	for _, seg := range out.Segments {
		if seg.VirtAddr == 0xffffffff81000000 && seg.FileSize != 0 {
			t.Errorf("kernel text stored (%#x bytes) though the source lacks it", seg.FileSize)
		}
	}
	if st.ZeroFilledPages != 0 {
		t.Errorf("%d zero-filled pages", st.ZeroFilledPages)
	}
}

// TestMissingPageAndNotes: a page given up after the layout (its read
// failed) leaves a hole; notes given at the end replace the PT_NOTE; the
// file can be flagged incomplete at Close.
func TestMissingPageAndNotes(t *testing.T) {
	src, _ := newSource(t, x86Loads(), -1)
	l := mustLayout(t, src, nil, Options{})
	var f fixture.MemFile
	w, err := NewWriter(&f, l)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	const bad = 0x200000
	for pa := range l.KeptPages() {
		if pa == bad {
			if err := w.MissingPage(pa); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := l.readPage(buf, pa); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePage(pa, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.MissingPage(bad); !errors.Is(err, ErrOrder) {
		t.Errorf("MissingPage out of order: %v", err)
	}
	miss := &vmcore.Missing{PageSize: 4096}
	miss.Add(bad/4096, 1)
	w.ReplaceNotes(vmcore.ReplaceMissingNote(src.NoteData, binary.LittleEndian, miss))
	w.SetIncomplete()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	out := fixture.OpenBytes(t, f.Bytes())
	if out.Flags&vmcore.FlagIncomplete == 0 {
		t.Error("not flagged incomplete")
	}
	if out.Missing == nil || out.Missing.Pages != 1 || len(out.Notes) != len(src.Notes)+1 {
		t.Errorf("notes %d, missing %+v", len(out.Notes), out.Missing)
	}
	if _, err := out.ReadPhys(buf, bad); !errors.Is(err, vmcore.ErrMissing) {
		t.Errorf("missing page reads: %v", err)
	}
	if _, err := out.ReadPhys(buf, bad+4096); err != nil || buf[7] != pat(bad+4096+7) {
		t.Errorf("next page: %v", err)
	}
}
