package shell

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/fixture"
	"golang.org/x/sys/unix"
)

// buffer is the console's output, safe to read while the session writes.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// world is a console session's world: a crashed kernel's memory (a
// synthetic core with a log), a console, real files, actions recorded.
type world struct {
	env  *collect.Env
	cfg  *config.Config
	out  *buffer
	core string
}

func newWorld(t *testing.T, clock collect.Clock) *world {
	t.Helper()
	le := binary.LittleEndian
	c := fixture.Core{
		Notes: append(fixture.PRStatus(le, elf.EM_X86_64, 0, nil),
			fixture.VMCOREINFO(le, "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nCRASHTIME=1764246000\n")...),
		Loads:   []fixture.Load{fixture.RAM(0, 300, 300)},
		Content: fixture.Mixed,
	}
	core := filepath.Join(t.TempDir(), "vmcore")
	if err := os.WriteFile(core, c.Build().Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", out.String())
		}
	})
	var log []printk.Record
	for i := 1; i <= 30; i++ {
		log = append(log, printk.Record{Seq: uint64(i), Time: time.Duration(i) * time.Second, Text: "line " + string(rune('A'+i-1))})
	}
	log = append(log, printk.Record{Seq: 31, Time: 31 * time.Second, Text: "Kernel panic - not syncing: sysrq triggered crash"})
	env := &collect.Env{
		Console:    collect.NewConsole(out, clock.Now(), clock.Now),
		Clock:      clock,
		Vmcore:     core,
		OpenVmcore: vmcore.Open,
		ReadLog: func(kmem.PhysReader, *vmcoreinfo.Info, elf.Machine) (*printk.Log, error) {
			return &printk.Log{Records: log, Kind: printk.KindLockless}, nil
		},
		LoadModules: func(func(string, ...any)) error { return nil },
		Sync:        func() {},
		Fdatasync:   func(f *os.File) error { return f.Sync() },
		FreeSpace: func(p string) (int64, error) {
			var st unix.Statfs_t
			err := unix.Statfs(p, &st)
			return int64(st.Bfree) * st.Bsize, err
		},
		Act:       func(config.Action) { t.Error("the console took an action itself") },
		Exec:      collect.ExecProgram,
		KernelLog: func() ([]byte, error) { return []byte("[    0.000000] Linux version capture\n"), nil },
	}
	cfg := config.Default()
	cfg.Progress = false
	cfg.FinalAction = config.ActionPoweroff
	return &world{env: env, cfg: &cfg, out: out, core: core}
}

// session runs a console session on w reading in, and returns the
// action it ended with on done.
func (w *world) session(in io.Reader, lease func(time.Duration)) <-chan config.Action {
	crash := collect.OpenCrash(w.env, w.cfg)
	done := make(chan config.Action, 1)
	go func() {
		defer crash.Close()
		done <- Run(Options{Env: w.env, Config: w.cfg, Crash: crash, In: in, Out: w.out, Why: "a test", Lease: lease})
	}()
	return done
}

func wait(t *testing.T, done <-chan config.Action) config.Action {
	t.Helper()
	select {
	case a := <-done:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("the session did not end")
	}
	return ""
}

// TestSession types a session: the crashed kernel's log through a pipe,
// a dump saved into a directory, and reboot. The dump saved from the
// console is whole and opens; its result line is the capture's.
func TestSession(t *testing.T) {
	w := newWorld(t, collect.RealClock{})
	dir := t.TempDir()
	in := strings.NewReader("help\n" +
		"dmesg | tail -n 2\n" +
		"dmesg | grep -c line\n" +
		"nosuch\n" +
		"info\n" +
		"x=$(dmesg | head -n 1); echo \"first: $x\"\n" +
		"save -d 1 -c zlib " + dir + "\n" +
		"echo status $?\n" +
		"ls -l " + dir + "/*\n" +
		"reboot\n" +
		"echo never\n")
	var mu sync.Mutex
	var leases []time.Duration
	a := wait(t, w.session(in, func(d time.Duration) { mu.Lock(); leases = append(leases, d); mu.Unlock() }))
	if a != config.ActionReboot {
		t.Errorf("left with %q, want reboot", a)
	}
	out := w.out.String()
	for _, want := range []string{
		`gokdump: the operator's console: a test\n`,
		`(?m)^  save +\[-d LEVELS\]`,
		`\] line \^\n\[ *31\.000000\] Kernel panic - not syncing: sysrq triggered crash\n`,
		`gokdump# 30\n`,
		`nosuch: not a command here \(help lists them`,
		`crashed kernel: 6\.1\.0-test \(x86_64\), 1 CPUs\ncrash time: +2025-11-27T12:20:00Z\npanic: +Kernel panic - not syncing: sysrq triggered crash\nmemory: +1 MiB \(page frames up to 0x12c, 4096-byte pages\)`,
		`first: \[ *1\.000000\] line A\n`,
		`gokdump: saved /2025-11-27-12:20:00/vmcore bytes=\d+ seconds=\S+ level=1 format=kdump status=0\n`,
		`status 0\n`,
		`-rw------- +\d+ \S+ \S+ vmcore\n`,
		`-rw------- +\d+ \S+ \S+ vmcore-dmesg.txt\n`,
		`-rw------- +\d+ \S+ \S+ kexec-dmesg.log\n`,
		`console: left, reboot`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("console lacks %s", want)
		}
	}
	if strings.Contains(out, "never") {
		t.Error("the console ran a command after reboot")
	}
	d, err := anydump.Open(filepath.Join(dir, "2025-11-27-12:20:00", "vmcore"))
	if err != nil {
		t.Fatalf("the dump saved from the console does not open: %v", err)
	}
	defer d.Close()
	if d.Incomplete || d.Info().Codec != "zlib" {
		t.Errorf("dump: incomplete %v, compression %q", d.Incomplete, d.Info().Codec)
	}
	mu.Lock()
	defer mu.Unlock()
	idle, busy := w.cfg.ShellTimeout+LeaseGrace, w.cfg.TimeBudget+stopGrace+LeaseGrace
	if len(leases) < 4 || leases[0] != idle || !containsDur(leases, busy) {
		t.Errorf("leases %v, want %v at prompts and %v for commands", leases, idle, busy)
	}
}

