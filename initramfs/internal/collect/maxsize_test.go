package collect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/size"
)

// TestMaxSize: max_size caps the dump file as makedumpfile's -L does. A
// dump that does not fit is cut before the limit, readable and flagged
// incomplete, with the reason naming max_size; one that fits is saved
// whole, and the level is chosen against max_size when it is less than
// the free space (TestChooseLevel checks the choice among levels).
func TestMaxSize(t *testing.T) {
	core := testCore(t, 3000) // uncompressed: ~12 MiB; zstd: ~5 MiB
	for _, tc := range []struct {
		name     string
		format   config.Format
		compress config.Compression
		limit    int64
		status   Status
	}{
		{"kdump cut", config.FormatKdump, config.CompressNone, 4 << 20, StatusIncomplete},
		{"elf cut", config.FormatELF, config.CompressNone, 4 << 20, StatusIncomplete},
		{"fits", config.FormatKdump, config.CompressZstd, 8 << 20, StatusSaved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dirDisk(t, "nvme0n1", "GOKDUMP")
			env, w := newWorld(t, core, d)
			cfg := testConfig(func(c *config.Config) {
				c.Target, c.DumpLevel, c.Format, c.Compress = "LABEL=GOKDUMP", []filter.Level{0}, tc.format, tc.compress
				c.MaxSize = size.Size(tc.limit)
			})
			limit := tc.limit
			o := finish(t, env, w, cfg, Capture(env, cfg))
			if o.Status != map[Status]string{StatusSaved: "saved", StatusIncomplete: "INCOMPLETE"}[tc.status] {
				t.Fatalf("outcome %s", o)
			}
			st, err := os.Stat(filepath.Join(d.dir, o.Path))
			if err != nil || st.Size() > limit {
				t.Fatalf("dump %v bytes (%v), limit %d", st.Size(), err, limit)
			}
			if tc.status == StatusSaved {
				if !strings.Contains(w.con.String(), "level 0, max_size 8.0 MiB (") {
					t.Errorf("no note of max_size:\n%s", w.con.String())
				}
				return
			}
			if !strings.HasSuffix(o.Path, "/"+crashdir.VMCoreIncomplete) || !strings.Contains(o.Reason, "the dump reached max_size (4 MiB) and was cut there") {
				t.Errorf("outcome %s", o)
			}
			dump, err := anydump.Open(filepath.Join(d.dir, o.Path))
			if err != nil {
				t.Fatalf("the cut dump does not open: %v", err)
			}
			defer dump.Close()
			if !dump.Incomplete {
				t.Error("the cut dump is not flagged incomplete")
			}
			n := 0
			for _, err := range dump.Pages() {
				if err != nil {
					t.Fatalf("pages of the cut dump: %v", err)
				}
				n++
			}
			if n < 100 {
				t.Errorf("only %d pages in the cut dump", n)
			}
		})
	}
}

// TestMaxSizeRawCopy: a raw copy of an unparseable vmcore stops at
// max_size too.
func TestMaxSizeRawCopy(t *testing.T) {
	b, _ := os.ReadFile(testCore(t, 3000))
	b[54] = 99 // e_phentsize: unparseable
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, coreFile(t, b), d)
	cfg := testConfig(func(c *config.Config) { c.Target, c.MaxSize = "LABEL=GOKDUMP", 4<<20 })
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "INCOMPLETE" || o.Format != "raw-copy" || !strings.Contains(o.Reason, "max_size") {
		t.Fatalf("outcome %s", o)
	}
	if st, err := os.Stat(filepath.Join(d.dir, o.Path)); err != nil || st.Size() > 4<<20 {
		t.Errorf("copy %v (%v)", st, err)
	}
}
