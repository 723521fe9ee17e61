package collect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/size"
)

func TestChooseLevel(t *testing.T) {
	const mib = 1 << 20
	est := func(levels ...int64) func() ([]pipeline.SizeEstimate, error) {
		return func() ([]pipeline.SizeEstimate, error) {
			var out []pipeline.SizeEstimate
			for i := 0; i < len(levels); i += 2 {
				out = append(out, pipeline.SizeEstimate{Level: filter.Level(levels[i]), Bytes: levels[i+1]})
			}
			return out, nil
		}
	}
	never := func() ([]pipeline.SizeEstimate, error) { t.Error("estimate called"); return nil, nil }
	for _, tc := range []struct {
		name   string
		levels []filter.Level
		free   int64
		max    int64 // max_size
		est    func() ([]pipeline.SizeEstimate, error)
		want   filter.Level
		why    string
	}{
		{"one level", []filter.Level{1}, 10 * mib, 0, never, 1, "level 1, 10.0 MiB free"},
		{"free unknown", []filter.Level{1, 31}, -1, 0, never, 1, "free space is unknown"},
		{"first fits", []filter.Level{1, 31}, 200 * mib, 0, est(1, 100*mib, 31, 10*mib), 1, "level 1 chosen: ~100.0 MiB expected, 200.0 MiB free"},
		{"fallback", []filter.Level{1, 31}, 50 * mib, 0, est(1, 100*mib, 31, 10*mib), 31, "level 31 chosen: ~10.0 MiB expected, 50.0 MiB free; level 1 needs ~107.2 MiB"},
		{"headroom", []filter.Level{1, 31}, 100 * mib, 0, est(1, 100*mib, 31, 10*mib), 31, "level 1 needs"},
		{"none fits", []filter.Level{0, 31, 1}, 5 * mib, 0, est(0, 300*mib, 31, 10*mib, 1, 100*mib), 31, "level 31 chosen, the smallest, though no level fits in 5.0 MiB free"},
		{"max_size less than free", []filter.Level{1, 31}, 200 * mib, 50 * mib, est(1, 100*mib, 31, 10*mib), 31, "level 31 chosen: ~10.0 MiB expected, max_size 50.0 MiB (200.0 MiB free); level 1 needs"},
		{"max_size, free unknown", []filter.Level{1, 31}, -1, 200 * mib, est(1, 100*mib, 31, 10*mib), 1, "level 1 chosen: ~100.0 MiB expected, max_size 200.0 MiB"},
		{"free less than max_size", []filter.Level{1, 31}, 50 * mib, 200 * mib, est(1, 100*mib, 31, 10*mib), 31, "50.0 MiB free"},
		{"estimate fails", []filter.Level{1, 31}, 5 * mib, 0, func() ([]pipeline.SizeEstimate, error) { return nil, errors.New("boom") }, 1, "no size estimate (boom)"},
	} {
		room, what := room(tc.free, size.Size(tc.max))
		got, why := chooseLevel(tc.levels, room, what, tc.est)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: level %d (%q), want %d (%q)", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestProgressLine(t *testing.T) {
	got := pipeline.ProgressLine(250, 1000, 4096, 2*time.Second)
	want := "saving  25%      1.0 MiB     0.5 MiB/s ETA 0:06 "
	if got != want {
		t.Errorf("ProgressLine = %q, want %q", got, want)
	}
	if got := pipeline.ProgressLine(0, 0, 4096, 0); !strings.Contains(got, "100%") || !strings.Contains(got, "ETA --:--") {
		t.Errorf("empty dump: %q", got)
	}
	// Updates are throttled, but each quarter is shown and ended with a
	// newline; a log line ends an open progress line first.
	con := &console{}
	c := NewConsole(con, time.Now(), time.Now)
	p := newProgress(c, time.Now, 4096, true)
	p.interval = time.Hour
	var checkpoints []uint64
	var at uint64
	p.checkpoint = func() { checkpoints = append(checkpoints, at) }
	p.checkpointEvery = time.Hour
	for i := uint64(0); i <= 60; i++ {
		at = i
		p.update(i, 100)
	}
	c.Logf("between")
	for i := uint64(61); i <= 100; i++ {
		at = i
		p.update(i, 100)
	}
	p.end()
	// A checkpoint at each quarter, before its line.
	if want := []uint64{25, 50, 75, 100}; !slices.Equal(checkpoints, want) {
		t.Errorf("checkpoints at %v, want %v", checkpoints, want)
	}
	order := []string{"\rgokdump: saving   0%", "\rgokdump: saving  25%", "\n", "\rgokdump: saving  50%", "\n",
		"gokdump: [", "between\n", "\rgokdump: saving  75%", "\n", "\rgokdump: saving 100%", "\n"}
	out := con.String()
	for _, w := range order {
		i := strings.Index(out, w)
		if i < 0 {
			t.Fatalf("console lacks %q in order:\n%q", w, con.String())
		}
		out = out[i+len(w):]
	}
	if n := strings.Count(con.String(), "\r"); n != 5 {
		t.Errorf("%d progress updates shown, want 5:\n%q", n, con.String())
	}
}

var resultLine = regexp.MustCompile(`(?m)^gokdump: (LEFTOVER|saved|INCOMPLETE|FAILED) .*$`)

// TestSaveTo saves a synthetic vmcore into a directory as the capture
// does after mounting, with leftovers and retention.
func TestSaveTo(t *testing.T) {
	env, w := newWorld(t, testCore(t, 600))
	mnt := t.TempDir()
	base := filepath.Join(mnt, "var/crash")
	// Earlier dumps: three complete, one cut short, one not ours.
	for _, d := range []struct{ name, file string }{
		{"2025-01-01-00:00:00", crashdir.VMCore},
		{"2025-01-02-00:00:00", crashdir.VMCore},
		{"2025-01-03-00:00:00", crashdir.VMCoreIncomplete},
		{"2025-01-04-00:00:00", crashdir.VMCore},
		{"photos", "cat.jpg"},
	} {
		os.MkdirAll(filepath.Join(base, d.name), 0o700)
		os.WriteFile(filepath.Join(base, d.name, d.file), []byte("old"), 0o600)
	}
	con := w.con
	cfg := testConfig(func(c *config.Config) { c.DumpLevel = []filter.Level{1}; c.Keep = 3 })
	src := openSource(env, cfg)
	defer src.close()
	res := saveTo(env, cfg, mnt, src)
	if res.Status != StatusSaved || res.Level != 1 || res.Format != "kdump" {
		t.Fatalf("result %+v", res)
	}
	if !regexp.MustCompile(`^/var/crash/2025-11-27-12:20:00/vmcore$`).MatchString(res.Path) {
		t.Errorf("path %q: want the crash time from VMCOREINFO", res.Path)
	}
	lines := resultLine.FindAllString(con.String(), -1)
	if len(lines) != 1 || lines[0] != "gokdump: LEFTOVER /var/crash/2025-01-03-00:00:00/vmcore-incomplete state=incomplete bytes=3" {
		t.Errorf("result lines %q", lines)
	}
	// keep = 3: the new one and the two newest before it.
	var left []string
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := "2025-01-03-00:00:00 2025-01-04-00:00:00 2025-11-27-12:20:00 photos"; strings.Join(left, " ") != want {
		t.Errorf("left %q, want %q", left, want)
	}
	p := filepath.Join(mnt, res.Path)
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("vmcore: %v %v", st, err)
	}
	if st, _ := os.Stat(filepath.Dir(p)); st.Mode().Perm() != 0o700 {
		t.Errorf("dump dir mode %v", st.Mode())
	}
	if st.Size() != res.Bytes {
		t.Errorf("reported %d bytes, file has %d", res.Bytes, st.Size())
	}
	d, err := anydump.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Format != anydump.Kdump || d.Incomplete {
		t.Errorf("dump %s, incomplete %v", d.Format, d.Incomplete)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), crashdir.VMCoreIncomplete)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vmcore-incomplete left: %v", err)
	}
}

