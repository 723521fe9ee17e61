package qemutests

import (
	"bytes"
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

// The fault matrix: each test crashes a small guest (512 MiB, 16 MiB of
// user markers, no page-cache file) into a target that fails in one way,
// and checks from the host what the capture did about it. The dump sizes
// they rely on (measured on 6.1 and 6.12 cloud kernels): level 1 ~80 MiB,
// level 31 ~18 MiB.

// faultSpec is the small guest of the fault tests, with a config.
func faultSpec(line, config string) harness.Spec {
	return harness.Spec{Line: line, MemMiB: 512, AnonMiB: 16, CacheMiB: -1, Config: config}
}

// outcome returns the capture's outcome, failing with the log when it
// does not match status, or when no action followed.
func outcome(t *testing.T, r *harness.Run, status string) harness.Outcome {
	t.Helper()
	o := r.Outcome()
	t.Logf("outcome: %s", o)
	if o.Status != status {
		failf(t, r, "capture status %q, want %q", o.Status, status)
	}
	if o.Action == "" || o.Kernel == "" {
		failf(t, r, "no final action on the console (ACTION %q, kernel %q)", o.Action, o.Kernel)
	}
	return o
}

// wantAction checks the action line and what the kernel did.
func wantAction(t *testing.T, o harness.Outcome, action, kernel string) {
	t.Helper()
	if o.Action != action || o.Kernel != kernel {
		t.Errorf("action %q, kernel %q; want %q, %q", o.Action, o.Kernel, action, kernel)
	}
}

// lsDisk lists a directory of disk i.
func lsDisk(t *testing.T, r *harness.Run, i int, dir string) map[string]harness.Entry {
	t.Helper()
	m, err := harness.LsFrom(r.Disks[i], dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// extractDisk copies a file out of disk i.
func extractDisk(t *testing.T, r *harness.Run, i int, p string) string {
	t.Helper()
	dst := filepath.Join(r.Spec.Dir, filepath.Base(path.Dir(p))+"-"+path.Base(p))
	if err := harness.ExtractFrom(r.Disks[i], p, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// lineAt returns when the first console line matching re arrived.
func lineAt(t *testing.T, r *harness.Run, re string) time.Duration {
	t.Helper()
	l, _, ok := r.Find(regexp.MustCompile(re))
	if !ok {
		failf(t, r, "no console line matches %q", re)
	}
	return l.At
}

// TestFaultDiskFull: a disk too small for the dump at the only level
// configured. The capture keeps what fits as vmcore-incomplete, flagged
// incomplete and readable, keeps vmcore-dmesg.txt, says INCOMPLETE and
// takes the final action.
func TestFaultDiskFull(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.1", "target = \"LABEL=GOKDUMP\"\ndump_level = [1]\nfinal_action = \"poweroff\"\n")
	spec.Dbg = true
	spec.Disks = []harness.Disk{{Label: "GOKDUMP", SizeMiB: 48}}
	r := crash(t, spec)
	o := outcome(t, r, "INCOMPLETE")
	wantAction(t, o, "poweroff", "Power down")
	if !strings.HasSuffix(o.Path, "/"+crashdir.VMCoreIncomplete) || o.Level != 1 || !strings.Contains(o.Reason, "full") {
		t.Errorf("INCOMPLETE line: path %q level %d reason %q", o.Path, o.Level, o.Reason)
	}
	dir := path.Dir(o.Path)
	ents := lsDisk(t, r, 0, dir)
	if e, ok := ents[crashdir.VMCoreIncomplete]; !ok || e.Mode&0o777 != 0o600 {
		t.Fatalf("%s: %v, want a 0600 %s", dir, ents, crashdir.VMCoreIncomplete)
	}
	if _, ok := ents[crashdir.VMCore]; ok {
		t.Error("a vmcore next to the incomplete dump")
	}
	checkDmesgFile(t, r, dir)

	file := extractDisk(t, r, 0, o.Path)
	d, err := anydump.Open(file)
	if err != nil {
		t.Fatalf("our reader does not open the incomplete dump: %v", err)
	}
	in := d.Info()
	n := 0
	buf := make([]byte, d.PageSize)
	for pfn, err := range d.Pages() {
		if err != nil {
			t.Fatalf("pages of the incomplete dump: %v", err)
		}
		if _, err := d.ReadPhys(buf, pfn*uint64(d.PageSize)); err != nil {
			t.Fatalf("pfn %#x: %v", pfn, err)
		}
		n++
	}
	d.Close()
	if !d.Incomplete || in.Complete || in.Release != r.Kernel.KVer {
		t.Errorf("our reader: incomplete %v, info complete %v, release %q", d.Incomplete, in.Complete, in.Release)
	}
	t.Logf("our reader: %d pages listed, release %s, panic %q", n, in.Release, in.Panic)

	// drgn (libkdumpfile) opens it; what it can read depends on where the
	// kernel's own pages fall relative to the cut. Report, and require
	// that it opened and read VMCOREINFO-backed basics or said why not.
	got := drgnPartial(t, r, file)
	if !strings.HasPrefix(got["release"], r.Kernel.KVer) && !strings.Contains(got["release"], "FaultError") {
		t.Errorf("drgn: release %q: neither the kernel's nor a fault on a missing page", got["release"])
	}
}

// drgnPartial runs drgn_partial.py and returns what it printed.
func drgnPartial(t *testing.T, r *harness.Run, file string) map[string]string {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-m", "drgn", "-q", "-c", file, "-s", r.Kernel.VMLinux,
		filepath.Join(repoRoot, "qemu-tests", "testdata", "drgn_partial.py"),
		guest.Marker("KMSG", r.ID, 0)).CombinedOutput()
	t.Logf("drgn on %s:\n%s", filepath.Base(file), out)
	if err != nil {
		t.Fatalf("drgn does not open %s: %v", filepath.Base(file), err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	return got
}

// TestFaultFallbackLevel: with dump_level = [1, 31] and a disk that holds
// the level-31 dump but not the level-1 one, the capture estimates both,
// says which it chose and why, and saves a complete level-31 dump.
func TestFaultFallbackLevel(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.12", "target = \"LABEL=GOKDUMP\"\ndump_level = [1, 31]\n")
	spec.Dbg = true
	spec.Disks = []harness.Disk{{Label: "GOKDUMP", SizeMiB: 48}}
	r := crash(t, spec)
	o := outcome(t, r, "saved")
	wantAction(t, o, "reboot", "Restarting system")
	if o.Level != 31 {
		t.Errorf("level %d saved, want 31", o.Level)
	}
	lineAt(t, r, `level 31 chosen: ~[0-9.]+ MiB expected, [0-9.]+ MiB free; level 1 needs ~[0-9.]+ MiB`)
	file := extractDisk(t, r, 0, o.Path)
	checkDump(t, r, file, want{format: anydump.Kdump})
	in, err := anydump.ReadInfo(file)
	if err != nil {
		t.Fatal(err)
	}
	if in.Level == nil || *in.Level != 31 || !in.Complete {
		t.Errorf("dump level %v, complete %v; want 31, complete", in.Level, in.Complete)
	}
}

// TestFaultTargetMissing: the target never appears. The capture waits
// device_timeout, lists the devices it saw, and takes the failure action
// right after.
func TestFaultTargetMissing(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.1", "target = \"LABEL=NOSUCH\"\ndevice_timeout = \"5s\"\nfailure_action = \"poweroff\"\n")
	r := crash(t, spec)
	o := outcome(t, r, "FAILED")
	wantAction(t, o, "poweroff", "Power down")
	if !regexp.MustCompile(`no device matches LABEL=NOSUCH after [0-9.]+s`).MatchString(o.Reason) {
		t.Errorf("reason %q", o.Reason)
	}
	// The devices seen are listed, the disk that is there among them.
	lineAt(t, r, `^\s+nvme0n1 \d+:\d+ .*TYPE=ext4 .*LABEL="GOKDUMP"`)
	waited := o.ActionAt - lineAt(t, r, `waiting up to 5s for LABEL=NOSUCH`)
	t.Logf("from the wait to the action: %.2fs", waited.Seconds())
	if waited < 5*time.Second || waited > 8*time.Second {
		t.Errorf("failure action %.2fs after the wait began, want 5s to 8s", waited.Seconds())
	}
}

// TestFaultReadOnlyFallback: the target is write-protected. The capture
// says so and, with failure_action = "fallback", saves to fallback_target.
// The read-only disk is on virtio, which tells the guest it is read-only
// (QEMU's NVMe fails the writes instead: the mount then fails with EIO).
func TestFaultReadOnlyFallback(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.12", "target = \"LABEL=RO\"\nfailure_action = \"fallback\"\nfallback_target = \"LABEL=GOKDUMP\"\n")
	spec.Disks = []harness.Disk{{Label: "RO", Bus: "virtio", SizeMiB: 64, ReadOnly: true}, {Label: "GOKDUMP", SizeMiB: 128}}
	r := crash(t, spec)
	o := outcome(t, r, "saved")
	wantAction(t, o, "reboot", "Restarting system")
	lineAt(t, r, `target LABEL=RO: target LABEL=RO \(/dev/vda\) is read-only`)
	lineAt(t, r, `trying the fallback target LABEL=GOKDUMP`)
	file := extractDisk(t, r, 1, o.Path)
	checkDump(t, r, file, want{format: anydump.Kdump})
	if ents := lsDisk(t, r, 0, "/"); len(ents) != 1 { // lost+found and nothing else
		t.Errorf("the read-only disk changed: %v", ents)
	}
}

// TestFaultPowerCut: QEMU is killed half-way through a dump (a power
// cut) right after the console says 50%, which the capture says only once
// that half is synced. The part written survives, readable and flagged
// incomplete; the next crash onto the same disk is captured fine, reports
// the first one's leftover vmcore-incomplete and leaves it as it was.
func TestFaultPowerCut(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.1", "target = \"LABEL=GOKDUMP\"\ndump_level = [1]\n")
	spec.Disks = []harness.Disk{{Label: "GOKDUMP", SizeMiB: 256}}
	spec.KillOn = regexp.MustCompile(`gokdump: saving +50%`)
	r1 := crash(t, spec)
	if !r1.Killed {
		failf(t, r1, "QEMU was not killed mid-dump")
	}
	if o := r1.Outcome(); o.Status != "" {
		failf(t, r1, "the first capture finished (%s) before the power cut", o)
	}

	spec2 := faultSpec("6.1", "target = \"LABEL=GOKDUMP\"\n")
	spec2.Dbg = true
	spec2.Disks = []harness.Disk{{Label: "GOKDUMP", Image: r1.Disks[0]}}
	r2 := crash(t, spec2)
	o := outcome(t, r2, "saved")
	if len(o.Leftovers) != 1 || !strings.HasSuffix(o.Leftovers[0], "/"+crashdir.VMCoreIncomplete) {
		failf(t, r2, "leftovers reported: %q, want the first crash's %s", o.Leftovers, crashdir.VMCoreIncomplete)
	}
	left := o.Leftovers[0]
	if path.Dir(left) == path.Dir(o.Path) {
		t.Fatalf("the second dump went into the first's directory %s", path.Dir(left))
	}
	// The leftover is as the second capture found it: same size.
	l, m, _ := r2.Find(regexp.MustCompile(`gokdump: LEFTOVER \S+ state=incomplete bytes=(\d+)`))
	ents := lsDisk(t, r2, 0, path.Dir(left))
	e, ok := ents[crashdir.VMCoreIncomplete]
	if !ok || m == nil || e.Size == 0 || m[1] != strconv.FormatInt(e.Size, 10) {
		t.Errorf("leftover after the second capture: %v; reported %q", ents, l.Text)
	}
	// It is flagged incomplete, our reader opens it, and the pages synced
	// before the cut are there.
	d, err := anydump.Open(extractDisk(t, r2, 0, left))
	if err != nil {
		t.Fatalf("the power-cut dump does not open: %v", err)
	}
	if !d.Incomplete {
		t.Error("the power-cut dump is not flagged incomplete")
	}
	nonZero := 0
	buf := make([]byte, d.PageSize)
	for pfn, err := range d.Pages() {
		if err != nil {
			t.Fatalf("pages of the power-cut dump: %v", err)
		}
		if _, err := d.ReadPhys(buf, pfn*uint64(d.PageSize)); err != nil {
			t.Fatalf("pfn %#x of the power-cut dump: %v", pfn, err)
		}
		if !bytes.Equal(buf, make([]byte, len(buf))) {
			nonZero++
		}
	}
	d.Close()
	// Level 1 keeps ~33000 non-zero pages of this guest: half is synced.
	t.Logf("power-cut dump: %d bytes, %d non-zero pages readable", e.Size, nonZero)
	if nonZero < 10000 {
		t.Errorf("only %d non-zero pages survived the power cut after 50%%", nonZero)
	}
	file := extractDisk(t, r2, 0, o.Path)
	checkDump(t, r2, file, want{format: anydump.Kdump})
}

// TestFaultPanic: a Go panic injected into the capture (test_panic) in
// its own goroutine, in another goroutine mid-dump, and a capture that
// blocks for good in a system call mid-dump: each ends in FAILED and the
// failure action, the hang within the time budget.
func TestFaultPanic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		point, line, budget, reason string
	}{
		{"capture", "6.12", "10m", "panic in capture: test_panic=capture: injected panic"},
		{"goroutine", "6.1", "10m", "the capture process died (exit status 2: a Go panic or fatal error, see above)"},
		{"hang", "6.12", "15s", "time budget 15s exceeded; the capture was stopped"},
	} {
		t.Run(tc.point, func(t *testing.T) {
			t.Parallel()
			spec := faultSpec(tc.line, "target = \"LABEL=GOKDUMP\"\nfailure_action = \"poweroff\"\ndump_level = [1]\n"+
				"test_panic = \""+tc.point+"\"\ntime_budget = \""+tc.budget+"\"\n")
			spec.Disks = []harness.Disk{{Label: "GOKDUMP", SizeMiB: 256}}
			r := crash(t, spec)
			o := outcome(t, r, "FAILED")
			wantAction(t, o, "poweroff", "Power down")
			if !strings.HasPrefix(o.Reason, tc.reason) {
				t.Errorf("reason %q, want %q", o.Reason, tc.reason)
			}
			if tc.point == "goroutine" {
				lineAt(t, r, `^panic: test_panic=goroutine: injected panic in a goroutine`)
			}
			if tc.point == "hang" {
				// The budget counts from the capture init's start.
				took := o.ActionAt - o.CaptureStart
				t.Logf("capture start to action: %.2fs", took.Seconds())
				if took < 14*time.Second || took > 20*time.Second {
					t.Errorf("the budget of 15s ended the capture after %.2fs", took.Seconds())
				}
			}
		})
	}
}

// TestFaultUnparseableVmcore: when /proc/vmcore cannot be parsed (forced
// with test_panic = "vmcore"), the capture saves a raw copy of it:
// nothing filtered, nothing lost.
func TestFaultUnparseableVmcore(t *testing.T) {
	t.Parallel()
	spec := faultSpec("6.12", "target = \"LABEL=GOKDUMP\"\ntest_panic = \"vmcore\"\n")
	spec.Dbg = true
	spec.Disks = []harness.Disk{{Label: "GOKDUMP", SizeMiB: 1024}}
	r := crash(t, spec)
	o := outcome(t, r, "saved")
	if o.Format != "raw-copy" {
		t.Errorf("format %q, want raw-copy", o.Format)
	}
	file := extractDisk(t, r, 0, o.Path)
	checkDump(t, r, file, want{format: anydump.ELF, userAll: true})
	if st, err := os.Stat(file); err == nil && st.Size() != o.Bytes {
		t.Errorf("copy is %d bytes, the capture reported %d", st.Size(), o.Bytes)
	}
}
