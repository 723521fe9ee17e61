package collect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
)

// The test binary is also the hooks of the tests, by the name it is run
// under (a symlink): hook-report prints what a hook sees, hook-fail exits
// 3, hook-sleep outlives any hook_timeout.
func TestMain(m *testing.M) {
	if name := filepath.Base(os.Args[0]); strings.HasPrefix(name, "hook-") {
		os.Exit(hookMain(name))
	}
	os.Exit(m.Run())
}

func hookMain(name string) int {
	switch name {
	case "hook-fail":
		fmt.Println("failing on purpose")
		return 3
	case "hook-sleep":
		time.Sleep(time.Hour)
		return 0
	}
	// hook-report: its environment, its descriptors, and whether the
	// dump is there where it says.
	var vars []string
	for _, v := range os.Environ() {
		if strings.HasPrefix(v, "GOKDUMP_") {
			vars = append(vars, v)
		}
	}
	fmt.Printf("env %s\n", strings.Join(vars, " | "))
	fmt.Printf("fds %s\n", strings.Join(openFDs(), " "))
	if dir := os.Getenv("GOKDUMP_DUMP_DIR"); dir != "" {
		_, err := os.Stat(filepath.Join(dir, filepath.Base(os.Getenv("GOKDUMP_DUMP"))))
		fmt.Printf("dump present %v\n", err == nil)
	}
	return 0
}

// openFDs lists this process's descriptors but the one reading them, as
// N (0..2) or N=TARGET.
func openFDs() []string {
	self, _ := os.Readlink("/proc/self/fd")
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		switch {
		case target == self || strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd"):
		case e.Name() == "0" || e.Name() == "1" || e.Name() == "2":
			out = append(out, e.Name())
		case strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "/sys/fs/cgroup/"):
			// The Go runtime's own (epoll, eventfd; the CPU limit it
			// reads and keeps open).
		default:
			out = append(out, e.Name()+"="+target)
		}
	}
	return out
}

// hookPaths makes the test binary reachable as each named hook.
func hookPaths(t *testing.T, names ...string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.Symlink(self, p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestHooks: pre hooks run in order before the dump with the crash's
// facts, a failing one is logged and the dump goes on; post hooks run
// after it with the outcome and the dump there to read; none gets a
// descriptor beyond 0, 1 and 2 though the capture holds the vmcore, the
// dump directory and its files open; kexec-dmesg.log, written last,
// holds the capture kernel's log and the console, hooks' lines included.
func TestHooks(t *testing.T) {
	hooks := hookPaths(t, "hook-report", "hook-fail")
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 300), d)
	env.ReadLog = logOf(panicLog...)
	env.KernelLog = func() ([]byte, error) { return []byte("[    0.000000] Linux version 7.3.4-capture\n"), nil }
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.PreHooks, c.PostHooks = "LABEL=GOKDUMP", hooks, hooks[:1]
	})
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "saved" {
		t.Fatalf("outcome %s", o)
	}
	con := w.con.String()
	for _, want := range []string{
		`pre hook \S+/hook-report: running \(within 1m0s\)`,
		`hook hook-report: env GOKDUMP_PHASE=pre \| GOKDUMP_VMCORE=\S+/vmcore \| GOKDUMP_KERNEL_RELEASE=6\.1\.0-test \| ` +
			`GOKDUMP_PANIC=Kernel panic - not syncing: sysrq triggered crash \| GOKDUMP_CRASH_TIME=2025-11-27T12:20:00Z \| GOKDUMP_TARGET=LABEL=GOKDUMP\n`,
		`hook hook-fail: failing on purpose`,
		`pre hook \S+/hook-fail: it failed \(exit status 3\)`,
		`going on with the dump \(hook_failure = "continue"\)`,
		`hook hook-report: env GOKDUMP_PHASE=post .* GOKDUMP_STATUS=saved \| GOKDUMP_STATUS_CODE=0 \| GOKDUMP_REASON= \| ` +
			`GOKDUMP_DUMP=` + regexp.QuoteMeta(coreDir) + `/vmcore \| GOKDUMP_DUMP_DIR=` + regexp.QuoteMeta(d.dir+coreDir) + ` \| GOKDUMP_LEVEL=31 \| GOKDUMP_FORMAT=kdump`,
		`hook hook-report: dump present true`,
	} {
		if !regexp.MustCompile(want).MatchString(con) {
			t.Errorf("console lacks %s", want)
		}
	}
	if fds := regexp.MustCompile(`hook hook-report: fds (.*)`).FindAllStringSubmatch(con, -1); len(fds) != 2 || fds[0][1] != "0 1 2" || fds[1][1] != "0 1 2" {
		t.Errorf("hooks' descriptors: %q, want 0 1 2 in both", fds)
	}
	if strings.Index(con, "GOKDUMP_PHASE=pre") > strings.Index(con, "saving to ") || strings.Index(con, "GOKDUMP_PHASE=post") < strings.Index(con, "level 31, kdump") {
		t.Error("hooks out of order with the dump")
	}
	p := filepath.Join(d.dir, coreDir, crashdir.KexecDmesgFile)
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", crashdir.KexecDmesgFile, st, err)
	}
	b, _ := os.ReadFile(p)
	for _, want := range []string{"--- the capture kernel's log ---\n[    0.000000] Linux version 7.3.4-capture\n--- gokdump's console ---\n",
		"hook hook-report: dump present true", "post hook " + hooks[0] + ": done in", "saving the capture kernel's log as kexec-dmesg.log"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q:\n%s", crashdir.KexecDmesgFile, want, b)
		}
	}
}

