package collect

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
)

// unflatten rebuilds the file the device's stream holds.
func unflatten(t *testing.T, dev string) string {
	t.Helper()
	in, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(t.TempDir(), "rebuilt")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := diskdump.Unflatten(bufio.NewReader(in), out); err != nil {
		t.Fatalf("unflatten: %v", err)
	}
	return p
}

func TestCaptureRaw(t *testing.T) {
	core := testCore(t, 3000)
	log := bytes.Repeat([]byte("[    1.000000] kernel log line\n"), 200)
	for _, tc := range []struct {
		name       string
		size       int64
		incomplete bool
	}{
		{"fits", 32 << 20, false},
		{"too-small", 4 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := rawDisk(t, tc.size)
			dev := &rd.dev
			env, _ := newWorld(t, core, rd)
			cfg := testConfig(func(c *config.Config) { c.DumpLevel = []filter.Level{1} })
			src := openSource(env, cfg)
			defer src.close()
			src.dmesg = log
			tgt, _ := config.ParseTarget("raw:" + dev.Path)
			res := captureRaw(env, cfg, tgt, dev, src)
			want := StatusSaved
			if tc.incomplete {
				want = StatusIncomplete
			}
			if res.Status != want || res.Path != "raw:"+dev.Path || res.Format != "kdump-flattened" {
				t.Fatalf("result %+v, want %s", res, want)
			}
			d, err := anydump.Open(unflatten(t, dev.Path))
			if err != nil {
				t.Fatalf("rebuilt dump does not open: %v", err)
			}
			defer d.Close()
			if d.Incomplete != tc.incomplete {
				t.Errorf("incomplete = %v, want %v", d.Incomplete, tc.incomplete)
			}
			ref, err := vmcore.Open(core)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			// Every page reads back as it was, up to where the device
			// filled; after that (incomplete dumps only) pages read as
			// zeros, as the format says of pages without a descriptor.
			a, b := make([]byte, 4096), make([]byte, 4096)
			n, cut := 0, false
			for pfn, err := range d.Pages() {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.ReadPhys(a, pfn*4096); err != nil {
					t.Fatalf("pfn %d: %v", pfn, err)
				}
				ref.ReadPhys(b, pfn*4096)
				switch {
				case bytes.Equal(a, b) && !cut:
					n++
				case tc.incomplete && bytes.Equal(a, make([]byte, 4096)):
					cut = true
				default:
					t.Fatalf("pfn %d differs (after the cut: %v)", pfn, cut)
				}
			}
			if cut != tc.incomplete {
				t.Errorf("cut = %v, want %v", cut, tc.incomplete)
			}
			if n < 100 {
				t.Errorf("only %d pages read back", n)
			}
			f, _ := os.Open(dev.Path)
			defer f.Close()
			dm, err := crashdir.ReadRawDmesg(f, tc.size)
			if err != nil || !bytes.Equal(dm.Text, log) || dm.CrashTime != 1764246000 {
				t.Errorf("kernel log trailer: %v %v", dm, err)
			}
		})
	}
}

// TestCaptureRawCopy: an unparseable vmcore goes onto a raw device as a
// flattened byte copy.
func TestCaptureRawCopy(t *testing.T) {
	core := testCore(t, 500)
	b, _ := os.ReadFile(core)
	b[54] = 1
	d := rawDisk(t, 16<<20)
	dev := &d.dev
	env, _ := newWorld(t, coreFile(t, b), d)
	cfg := testConfig(nil)
	src := openSource(env, cfg)
	defer src.close()
	tgt, _ := config.ParseTarget("raw:" + dev.Path)
	res := captureRaw(env, cfg, tgt, dev, src)
	if res.Status != StatusSaved || res.Format != "raw-copy" {
		t.Fatalf("result %+v", res)
	}
	got, _ := os.ReadFile(unflatten(t, dev.Path))
	if !bytes.Equal(got, b) {
		t.Errorf("rebuilt copy differs (%d vs %d bytes)", len(got), len(b))
	}
}
