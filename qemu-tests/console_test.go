package qemutests

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// The operator's console and the hooks, each test one crash cycle of the
// small fault-test guest (512 MiB).

// TestConsole drives the operator's console over the serial line, as
// someone at the machine would: gokdump.shell=1 stops the capture before
// it saves anything; devices lists the dump disk, dmesg | tail shows the
// crashed kernel's panic, save saves the dump to the disk through the
// real pipeline, reboot leaves. The dump saved from the console opens in
// our reader and in drgn.
func TestConsole(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.12", "target = \"LABEL=GOKDUMP\"\nshell_timeout = \"30s\"\n")
	spec.Dbg = true
	spec.CaptureAppend = "gokdump.shell=1"
	spec.Typing = []harness.Keys{
		{After: regexp.MustCompile(`^gokdump: type help for the commands`), Keys: "devices\r"},
		{After: regexp.MustCompile(`^nvme0n1\s+\S+\s+ext4\s+GOKDUMP\s`), Keys: "dmesg | tail -n 100; echo end-of-dmesg\r"},
		{After: regexp.MustCompile(`^end-of-dmesg$`), Keys: "save LABEL=GOKDUMP\r"},
		{After: regexp.MustCompile(`^gokdump: saved `), Keys: "reboot\r"},
	}
	r := crash(t, spec)
	o := outcome(t, r, "saved")
	wantAction(t, o, "reboot", "Restarting system")
	// Nothing was saved before the console opened.
	consoleAt := lineAt(t, r, `^gokdump: the operator's console: gokdump.shell=1`)
	if o.At < consoleAt {
		t.Errorf("a dump was saved (%v) before the console opened (%v)", o.At, consoleAt)
	}
	lineAt(t, r, `^gokdump: .*console: left, reboot`)
	// dmesg | tail showed the crashed kernel's panic (the stack after it
	// is of varying length, within 100 lines).
	from, to := lineAt(t, r, `^gokdump# dmesg \| tail`), lineAt(t, r, `^end-of-dmesg$`)
	panicked := false
	for _, l := range r.Log {
		panicked = panicked || l.At >= from && l.At <= to && strings.Contains(l.Text, "] Kernel panic - not syncing: sysrq triggered crash")
	}
	if !panicked {
		t.Error("dmesg | tail did not show the crashed kernel's panic")
	}
	dir := path.Dir(o.Path)
	if e := ls(t, r, dir); e[crashdir.VMCore]&0o777 != 0o600 {
		t.Errorf("%s: %v, want a 0600 vmcore", dir, e)
	}
	file := extract(t, r, o.Path)
	checkDump(t, r, file, want{format: anydump.Kdump})
}

// TestConsoleTimeout: the capture fails (the target never appears) with
// failure_action = "shell": the failure hook runs with the failure in its
// environment, the console opens, and with no keystroke for shell_timeout
// (5s) it is left for final_action (poweroff): an unattended machine
// never waits for an operator.
func TestConsoleTimeout(t *testing.T) {
	t.Parallel()
	hook := buildHook(t)
	spec := faultSpec("6.1", "target = \"LABEL=NOSUCH\"\ndevice_timeout = \"3s\"\nfailure_action = \"shell\"\n"+
		"shell_timeout = \"5s\"\nfinal_action = \"poweroff\"\nfailure_hook = \""+hook+"\"\n")
	r := crash(t, spec)
	o := outcome(t, r, "FAILED")
	wantAction(t, o, "poweroff", "Power down")
	lineAt(t, r, `hook hook: HOOK failure ok .*status=failed`)
	opened := lineAt(t, r, `^gokdump: the operator's console: the capture failed`)
	lineAt(t, r, `console: no keystroke for 5s: leaving it`)
	waited := o.ActionAt - opened
	t.Logf("from the console's banner to the action: %.2fs", waited.Seconds())
	if waited < 5*time.Second || waited > 10*time.Second {
		t.Errorf("final action %.2fs after the console opened, want 5s to 10s", waited.Seconds())
	}
}

