package collect

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/harness"

	"debug/elf"
)

// The capture's failure matrix, end to end through Capture and Finish
// with a fake world: what the console says (parsed as the QEMU harness
// parses it), which action is taken, and what is on the target.

// The synthetic core's crash time (VMCOREINFO CRASHTIME) as a directory.
const coreDir = "/var/crash/2025-11-27-12:20:00"

// panicLog is a crashed kernel's log with a panic in it.
var panicLog = []printk.Record{
	{Seq: 1, Time: time.Second, Text: "Linux version 6.1.0-test"},
	{Seq: 2, Time: 2 * time.Second, Text: "sysrq: Trigger a crash"},
	{Seq: 3, Time: 3 * time.Second, Text: "Kernel panic - not syncing: sysrq triggered crash"},
}

// logOf returns a ReadLog that reads nothing and returns recs.
func logOf(recs ...printk.Record) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
	return func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
		return &printk.Log{Records: recs, Kind: printk.KindLockless}, nil
	}
}

// finish runs Finish on res and returns the outcome the QEMU harness
// reads from the console. It checks what every outcome must hold: one
// result line whose status code matches, then one ACTION line naming the
// action taken, and nothing after it.
func finish(t *testing.T, env *Env, w *world, cfg *config.Config, res Result) harness.Outcome {
	t.Helper()
	Finish(env, cfg, res)
	var run harness.Run
	lines := strings.Split(strings.TrimSuffix(w.con.String(), "\n"), "\n")
	for _, l := range lines {
		run.Log = append(run.Log, harness.LogLine{Text: l})
	}
	o := run.Outcome()
	results := regexp.MustCompile(`(?m)^gokdump: (saved|INCOMPLETE|FAILED) `).FindAllString(w.con.String(), -1)
	if len(results) != 1 {
		t.Errorf("%d result lines, want 1: %q", len(results), results)
	}
	if o.Code != res.Status.Code() {
		t.Errorf("status=%d on the console, want %d (%s)", o.Code, res.Status.Code(), res.Status)
	}
	acts := w.Actions()
	if len(acts) != 1 || string(acts[0]) != o.Action || !strings.HasPrefix(lines[len(lines)-1], "gokdump: ACTION ") {
		t.Errorf("actions taken %q, ACTION line %q, last line %q", acts, o.Action, lines[len(lines)-1])
	}
	return o
}

