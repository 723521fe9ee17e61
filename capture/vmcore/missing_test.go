package vmcore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

func TestMissingNoteRoundTrip(t *testing.T) {
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		m := &Missing{PageSize: 4096}
		m.Add(0x10, 4)
		m.Add(0x14, 2) // touches: merged
		m.Add(0x100, 1)
		if want := []PFNRange{{0x10, 6}, {0x100, 1}}; !reflect.DeepEqual(m.Ranges, want) || m.Pages != 7 {
			t.Fatalf("Add: %+v", m)
		}
		b := AppendMissingNote(nil, bo, m)
		ns, err := ParseNotes(b, bo, 0, 0)
		if err != nil || ns.MissingErr != nil {
			t.Fatalf("ParseNotes: %v, %v", err, ns.MissingErr)
		}
		if !reflect.DeepEqual(ns.Missing, m) {
			t.Errorf("decoded %+v, want %+v", ns.Missing, m)
		}
		if n := ns.Notes[0]; n.Name != NoteGokdump || n.Type != NT_GOKDUMP_MISSING {
			t.Errorf("note %q type %d", n.Name, n.Type)
		}
		if !m.Contains(0x15) || m.Contains(0x16) || !m.Contains(0x100) || m.Contains(0xf) {
			t.Error("Contains")
		}
	}
}

func TestMissingPartial(t *testing.T) {
	m := &Missing{PageSize: 4096}
	for i := uint64(0); i < MaxMissingRanges+10; i++ {
		m.Add(2*i, 1)
	}
	if len(m.Ranges) != MaxMissingRanges || !m.Partial || m.Pages != MaxMissingRanges+10 {
		t.Fatalf("%d ranges, partial %v, %d pages", len(m.Ranges), m.Partial, m.Pages)
	}
	got, err := DecodeMissing(AppendMissingNote(nil, le, m)[20:], le)
	if err != nil || !got.Partial || got.Pages != m.Pages || len(got.Ranges) != MaxMissingRanges {
		t.Fatalf("decoded %v ranges, %+v", err, got != nil)
	}
}