// TestHookFailureStops: with hook_failure = "fail" a failing pre hook
// stops the capture before anything is written: FAILED, the failure
// hook runs with the reason, the failure action follows.
func TestHookFailureStops(t *testing.T) {
	hooks := hookPaths(t, "hook-fail", "hook-report")
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 300), d)
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.PreHooks, c.FailureHook, c.HookFailure, c.FailureAction = "LABEL=GOKDUMP", hooks, hooks[1], config.HookFail, config.ActionPoweroff
	})
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "FAILED" || o.Action != "poweroff" || !strings.Contains(o.Reason, `hook-fail: it failed (exit status 3); hook_failure = "fail": nothing was saved`) {
		t.Fatalf("outcome %s", o)
	}
	con := w.con.String()
	if strings.Contains(con, "GOKDUMP_PHASE=pre") {
		t.Error("the pre hook after the failing one ran")
	}
	if !regexp.MustCompile(`hook hook-report: env GOKDUMP_PHASE=failure .*GOKDUMP_STATUS=failed \| GOKDUMP_STATUS_CODE=1 \| GOKDUMP_REASON=pre hook \S+hook-fail: it failed`).MatchString(con) {
		t.Error("the failure hook did not run with the reason")
	}
	if ents, _ := os.ReadDir(d.dir); len(ents) != 0 {
		t.Errorf("something was written: %v", ents)
	}
}

// TestHookTimeout: a hook that outlives hook_timeout is killed, and the
// dump goes on.
func TestHookTimeout(t *testing.T) {
	hooks := hookPaths(t, "hook-sleep")
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 300), d)
	cfg := testConfig(func(c *config.Config) {
		c.Target, c.PreHooks, c.HookTimeout = "LABEL=GOKDUMP", hooks, 300*time.Millisecond
	})
	t0 := time.Now()
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "saved" {
		t.Fatalf("outcome %s", o)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	if !strings.Contains(w.con.String(), "hook-sleep: killed after hook_timeout 300ms") {
		t.Error("no word of the hook killed")
	}
}

// TestKexecLogAfterFailure: a dump that fails once its directory exists
// still leaves kexec-dmesg.log there, and no empty vmcore-incomplete.
func TestKexecLogAfterFailure(t *testing.T) {
	d := dirDisk(t, "nvme0n1", "GOKDUMP")
	env, w := newWorld(t, testCore(t, 300), d)
	env.KernelLog = func() ([]byte, error) { return nil, errors.New("no syslog here") }
	cfg := testConfig(func(c *config.Config) { c.Target = "LABEL=GOKDUMP" })
	cfg.Compress = "lz4" // past Sanitize: the pipeline refuses it
	o := finish(t, env, w, cfg, Capture(env, cfg))
	if o.Status != "FAILED" {
		t.Fatalf("outcome %s", o)
	}
	ents, err := os.ReadDir(filepath.Join(d.dir, coreDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != crashdir.KexecDmesgFile {
		t.Errorf("dump directory holds %q, want only %s", names, crashdir.KexecDmesgFile)
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, coreDir, crashdir.KexecDmesgFile))
	if !strings.Contains(string(b), "(cannot be read: no syslog here)") || !strings.Contains(string(b), "--- this target ---\nFAILED codec: unsupported compression: \"lz4\"") {
		t.Errorf("%s:\n%s", crashdir.KexecDmesgFile, b)
	}
}