// TestCaptureSaved: the plain case, and everything the capture does on
// the way: modules, the wait with device_timeout, the log first, the
// dump, the unmount, the result line and the final action.
func TestCaptureSaved(t *testing.T) {
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 600), d)
	env.ReadLog = logOf(panicLog...)
	cfg := testConfig(func(c *config.Config) { c.Target = "LABEL=GOKDUMP"; c.FinalAction = config.ActionHalt })
	res := Capture(env, cfg)
	o := finish(t, env, w, cfg, res)
	if o.Status != "saved" || o.Code != CodeSaved || o.Path != coreDir+"/vmcore" || o.Level != 31 || o.Format != "kdump" || o.Action != "halt" {
		t.Fatalf("outcome %s", o)
	}
	st, err := os.Stat(filepath.Join(d.dir, o.Path))
	if err != nil || st.Size() != o.Bytes || st.Mode().Perm() != 0o600 {
		t.Errorf("dump %v (%v), reported %d bytes", st, err, o.Bytes)
	}
	dm, err := os.ReadFile(filepath.Join(d.dir, coreDir, crashdir.DmesgFile))
	if err != nil || !bytes.Contains(dm, []byte("Kernel panic - not syncing: sysrq triggered crash")) {
		t.Errorf("%s: %q, %v", crashdir.DmesgFile, dm, err)
	}
	con := w.con.String()
	for _, want := range []string{"module fake.ko loaded", "waiting up to 30s for LABEL=GOKDUMP", "target LABEL=GOKDUMP is /dev/nvme0n1 (ext4)",
		"crash reason: Kernel panic - not syncing: sysrq triggered crash"} {
		if !strings.Contains(con, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if w.modules != 1 || len(w.waits) != 1 || w.waits[0] != cfg.DeviceTimeout || len(w.unmounted) != 1 || w.unmounted[0] != d.dir || w.syncs == 0 {
		t.Errorf("modules %d, waits %v, unmounted %v, syncs %d", w.modules, w.waits, w.unmounted, w.syncs)
	}
}

// TestTargetMissing: the target never appears: the capture waits
// device_timeout, fails naming the devices it saw, and the failure
// action follows.
func TestTargetMissing(t *testing.T) {
	env, w := newWorld(t, testCore(t, 30), dirDisk(t, "nvme0n1", "GOKDUMP"), dirDisk(t, "vda", "OTHER"))
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.DeviceTimeout, c.FailureAction = "LABEL=NOSUCH", 300*time.Millisecond, config.ActionPoweroff
	})
	t0 := time.Now()
	res := Capture(env, cfg)
	took := time.Since(t0)
	o := finish(t, env, w, cfg, res)
	if o.Status != "FAILED" || o.Action != "poweroff" {
		t.Fatalf("outcome %s", o)
	}
	if !regexp.MustCompile(`^target LABEL=NOSUCH: blockdev: no device matches LABEL=NOSUCH after [0-9.]+m?s \(context deadline exceeded\); block devices seen:; nvme0n1 .*LABEL="GOKDUMP".*; vda `).MatchString(o.Reason) {
		t.Errorf("reason %q", o.Reason)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("failed after %v, want device_timeout (300ms)", took)
	}
	if len(w.mounted) != 0 {
		t.Errorf("mounted %v", w.mounted)
	}
}

// TestReadOnly: a write-protected target is said to be so; with
// failure_action = "fallback" the dump goes to fallback_target and the
// final action follows; without, the failure action; when the fallback
// fails too, the final action (fallback's documented meaning).
func TestReadOnly(t *testing.T) {
	core := testCore(t, 300)
	for _, tc := range []struct {
		name     string
		fallback string
		status   string
		action   config.Action
	}{
		{"fallback", "LABEL=GOKDUMP", "saved", config.ActionPoweroff},
		{"no-fallback", "", "FAILED", config.ActionHalt},
		{"fallback-missing", "LABEL=NOSUCH", "FAILED", config.ActionPoweroff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro, good := dirDisk(t, "vda", "RO"), dirDisk(t, "nvme0n1", "GOKDUMP")
			ro.readOnly = true
			env, w := newWorld(t, core, ro, good)
			cfg := testConfig(func(c *config.Config) {
				c.Target, c.FinalAction, c.FailureAction, c.DeviceTimeout = "LABEL=RO", config.ActionPoweroff, config.ActionHalt, 100*time.Millisecond
				if tc.fallback != "" {
					c.FailureAction, c.FallbackTarget = config.ActionFallback, tc.fallback
				}
			})
			o := finish(t, env, w, cfg, Capture(env, cfg))
			if o.Status != tc.status || o.Action != string(tc.action) {
				t.Fatalf("outcome %s, want %s and %s", o, tc.status, tc.action)
			}
			if !strings.Contains(w.con.String(), "target LABEL=RO: target LABEL=RO (/dev/vda) is read-only") {
				t.Error("the read-only target is not named as such")
			}
			if ents, _ := os.ReadDir(ro.dir); len(ents) != 0 {
				t.Errorf("the read-only disk changed: %v", ents)
			}
			if tc.status == "saved" {
				if _, err := os.Stat(filepath.Join(good.dir, o.Path)); err != nil || !strings.Contains(w.con.String(), "trying the fallback target LABEL=GOKDUMP") {
					t.Errorf("not saved on the fallback: %v", err)
				}
			}
		})
	}
}