func TestDecodeMissingRejects(t *testing.T) {
	good := func() []byte {
		m := &Missing{PageSize: 4096}
		m.Add(1, 2)
		m.Add(8, 1)
		return AppendMissingNote(nil, le, m)[20:] // 12 header + "GOKDUMP\0"
	}
	if _, err := DecodeMissing(good(), le); err != nil {
		t.Fatalf("good note: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(d []byte) []byte
	}{
		{"short", func(d []byte) []byte { return d[:20] }},
		{"version", func(d []byte) []byte { le.PutUint32(d, 2); return d }},
		{"page size", func(d []byte) []byte { le.PutUint64(d[8:], 3000); return d }},
		{"count", func(d []byte) []byte { le.PutUint64(d[24:], 3); return d }},
		{"count huge", func(d []byte) []byte { le.PutUint64(d[24:], 1<<62); return d }},
		{"unsorted", func(d []byte) []byte { le.PutUint64(d[48:], 0); return d }},
		{"empty range", func(d []byte) []byte { le.PutUint64(d[40:], 0); return d }},
		{"wraps", func(d []byte) []byte { le.PutUint64(d[56:], ^uint64(0)-4); return d }},
		{"more listed than counted", func(d []byte) []byte { le.PutUint64(d[16:], 2); return d }},
	} {
		if _, err := DecodeMissing(tc.edit(good()), le); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestMissingNoteMarksRanges: an ELF dump whose GOKDUMP note lists pages
// as missing (zeros in its file, or left out of it) reads them as missing.
func TestMissingNoteMarksRanges(t *testing.T) {
	m := &Missing{PageSize: 4096}
	m.Add(0x101, 2) // stored pages of the RAM segment
	m.Add(0x203, 1) // declared only (p_memsz > p_filesz)
	c := x86Core()
	c.Notes = ReplaceMissingNote(c.Notes, le, m)
	f := openBytes(t, build(c).Bytes())
	if !reflect.DeepEqual(f.Missing, m) {
		t.Errorf("Missing = %+v, want %+v", f.Missing, m)
	}
	p := make([]byte, 8)
	for _, a := range []uint64{0x101000, 0x102ff8, 0x203000} {
		if _, err := f.ReadPhys(p, a); !errors.Is(err, ErrMissing) || !errors.Is(err, ErrHole) {
			t.Errorf("ReadPhys(%#x): %v, want ErrMissing", a, err)
		}
	}
	for _, a := range []uint64{0x100ff8, 0x103000} {
		if _, err := f.ReadPhys(p, a); err != nil {
			t.Errorf("ReadPhys(%#x): %v", a, err)
		}
		checkPat(t, p, a)
	}
	if _, err := f.ReadPhys(p, 0x202000); !errors.Is(err, ErrHole) || errors.Is(err, ErrMissing) {
		t.Errorf("ReadPhys of declared memory: %v", err)
	}
	// Replacing drops the old note; an empty list removes it.
	if n := ReplaceMissingNote(c.Notes, le, nil); bytes.Contains(n, []byte(NoteGokdump)) {
		t.Error("note not removed")
	}
	if n := ReplaceMissingNote(x86Core().Notes, le, nil); !bytes.Equal(n, x86Core().Notes) {
		t.Error("notes without the note changed")
	}
}

// TestWrappingSegment: a PT_LOAD reaching or passing the top of the
// address space is clipped with a warning, not refused, and MaxPFN does
// not wrap to 0.
func TestWrappingSegment(t *testing.T) {
	for _, tc := range []struct {
		name         string
		paddr, memsz uint64
		warn         bool
	}{
		{"ends at 2^64-1", ^uint64(0) - 0x1000, 0x1000, false},
		{"ends at 2^64", ^uint64(0) - 0xfff, 0x1000, true},
		{"wraps", ^uint64(0) - 0x1000, 0x10000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture.Core{Loads: []fixture.Load{fixture.RAM(0, 4, 4),
				{Paddr: tc.paddr, MemSize: tc.memsz}}}
			f := openBytes(t, c.Build().Bytes())
			if want := (^uint64(0))/4096 + 1; f.MaxPFN() != want {
				t.Errorf("MaxPFN %#x, want %#x", f.MaxPFN(), want)
			}
			if got := len(f.Warnings) > 0; got != tc.warn {
				t.Errorf("warnings %q", f.Warnings)
			}
			if s := f.Segments[1]; s.PhysAddr+s.MemSize < s.PhysAddr {
				t.Errorf("segment still wraps: %+v", s)
			}
			p := make([]byte, 4096)
			if _, err := f.ReadPhys(p, 0); err != nil {
				t.Errorf("memory below: %v", err)
			}
		})
	}
}

// TestDecoyVMCOREINFO: a damaged note followed by a PT_NOTE full of
// VMCOREINFO notes that do not parse costs a few parses, not one per
// decoy; the real one past a few decoys is not looked for.
func TestDecoyVMCOREINFO(t *testing.T) {
	bad := []byte(strings.Repeat("x\n", 30000)) // 30000 lines, none with "="
	var notes []byte
	notes = append(notes, note(le, "CORE", 1, make([]byte, 16))...)
	le.PutUint32(notes[4:], 1<<20) // descsz overruns: damaged
	for len(notes) < 16<<20 {
		notes = append(notes, note(le, NoteVMCOREINFO, 0, bad)...)
	}
	c := fixture.Core{Notes: notes, Loads: []fixture.Load{fixture.RAM(0, 1, 1)}}
	start := time.Now()
	f := openBytes(t, c.Build().Bytes())
	t.Logf("%d MiB of decoys: %v", len(notes)>>20, time.Since(start))
	if f.VMCOREINFO != nil || f.NoteErr == nil {
		t.Errorf("VMCOREINFO %v, NoteErr %v", f.VMCOREINFO, f.NoteErr)
	}
	// Also without damage: only the first few VMCOREINFO notes are parsed.
	ns, _ := ParseNotes(notes[len(note(le, "CORE", 1, make([]byte, 16))):], le, 0, 0)
	if ns.VMCOREINFO != nil {
		t.Error("a decoy parsed")
	}
	// A good VMCOREINFO after a decoy is still found; after four, the
	// search has given up.
	for decoys, found := range map[int]bool{1: true, 4: false} {
		good := note(le, "CORE", 1, make([]byte, 16))
		le.PutUint32(good[4:], 1<<20)
		for range decoys {
			good = append(good, note(le, NoteVMCOREINFO, 0, bad)...)
		}
		good = append(good, note(le, NoteVMCOREINFO, 0, []byte("OSRELEASE=6.1\nPAGESIZE=4096\n"))...)
		f = openBytes(t, fixture.Core{Notes: good, Loads: []fixture.Load{fixture.RAM(0, 1, 1)}}.Build().Bytes())
		if (f.VMCOREINFO != nil) != found {
			t.Errorf("after %d decoys: VMCOREINFO found %v, want %v", decoys, f.VMCOREINFO != nil, found)
		}
	}
}