// TestSaveToFull fills a small filesystem: with one level the dump is
// incomplete but readable and flagged; with a fallback list the level
// that fits is chosen.
func TestSaveToFull(t *testing.T) {
	core := testCore(t, 3000) // level 0: ~12 MiB uncompressed; level 1: ~8 MiB
	for _, tc := range []struct {
		name   string
		levels []filter.Level
		status Status
		level  filter.Level
		format config.Format
	}{
		{"one-level", []filter.Level{0}, StatusIncomplete, 0, config.FormatKdump},
		{"fallback", []filter.Level{0, 1}, StatusSaved, 1, config.FormatKdump},
		{"elf", []filter.Level{0}, StatusIncomplete, 0, config.FormatELF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := tmpfs(t, 10<<20)
			env, w := newWorld(t, core)
			con := w.con
			cfg := testConfig(func(c *config.Config) {
				c.DumpLevel, c.Compress, c.Format = tc.levels, config.CompressNone, tc.format
			})
			src := openSource(env, cfg)
			defer src.close()
			res := saveTo(env, cfg, mnt, src)
			if res.Status != tc.status || res.Level != tc.level {
				t.Fatalf("result %+v, want %s at level %d", res, tc.status, tc.level)
			}
			if tc.status == StatusIncomplete {
				if !strings.HasSuffix(res.Path, "/"+crashdir.VMCoreIncomplete) || !strings.Contains(res.Reason, "full") {
					t.Errorf("incomplete result %+v", res)
				}
				d, err := anydump.Open(filepath.Join(mnt, res.Path))
				if err != nil {
					t.Fatalf("incomplete dump does not open: %v", err)
				}
				if !d.Incomplete {
					t.Error("not flagged incomplete")
				}
				d.Close()
			}
			if tc.name == "fallback" && !strings.Contains(con.String(), "level 1 chosen") {
				t.Errorf("no note of the level chosen:\n%s", con.String())
			}
		})
	}
}