// TestDiskFull: a target too small for the dump: what fits is kept as
// vmcore-incomplete, readable and flagged; the log, written first, is
// whole; the result is INCOMPLETE (status=3) and the final action
// follows.
func TestDiskFull(t *testing.T) {
	d := dirDisk(t, "nvme0n1", "GOKDUMP", tmpfs(t, 10<<20))
	env, w := newWorld(t, testCore(t, 3000), d) // level 0, uncompressed: ~12 MiB
	env.ReadLog = logOf(panicLog...)
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.DumpLevel, c.Compress, c.FinalAction = "LABEL=GOKDUMP", []filter.Level{0}, config.CompressNone, config.ActionPoweroff
	})
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "INCOMPLETE" || o.Code != CodeIncomplete || o.Action != "poweroff" || o.Path != coreDir+"/"+crashdir.VMCoreIncomplete ||
		!strings.HasPrefix(o.Reason, "the target is full") || !strings.HasSuffix(o.Reason, "; the dump is readable, flagged incomplete") {
		t.Fatalf("outcome %s", o)
	}
	dump, err := anydump.Open(filepath.Join(d.dir, o.Path))
	if err != nil {
		t.Fatalf("the incomplete dump does not open: %v", err)
	}
	defer dump.Close()
	if !dump.Incomplete {
		t.Error("the dump is not flagged incomplete")
	}
	if dm, err := os.ReadFile(filepath.Join(d.dir, coreDir, crashdir.DmesgFile)); err != nil || !bytes.Contains(dm, []byte("sysrq triggered crash")) {
		t.Errorf("the log is lost: %v", err)
	}
}

// TestUnparseableVmcore: a vmcore that cannot be parsed is saved as a raw
// copy, byte for byte.
func TestUnparseableVmcore(t *testing.T) {
	b, _ := os.ReadFile(testCore(t, 300))
	b[54] = 99 // e_phentsize
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, coreFile(t, b), d)
	cfg := testConfig(func(c *config.Config) { c.Target = "LABEL=GOKDUMP" })
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "saved" || o.Format != "raw-copy" || o.Level != 0 || o.Bytes != int64(len(b)) || o.Action != "reboot" {
		t.Fatalf("outcome %s", o)
	}
	if got, err := os.ReadFile(filepath.Join(d.dir, o.Path)); err != nil || !bytes.Equal(got, b) {
		t.Errorf("the copy differs (%v)", err)
	}
}

// TestCapturePanic: a panic in the capture's goroutine, before anything
// is done or once the dump's file exists, is a FAILED result and the
// failure action; no vmcore passes for a whole dump. (Not from inside
// pipeline.Save: a panic unwinding through it races with its planner.)
func TestCapturePanic(t *testing.T) {
	core := testCore(t, 600)
	for _, point := range []string{"start", "mid-capture"} {
		t.Run(point, func(t *testing.T) {
			d := dirDisk(t, "nvme0n1", "GOKDUMP")
			env, w := newWorld(t, core, d)
			boom := func() { panic("boom at " + point) }
			if point == "start" {
				env.Hooks.Start = boom
			} else {
				env.FreeSpace = func(string) (int64, error) { boom(); return 0, nil }
			}
			cfg := testConfig(func(c *config.Config) { c.Target, c.FailureAction = "LABEL=GOKDUMP", config.ActionPoweroff })
			o := finish(t, env, w, cfg, Capture(env, cfg))
			if o.Status != "FAILED" || o.Reason != "panic in capture: boom at "+point || o.Action != "poweroff" {
				t.Fatalf("outcome %s", o)
			}
			if !strings.Contains(w.con.String(), "panic: boom at "+point+"\n") || !strings.Contains(w.con.String(), "goroutine ") {
				t.Error("no panic and stack on the console")
			}
			if _, err := os.Stat(filepath.Join(d.dir, coreDir, crashdir.VMCore)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a vmcore after a panic: %v", err)
			}
		})
	}
}