// TestHooksMaxSize: one capture with a pre and a post hook (a static Go
// program packed by the image builder), max_size far below the dump's
// size, and kexec-dmesg.log. The pre hook sees the crash in its
// environment; the dump is cut at max_size, saved as vmcore-incomplete
// and flagged incomplete (status INCOMPLETE); the post hook runs after it
// with the dump's path and status and leaves its file beside it; the
// capture kernel's own log is saved last, 0600.
func TestHooksMaxSize(t *testing.T) {
	t.Parallel()
	hook := buildHook(t)
	const maxSize = 4 << 20
	spec := faultSpec("6.12", "target = \"LABEL=GOKDUMP\"\nmax_size = \"4M\"\nfinal_action = \"poweroff\"\n"+
		"hook_timeout = \"30s\"\npre_hooks = [\""+hook+"\"]\npost_hooks = [\""+hook+"\"]\n")
	r := crash(t, spec)
	o := outcome(t, r, "INCOMPLETE")
	wantAction(t, o, "poweroff", "Power down")
	if !strings.HasSuffix(o.Path, "/"+crashdir.VMCoreIncomplete) || !strings.Contains(o.Reason, "max_size") {
		t.Errorf("INCOMPLETE line: path %q reason %q", o.Path, o.Reason)
	}
	if o.Bytes > maxSize {
		t.Errorf("%d bytes written, more than max_size %d", o.Bytes, maxSize)
	}
	pre := lineAt(t, r, `hook hook: HOOK pre ok release=`+regexp.QuoteMeta(r.Kernel.KVer))
	post := lineAt(t, r, `hook hook: HOOK post ok release=`+regexp.QuoteMeta(r.Kernel.KVer)+` status=incomplete`)
	saving := lineAt(t, r, `^gokdump: \[ *[0-9.]+\] saving to /var/crash/`)
	saved := lineAt(t, r, `^gokdump: \[ *[0-9.]+\] level 31, kdump .* INCOMPLETE$`)
	if pre > saving || post < saved {
		t.Errorf("pre hook at %v, post hook at %v, the dump from %v to %v: not around the dump", pre, post, saving, saved)
	}

	dir := path.Dir(o.Path)
	ents := ls(t, r, dir)
	for _, f := range []string{crashdir.VMCoreIncomplete, crashdir.KexecDmesgFile, "hook-post.txt"} {
		if m, ok := ents[f]; !ok || m&0o777 != 0o600 {
			t.Errorf("%s in %s: present %v, mode %o; want 0600", f, dir, ok, m&0o777)
		}
	}
	if _, ok := ents[crashdir.VMCore]; ok {
		t.Error("a vmcore beside the incomplete dump")
	}
	b, err := os.ReadFile(extract(t, r, dir+"/hook-post.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"GOKDUMP_PHASE=post", "GOKDUMP_STATUS=incomplete", "GOKDUMP_DUMP=" + o.Path,
		"GOKDUMP_KERNEL_RELEASE=" + r.Kernel.KVer, "GOKDUMP_PANIC=Kernel panic - not syncing: sysrq triggered crash", "GOKDUMP_BYTES=" + strconv.FormatInt(o.Bytes, 10)} {
		if !strings.Contains(string(b), s+"\n") {
			t.Errorf("the post hook's environment lacks %q:\n%s", s, b)
		}
	}
	klog, err := os.ReadFile(extract(t, r, dir+"/"+crashdir.KexecDmesgFile))
	if err != nil {
		t.Fatal(err)
	}
	// The capture kernel's log (its command line names the crashed
	// kernel's ELF headers), not the crashed kernel's (its marker).
	if !strings.Contains(string(klog), "elfcorehdr=") || strings.Contains(string(klog), guest.Marker("KMSG", r.ID, 0)) {
		t.Errorf("%s is not the capture kernel's log (%d bytes)", crashdir.KexecDmesgFile, len(klog))
	}

	file := extract(t, r, o.Path)
	d, err := anydump.Open(file)
	if err != nil {
		t.Fatalf("our reader does not open the cut dump: %v", err)
	}
	if !d.Incomplete {
		t.Error("the cut dump is not flagged incomplete")
	}
	d.Close()
	if fi, err := os.Stat(file); err == nil && fi.Size() > maxSize {
		t.Errorf("dump file is %d bytes, more than max_size %d", fi.Size(), maxSize)
	}
}

// buildHook builds testdata/hook static for the guest and returns its
// path, which the config names and the image builder packs.
func buildHook(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "hook")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/hook")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the hook: %v\n%s", err, b)
	}
	return out
}
