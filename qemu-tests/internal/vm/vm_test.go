package vm

import (
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
)

func TestDiedBeforeStage1(t *testing.T) {
	panicLine := "[    0.647357] Kernel panic - not syncing: Attempted to kill the idle task!"
	tests := []struct {
		name  string
		lines []string
		want  bool
	}{
		{"early panic", []string{"[    0.30] x86/fpu: x87 FPU will use FXSAVE", panicLine}, true},
		{"panic after stage1", []string{"stage1: [1.20] start, kernel 6.12", panicLine}, false},
		{"no panic", []string{"[    0.30] x86/fpu: x87 FPU will use FXSAVE"}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log Log
			for _, l := range tt.lines {
				log = append(log, Line{Text: l})
			}
			line, got := DiedBeforeStage1(log)
			if got != tt.want || (got && line != panicLine) {
				t.Errorf("diedBeforeStage1 = %q, %v; want %v", line, got, tt.want)
			}
		})
	}
}

// TestCensus counts the pages and markers of a synthetic dump: markers
// inside a page, across two pages, repeated, of another run, and bare
// prefixes that are no marker.
func TestCensus(t *testing.T) {
	const id = "0123456789ab"
	put := map[uint64][]struct {
		off int
		s   string
	}{
		0: {{100, guest.Marker("USER", id, 0)}, {2000, guest.Marker("USER", id, 1)}},
		1: {{100, guest.Marker("USER", id, 0)}, {300, guest.MarkerPrefix("USER", id)}, {600, guest.Marker("KMSG", "ffffffffffff", 0)}},
		// across pfn 2 and 3
		2: {{4096 - 10, guest.Marker("CACHE", id, 7)[:10]}},
		3: {{0, guest.Marker("CACHE", id, 7)[10:]}, {900, guest.Marker("KMSG", id, 0)}},
	}
	path := filepath.Join(t.TempDir(), "core")
	err := fixture.Core{Loads: []fixture.Load{fixture.RAM(0, 6, 6)}, Content: func(pfn uint64, page []byte) {
		clear(page)
		for _, p := range put[pfn] {
			copy(page[p.off:], p.s)
		}
	}}.Build().WriteFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := TakeCensus(path, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pages != 6 || c.Markers["USER"] != 2 || c.Markers["CACHE"] != 1 || c.Markers["KMSG"] != 1 || len(c.Markers) != 3 {
		t.Errorf("census %+v, want 6 pages, USER 2, CACHE 1, KMSG 1", c)
	}
	if at, err := FindMarker(path, guest.Marker("KMSG", id, 0)); err != nil || at != 3<<12+900 {
		t.Errorf("FindMarker = %#x, %v; want %#x", at, err, 3<<12+900)
	}
	if at, err := FindMarker(path, guest.Marker("CACHE", id, 7)); err != nil || at != 3<<12-10 {
		t.Errorf("FindMarker across pages = %#x, %v; want %#x", at, err, 3<<12-10)
	}
	if n, err := CountMarkers(path, guest.MarkerPrefix("USER", id)); err != nil || n != 2 {
		t.Errorf("CountMarkers USER = %d, %v", n, err)
	}
}