// TestCaptureHang: a capture blocked for good while writing the dump is
// ended by the time budget, measured from the capture's start, with the
// failure action (RunWithin: the capture in PID 1 itself).
func TestCaptureHang(t *testing.T) {
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 600), d)
	release := make(chan struct{})
	t.Cleanup(func() {
		// Let the capture finish before its directories go.
		close(release)
		for i := 0; i < 500 && len(w.Unmounted()) == 0; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	env.Hooks.Writing = func() { <-release }
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.TimeBudget, c.FailureAction = "LABEL=GOKDUMP", time.Second, config.ActionPoweroff
	})
	res := RunWithin(env, cfg, env.Console.Start().Add(cfg.TimeBudget))
	took := env.Console.Elapsed()
	o := finish(t, env, w, cfg, res)
	if o.Status != "FAILED" || o.Reason != "time budget 1s exceeded; the capture was stopped" || o.Action != "poweroff" {
		t.Fatalf("outcome %s", o)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("ended after %v, want the budget of 1s", took)
	}
	if !strings.Contains(w.con.String(), "saving to "+coreDir) {
		t.Error("the capture did not get as far as writing")
	}
}

// TestBadConfig: a config with bad values costs those values (their
// defaults are used, and said), never the dump: the good keys, target
// first, still hold.
func TestBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gokdump.toml")
	os.WriteFile(p, []byte("target = \"LABEL=GOKDUMP\"\ncompress = \"rar\"\ndump_level = [99]\nfinal_action = \"poweroff\"\nbogus = 1\n"), 0o600)
	cfg, err := LoadConfig(p, "console=ttyS0 gokdump.keep=many gokdump.path=/dumps")
	if err == nil {
		t.Fatal("no error for a bad config")
	}
	for _, want := range []string{"compress", "dump_level", "bogus", "defaults used for: dump_level, compress"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if cfg.Target != "LABEL=GOKDUMP" || cfg.FinalAction != config.ActionPoweroff || cfg.Path != "/dumps" || cfg.Compress != config.CompressZstd ||
		len(cfg.DumpLevel) != 1 || cfg.DumpLevel[0] != filter.MaxLevel || cfg.Keep != 0 {
		t.Fatalf("config %+v", cfg)
	}
	cfg.Progress = false
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 300), d)
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "saved" || o.Level != 31 || !strings.HasPrefix(o.Path, "/dumps/") || o.Action != "poweroff" {
		t.Fatalf("outcome %s", o)
	}
	dump, err := anydump.Open(filepath.Join(d.dir, o.Path))
	if err != nil {
		t.Fatal(err)
	}
	dump.Close()

	// No file at all, or one that does not parse: the defaults, and
	// the command line still names the target.
	os.WriteFile(p, []byte("target = \n"), 0o600)
	cfg, err = LoadConfig(p, "gokdump.target=LABEL=GOKDUMP")
	if !errors.Is(err, config.ErrSyntax) || cfg.Target != "LABEL=GOKDUMP" {
		t.Errorf("syntax error: target %q, %v", cfg.Target, err)
	}
}