// coreFile writes b as a vmcore file and returns its path.
func coreFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vmcore")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openCoreBytes makes b the /proc/vmcore of the test and opens it as the
// capture does, with the default config.
func openCoreBytes(t *testing.T, b []byte) (*Env, *config.Config, *source, *console) {
	t.Helper()
	env, w := newWorld(t, coreFile(t, b))
	cfg := testConfig(nil)
	src := openSource(env, cfg)
	t.Cleanup(src.close)
	return env, cfg, src, w.con
}

// TestDamagedNote: a note that overruns its segment costs only itself;
// the dump is filtered and saved in the configured format.
func TestDamagedNote(t *testing.T) {
	b, _ := os.ReadFile(testCore(t, 1500))
	binary.LittleEndian.PutUint32(b[176:], 0xfffffff0) // the first note's namesz
	env, cfg, src, con := openCoreBytes(t, b)
	mnt := t.TempDir()
	if src.f == nil || src.f.VMCOREINFO == nil || !strings.Contains(con.String(), "damaged notes") {
		t.Fatalf("damaged note: not opened, VMCOREINFO lost, or not said:\n%s", con.String())
	}
	res := saveTo(env, cfg, mnt, src)
	if res.Status != StatusSaved || res.Format != "kdump" {
		t.Fatalf("result %+v\n%s", res, con.String())
	}
	d, err := anydump.Open(filepath.Join(mnt, res.Path))
	if err != nil {
		t.Fatalf("dump does not open: %v", err)
	}
	defer d.Close()
	if d.VMCOREINFO == nil {
		t.Error("the dump has no VMCOREINFO")
	}
}

// TestRawCopy: a /proc/vmcore that cannot be parsed (corrupt ELF header or
// program headers, notes past the end of the file) is copied byte for byte, flagged incomplete
// while the copy runs and if it cannot finish.
func TestRawCopy(t *testing.T) {
	good, _ := os.ReadFile(testCore(t, 1500))
	put64 := func(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	for _, tc := range []struct {
		name   string
		mutate func([]byte)
	}{
		{"phentsize", func(b []byte) { b[54] = 99 }},
		{"phnum-zero", func(b []byte) { b[56], b[57] = 0, 0 }},
		{"phoff-past-end", func(b []byte) { put64(b, 32, 1<<40) }},
		{"note-huge", func(b []byte) { put64(b, 64+32, 1<<40) }},
		{"load-filesz-over-memsz", func(b []byte) { put64(b, 120+32, 1<<30) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.mutate(b)
			env, cfg, src, con := openCoreBytes(t, b)
			mnt := t.TempDir()
			if src.f != nil || !strings.Contains(con.String(), "raw copy") {
				t.Fatalf("corrupt vmcore opened, or no note of the raw copy:\n%s", con.String())
			}
			res := saveTo(env, cfg, mnt, src)
			if res.Status != StatusSaved || res.Format != "raw-copy" {
				t.Fatalf("result %+v", res)
			}
			got, err := os.ReadFile(filepath.Join(mnt, res.Path))
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("the copy differs from /proc/vmcore (%d vs %d bytes, %v)", len(got), len(b), err)
			}
		})
	}
	t.Run("full", func(t *testing.T) {
		b := bytes.Clone(good)
		b[54] = 99
		env, _ := newWorld(t, coreFile(t, b))
		mnt := tmpfs(t, 2<<20)
		cfg := testConfig(nil)
		src := openSource(env, cfg)
		defer src.close()
		res := saveTo(env, cfg, mnt, src)
		if res.Status != StatusIncomplete || !strings.Contains(res.Reason, "full") {
			t.Fatalf("result %+v", res)
		}
		got, err := os.ReadFile(filepath.Join(mnt, res.Path))
		if err != nil || len(got) < 64 {
			t.Fatal(err)
		}
		if got[48]&1 == 0 {
			t.Error("incomplete raw copy not flagged in e_flags")
		}
		if !bytes.Equal(got[64:1<<20], b[64:1<<20]) {
			t.Error("the part copied differs")
		}
	})
}