func containsDur(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// TestInputEnd: a console whose input ends (no keyboard) is left at once
// for final_action.
func TestInputEnd(t *testing.T) {
	w := newWorld(t, collect.RealClock{})
	if a := wait(t, w.session(strings.NewReader(""), nil)); a != config.ActionPoweroff {
		t.Errorf("left with %q, want final_action poweroff", a)
	}
	if !strings.Contains(w.out.String(), "console: the input ended (EOF): leaving it") {
		t.Error("no word of why the console was left")
	}
}

// TestInterrupt: ^C stops a command that would run for ever, and the
// console goes on.
func TestInterrupt(t *testing.T) {
	w := newWorld(t, collect.RealClock{})
	pr, pw := io.Pipe()
	done := w.session(pr, nil)
	io.WriteString(pw, "cat /dev/zero > /dev/null; echo after $?\n")
	time.Sleep(300 * time.Millisecond)
	io.WriteString(pw, "\x03")
	io.WriteString(pw, "echo alive\nexit\n")
	if a := wait(t, done); a != config.ActionPoweroff {
		t.Errorf("left with %q", a)
	}
	out := w.out.String()
	if !strings.Contains(out, "^C\n") || !strings.Contains(out, "alive\n") {
		t.Errorf("^C did not stop the command, or the console did not go on")
	}
}

// TestSaveStopped: ^C during a save leaves a readable dump flagged
// incomplete, which the result line says.
func TestSaveStopped(t *testing.T) {
	w := newWorld(t, collect.RealClock{})
	w.cfg.Compress = config.CompressNone
	w.cfg.DumpLevel = nil
	w.cfg.Set("dump_level", "0", "test")
	dir := t.TempDir()
	pr, pw := io.Pipe()
	// Pages are being written when ^C comes, and slowly (a slow disk),
	// so that it comes mid-dump: before the header is written the save
	// fails with nothing to keep, after the last page it is saved.
	writing := make(chan struct{})
	var once sync.Once
	w.env.Hooks.Writing = func() {
		once.Do(func() { close(writing) })
		time.Sleep(50 * time.Millisecond)
	}
	done := w.session(pr, nil)
	io.WriteString(pw, "save "+dir+"\n")
	select {
	case <-writing:
	case <-time.After(10 * time.Second):
		t.Fatalf("no page written in 10s:\n%s", w.out.String())
	}
	io.WriteString(pw, "\x03exit\n")
	wait(t, done)
	out := w.out.String()
	m := regexp.MustCompile(`gokdump: (saved|INCOMPLETE) (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no result line:\n%s", out)
	}
	if m[1] == "saved" {
		t.Skip("the dump was written before ^C came")
	}
	if !strings.Contains(out, "stopped on the console") {
		t.Error("the reason does not say it was stopped")
	}
	d, err := anydump.Open(filepath.Join(dir, m[2]))
	if err != nil {
		t.Fatalf("the stopped dump does not open: %v", err)
	}
	defer d.Close()
	if !d.Incomplete {
		t.Error("the stopped dump is not flagged incomplete")
	}
}

// TestDevices runs devices and ip on this machine: a table with a
// header, and the loopback interface.
func TestDevices(t *testing.T) {
	if _, err := os.Stat("/sys/class/block"); err != nil {
		t.Skip("no /sys/class/block")
	}
	w := newWorld(t, collect.RealClock{})
	done := w.session(strings.NewReader("devices\nip addr\nip route\n"), nil)
	wait(t, done)
	out := w.out.String()
	if !regexp.MustCompile(`(?m)NAME +SIZE FSTYPE +LABEL +UUID +MOUNTED$`).MatchString(out) {
		t.Error("devices printed no table")
	}
	if !regexp.MustCompile(`(?m)lo +UNKNOWN +127\.0\.0\.1/8`).MatchString(out) {
		t.Error("ip addr shows no loopback")
	}
}
