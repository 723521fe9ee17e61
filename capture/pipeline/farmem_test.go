package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestFarMemory gives a dump one segment where it belongs and one at an
// absurd physical address (2^50), as a corrupt header might. The save must
// not size bitmaps or loops by the absurd address: it finishes quickly,
// keeps the real memory, and says what it left out.
func TestFarMemory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmcore")
	buildSynthCore(t, path, []fixture.Load{
		synthSeg(0x100000, 64*synthPS, 64*synthPS),
		synthSeg(1<<50, 4*synthPS, 4*synthPS),
	})
	src, err := vmcore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, format := range []Format{FormatKdump, FormatELF} {
		out, err := os.Create(filepath.Join(dir, "out-"+string(format)))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st, err := Save(src, out, Options{Level: 1, Format: format})
		out.Close()
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s: %v for 68 pages", format, d)
		}
		if st.MaxPFN > (1<<48)/synthPS {
			t.Errorf("%s: MaxPFN %#x beyond 48 address bits", format, st.MaxPFN)
		}
		if st.PagesKept+st.Zero < 64 {
			t.Errorf("%s: %d kept + %d zero of the 64 real pages", format, st.PagesKept, st.Zero)
		}
		if !strings.Contains(strings.Join(st.Degraded, "\n"), "physical address bits") {
			t.Errorf("%s: the far memory is not reported: %q", format, st.Degraded)
		}
	}
}