// TestKernelLog: the kernel log is read before the dump under its own
// budget and limits. Whatever the log does — fail, panic, read forever,
// block without reading, read too much, be too long — the dump is saved,
// and the console says what became of the log.
func TestKernelLog(t *testing.T) {
	core := testCore(t, 300)
	big := strings.Repeat("x", 5<<20)
	// The budget is 20s (time_budget 10m); the clock runs 20 times fast.
	const speed = 20
	for _, tc := range []struct {
		name string
		read func(release <-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error)
		say  string // on the console
		file string // in vmcore-dmesg.txt, which is none when ""
	}{
		{"unreadable", func(<-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			return func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
				return nil, fmt.Errorf("%w: no prb", printk.ErrNoLog)
			}
		}, "kernel log: printk: VMCOREINFO describes no kernel log: no prb; the dump is saved without it", ""},
		{"panics", func(<-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			return func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) { panic("index out of range") }
		}, "kernel log: panic: index out of range; the dump is saved without it", ""},
		{"reads-forever", func(<-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			// A ring of count_bits 31: one small read per record, on
			// and on, until a read fails.
			return func(pr kmem.PhysReader, _ *vmcoreinfo.Info, _ elf.Machine) (*printk.Log, error) {
				l := &printk.Log{}
				b := make([]byte, 8)
				for i := 0; i < 1<<31; i++ {
					if _, err := pr.ReadPhys(b, 0x2000); err != nil {
						break
					}
					l.Records = append(l.Records, printk.Record{Seq: uint64(i), Text: fmt.Sprintf("record %d", i)})
					time.Sleep(time.Millisecond)
				}
				return l, nil
			}
		}, "kernel log: time budget of the kernel log spent after 20s", "] record 0\n[    0.000000] record 1\n"},
		{"reads-too-much", func(<-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			// Overlapping data blocks: megabytes of text per record.
			return func(pr kmem.PhysReader, _ *vmcoreinfo.Info, _ elf.Machine) (*printk.Log, error) {
				l := &printk.Log{}
				b := make([]byte, 1<<20)
				for i := 0; i < 32768; i++ {
					if _, err := pr.ReadPhys(b, 0); err != nil {
						l.Skipped++
						continue
					}
					l.Records = append(l.Records, printk.Record{Seq: uint64(i), Text: fmt.Sprintf("block %d", i)})
				}
				return l, nil
			}
		}, "kernel log: read limit of the kernel log reached after 20s and 32.0 MiB read: 32 records kept", "block 31\n"},
		{"blocks", func(release <-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			return func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
				<-release
				return nil, errors.New("released")
			}
		}, "kernel log: not read within its budget of 20s; the dump is saved without it", ""},
		{"too-long", func(<-chan struct{}) func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			return logOf(printk.Record{Seq: 1, Text: "oldest" + big}, printk.Record{Seq: 2, Text: "older" + big},
				printk.Record{Seq: 3, Text: "newer" + big}, printk.Record{Seq: 4, Text: "Kernel panic - not syncing: newest"})
		}, "kernel log: the 2 oldest records dropped to keep it within 8 MiB", "Kernel panic - not syncing: newest\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dirDisk(t, "nvme0n1", "GOKDUMP")
			env, w := newWorld(t, core, d)
			env.Clock = newFastClock(speed)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			env.ReadLog = tc.read(release)
			cfg := testConfig(func(c *config.Config) { c.Target = "LABEL=GOKDUMP" })
			t0 := time.Now()
			o := finish(t, env, w, cfg, Capture(env, cfg))
			if o.Status != "saved" {
				t.Fatalf("outcome %s", o)
			}
			if took := time.Since(t0); took > 5*time.Second {
				t.Errorf("the capture took %v", took)
			}
			if !strings.Contains(w.con.String(), tc.say) {
				t.Errorf("console does not say %q", tc.say)
			}
			dm, err := os.ReadFile(filepath.Join(d.dir, path(o.Path), crashdir.DmesgFile))
			switch {
			case tc.file == "" && !errors.Is(err, os.ErrNotExist):
				t.Errorf("%s: %v, want none", crashdir.DmesgFile, err)
			case tc.file != "" && (err != nil || !bytes.Contains(dm, []byte(tc.file)) || len(dm) > LogTextMax):
				t.Errorf("%s: %d bytes ending %q (%v), want at most %d holding %q", crashdir.DmesgFile, len(dm), tail(dm), err, LogTextMax, tc.file)
			}
		})
	}
}

// path is the directory of a dump path.
func path(p string) string { return filepath.Dir(p) }

func tail(b []byte) []byte { return b[max(0, len(b)-40):] }

// TestRawTarget: a raw device gets the kernel log trailer at its end and
// the dump as a flattened stream from offset 0.
func TestRawTarget(t *testing.T) {
	rd := rawDisk(t, 32<<20)
	env, w := newWorld(t, testCore(t, 1000), rd)
	env.ReadLog = logOf(panicLog...)
	cfg := testConfig(func(c *config.Config) { c.Target = "raw:" + rd.dev.Path })
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "saved" || o.Path != "raw:"+rd.dev.Path || o.Format != "kdump-flattened" || o.Action != "reboot" {
		t.Fatalf("outcome %s", o)
	}
	dump, err := anydump.Open(unflatten(t, rd.dev.Path))
	if err != nil {
		t.Fatalf("the stream does not rebuild a dump: %v", err)
	}
	dump.Close()
	f, _ := os.Open(rd.dev.Path)
	defer f.Close()
	dm, err := crashdir.ReadRawDmesg(f, rd.dev.Size)
	if err != nil || !bytes.Contains(dm.Text, []byte("sysrq triggered crash")) {
		t.Errorf("log trailer: %v", err)
	}
	if len(w.mounted) != 0 {
		t.Errorf("a raw device was mounted: %v", w.mounted)
	}
}

// TestDumpLevelFallback: with dump_level = [0, 1] and free space (statfs)
// for level 1 only, level 1 is chosen, said, and reported.
func TestDumpLevelFallback(t *testing.T) {
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 3000), d) // level 0: ~12 MiB, level 1: ~8 MiB, uncompressed
	var asked []string
	env.FreeSpace = func(p string) (int64, error) { asked = append(asked, p); return 10 << 20, nil }
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.DumpLevel, c.Compress = "LABEL=GOKDUMP", []filter.Level{0, 1}, config.CompressNone
	})
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "saved" || o.Level != 1 {
		t.Fatalf("outcome %s", o)
	}
	if len(asked) != 1 || asked[0] != d.dir {
		t.Errorf("free space asked of %q", asked)
	}
	if !regexp.MustCompile(`level 1 chosen: ~[0-9.]+ MiB expected, 10\.0 MiB free; level 0 needs ~[0-9.]+ MiB`).MatchString(w.con.String()) {
		t.Error("the choice is not explained")
	}
}

// TestNoVmcore: a kernel not booted by a crash has nothing to save.
func TestNoVmcore(t *testing.T) {
	env, w := newWorld(t, filepath.Join(t.TempDir(), "vmcore"))
	cfg := testConfig(func(c *config.Config) { c.Target = "LABEL=GOKDUMP" })
	env.Console.Logf("start")
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "FAILED" || !strings.Contains(o.Reason, "this kernel was not booted by a crash") {
		t.Fatalf("outcome %s", o)
	}
}

func TestResultLine(t *testing.T) {
	for _, tc := range []struct {
		res  Result
		want string
		code int
	}{
		{Result{Status: StatusSaved, Path: "/var/crash/d/vmcore", Bytes: 42, Level: 31, Format: "kdump"},
			"saved /var/crash/d/vmcore bytes=42 seconds=1.50 level=31 format=kdump status=0", 0},
		{Result{Status: StatusIncomplete, Path: "/d/vmcore-incomplete", Bytes: 7, Level: 1, Format: "elf", Reason: "the target is full:\n\twrite: no space"},
			"INCOMPLETE /d/vmcore-incomplete bytes=7 seconds=1.50 level=1 format=elf: the target is full:; write: no space; the dump is readable, flagged incomplete status=3", 3},
		{Failedf("no device matches X\n\tsda 8:0\n\tsdb 8:16\n"), "FAILED no device matches X; sda 8:0; sdb 8:16 status=1", 1},
		{Result{Status: "bogus"}, "FAILED no reason given status=1", 1},
	} {
		if got := tc.res.Line(1.5); got != tc.want {
			t.Errorf("Line =\n%q, want\n%q", got, tc.want)
		}
		if tc.res.Status.Code() != tc.code {
			t.Errorf("%s: code %d, want %d", tc.res.Status, tc.res.Status.Code(), tc.code)
		}
	}
}

// TestRunWithin: a capture that ends in time gives its own result.
func TestRunWithin(t *testing.T) {
	env, _ := newWorld(t, filepath.Join(t.TempDir(), "vmcore"))
	res := RunWithin(env, testConfig(nil), time.Now().Add(time.Minute))
	if res.Status != StatusFailed || !strings.Contains(res.Reason, "not booted by a crash") {
		t.Errorf("result %+v", res)
	}
}
