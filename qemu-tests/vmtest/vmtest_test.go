package vmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// reports are a passing, a failing and a setup-error report, as Run
// makes them.
func reports() map[string]*Report {
	started := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	kernel := KernelInfo{Path: "/boot/vmlinuz-6.1.0-57-cloud-amd64", Arch: "amd64", Release: "6.1.0-57-cloud-amd64"}
	pass := &Report{Result: Pass, Kernel: kernel, Accel: "tcg", AccelReason: "a KVM guest did not finish booting in 10s",
		Crash: "sysrq", DumpLevel: 31, Disk: "nvme", MemMiB: 1024, CPUs: 1, CrashKernel: "128M", Started: started, Seconds: 19.5,
		Loader: "kexec_file_load", CaptureCmdline: "console=ttyS0 reset_devices nr_cpus=1 irqpoll",
		Phases: []Phase{{PhaseSetup, 1.2}, {PhaseBoot, 3.5}, {PhaseSave, 4.3}},
		Dump:   &DumpInfo{Path: "/var/crash/2026-12-05-01:02:10/vmcore", Bytes: 32865967, Format: "kdump", Level: 31, Pages: 26877, MaxPFN: 262103},
		Checks: []Check{{CheckSaved, Pass, "ok"}, {CheckKmsg, Pass, "ok"}, {CheckDrgn, Skip, "no --vmlinux"}}}
	fail := &Report{Result: Fail, FailedPhase: PhaseCaptureBoot, Error: "the capture kernel did not run gokdump's init",
		Kernel: kernel, Crash: "oops", Started: started, Seconds: 300,
		// A console holds what XML cannot: control characters, markup.
		SerialTail: "[ 1.0] \x1b[31mOops\x1b[0m <RIP> & \"]]>\" \x00\x07 done",
		Checks:     []Check{{CheckKConfig, Pass, "ok"}}}
	setup := &Report{Result: Error, Error: "qemu-system-x86_64 is not installed", Started: started, Checks: []Check{}}
	return map[string]*Report{"pass": pass, "fail": fail, "error": setup}
}

// TestWriteJUnit: every report writes JUnit XML that validates and
// counts what it holds: a testcase "kdump" for the run and one per check.
func TestWriteJUnit(t *testing.T) {
	want := map[string]struct{ tests, failures, errors, skipped int }{
		"pass": {4, 0, 0, 1}, "fail": {2, 1, 0, 0}, "error": {1, 0, 1, 0},
	}
	for name, r := range reports() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.WriteJUnit(&b); err != nil {
				t.Fatal(err)
			}
			if err := fixture.CheckJUnit(b.Bytes()); err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			var doc junitSuites
			if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			w := want[name]
			s := doc.Suites[0]
			if s.Tests != w.tests || s.Failures != w.failures || s.Errors != w.errors || s.Skipped != w.skipped {
				t.Errorf("counts %d/%d/%d/%d, want %+v\n%s", s.Tests, s.Failures, s.Errors, s.Skipped, w, b.String())
			}
			whole := s.Cases[0]
			switch name {
			case "fail":
				if whole.Failure == nil || !strings.Contains(whole.Failure.Message, "phase capture-boot") {
					t.Errorf("the kdump testcase: %+v", whole)
				}
				if !strings.Contains(s.SystemOut, "Oops") || !strings.Contains(s.SystemOut, "<RIP> & \"]]>\"") {
					t.Errorf("system-out %q", s.SystemOut)
				}
			case "error":
				if whole.Error == nil || whole.Error.Type != "setup" {
					t.Errorf("the kdump testcase: %+v", whole)
				}
			}
		})
	}
}

// TestReportJSON: the JSON of a report decodes back to it, and its keys
// are the documented ones (testdata/report.json; README, "gokdump
// vmtest").
func TestReportJSON(t *testing.T) {
	r := reports()["pass"]
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Result != Pass || back.Dump.Pages != 26877 || len(back.Checks) != 3 || !back.Started.Equal(r.Started) {
		t.Errorf("round trip: %+v", back)
	}
	golden := filepath.Join("testdata", "report.json")
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(b.Bytes(), want) {
		t.Errorf("the JSON of a report changed (go test -update rewrites %s, and README documents it): %v\n%s", golden, err, b.String())
	}
}

// TestRunConfigFails: a kernel whose configuration lacks an option fails
// in the config phase, before anything is built or booted (no QEMU
// needed), with the option named.
func TestRunConfigFails(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	os.WriteFile(kernel, fixture.BzImage("6.9.0-test (me@here) #1 SMP"), 0o644)
	b, err := os.ReadFile("testdata/kdump-amd64.config")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config")
	os.WriteFile(config, bytes.Replace(b, []byte("CONFIG_PROC_VMCORE=y\n"), nil, 1), 0o644)
	keep := filepath.Join(dir, "keep")
	r, err := Run(context.Background(), Options{Kernel: kernel, KConfig: config, Keep: keep, Dir: filepath.Join(dir, "work")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != Fail || r.FailedPhase != PhaseConfig || !strings.Contains(r.Error, "CONFIG_PROC_VMCORE") ||
		r.Kernel.Release != "6.9.0-test" || r.Config == nil || r.Kernel.Config != config {
		t.Errorf("report %+v", r)
	}
	if c, ok := r.Check(CheckKConfig); !ok || c.Status != Fail {
		t.Errorf("check %+v", c)
	}
	if _, err := os.Stat(filepath.Join(dir, "work", "disk.img")); err == nil {
		t.Error("a disk was made for a kernel that cannot work")
	}
	// --keep holds the report.
	var kept Report
	if b, err := os.ReadFile(filepath.Join(keep, KeepReportJSON)); err != nil || json.Unmarshal(b, &kept) != nil || kept.FailedPhase != PhaseConfig {
		t.Errorf("kept report: %v %+v", err, kept)
	}
	if fi, err := os.Stat(keep); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("keep dir %v %v", fi, err)
	}
}

// TestRunSetupErrors: what keeps a test from running is a setup error
// (ErrSetup, Result Error), never a kdump failure.
func TestRunSetupErrors(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	os.WriteFile(kernel, fixture.BzImage("6.9.0-test (me@here) #1 SMP"), 0o644)
	vmlinux := filepath.Join(dir, "vmlinux")
	os.WriteFile(vmlinux, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...), 0o644)
	arm64 := filepath.Join(dir, "Image")
	os.WriteFile(arm64, arm64Image(1<<16, 0x9000, "6.12.0-test (me@here) #1 SMP"), 0o644)
	mods := filepath.Join(dir, "lib", "modules", "6.8.0-other")
	os.MkdirAll(mods, 0o755)
	tests := []struct {
		name string
		o    Options
		msg  string
	}{
		{"no kernel", Options{}, "--kernel"},
		{"missing kernel", Options{Kernel: filepath.Join(dir, "none")}, "no such file"},
		{"vmlinux as kernel", Options{Kernel: vmlinux}, "--vmlinux"},
		{"wrong arch", Options{Kernel: kernel, Arch: "arm64"}, "amd64 kernel, not arm64"},
		{"wrong arch arm64", Options{Kernel: arm64, Arch: "amd64"}, "arm64 kernel, not amd64"},
		{"unsupported arch", Options{Kernel: kernel, Arch: "riscv64"}, "--arch riscv64: architecture not supported"},
		// An arm64 kernel gets as far as an amd64 one.
		{"arm64 other modules", Options{Kernel: arm64, Modules: mods}, "the kernel is 6.12.0-test"},
		{"arm64 no drgn", Options{Kernel: arm64, VMLinux: vmlinux, Drgn: "/nonexistent/drgn"}, "not installed"},
		{"other modules", Options{Kernel: kernel, Modules: mods}, "not the kernel's"},
		{"bad disk", Options{Kernel: kernel, Disk: "scsi"}, "disk \"scsi\""},
		{"bad crash", Options{Kernel: kernel, Crash: "reboot"}, "crash \"reboot\""},
		{"small memory", Options{Kernel: kernel, MemMiB: 64}, "256"},
		{"no drgn", Options{Kernel: kernel, VMLinux: vmlinux, Drgn: "/nonexistent/drgn"}, "not installed"},
		{"bad config", Options{Kernel: kernel, KConfig: vmlinux}, "kernel configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Run(context.Background(), tt.o)
			if !errors.Is(err, ErrSetup) || r == nil || r.Result != Error || !strings.Contains(r.Error, tt.msg) {
				t.Fatalf("Run: %v; report %+v; want ErrSetup with %q", err, r, tt.msg)
			}
			if (tt.name == "unsupported arch") != errors.Is(err, ErrUnsupportedArch) {
				t.Errorf("Run: %v: ErrUnsupportedArch %v", err, errors.Is(err, ErrUnsupportedArch))
			}
			if r.Passed() || r.FailedPhase != "" {
				t.Errorf("report %+v", r)
			}
		})
	}
}

// TestPhaseNames: the phases a failure can be in are those README lists,
// in order.
func TestPhaseNames(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	list := strings.Join([]string{PhaseConfig, PhaseBoot, PhaseLoad, PhaseCrash, PhaseCaptureBoot, PhaseSave, PhaseChecks}, "`, `")
	if !bytes.Contains(readme, []byte("`"+list+"`")) {
		t.Errorf("README does not list the failure phases as `%s`", list)
	}
	for _, c := range []string{CheckKConfig, CheckSaved, CheckRelease, CheckKmsg, CheckReason, CheckUser, CheckCache, CheckDmesgFile, CheckDrgn} {
		if !regexp.MustCompile("`" + c + "`").Match(readme) {
			t.Errorf("README does not name the check %s", c)
		}
	}
}

// TestRunCrashKernelDefault: the reservation is the kernel's
// architecture's unless given (a run that stops at the modules check
// reports it without booting).
func TestRunCrashKernelDefault(t *testing.T) {
	dir := t.TempDir()
	bz := filepath.Join(dir, "bzImage")
	os.WriteFile(bz, fixture.BzImage("6.9.0-test (me@here) #1 SMP"), 0o644)
	arm64 := filepath.Join(dir, "Image")
	os.WriteFile(arm64, arm64Image(1<<16, 0x9000, "6.12.0-test (me@here) #1 SMP"), 0o644)
	mods := filepath.Join(dir, "lib", "modules", "6.8.0-other")
	os.MkdirAll(mods, 0o755)
	for _, tt := range []struct{ kernel, given, want string }{
		{bz, "", DefaultCrashKernel},
		{arm64, "", DefaultCrashKernel},
		{arm64, "192M", "192M"},
		{bz, "512M", "512M"},
	} {
		r, err := Run(context.Background(), Options{Kernel: tt.kernel, Modules: mods, CrashKernel: tt.given})
		if !errors.Is(err, ErrSetup) || r.CrashKernel != tt.want {
			t.Errorf("%s, crashkernel %q: %v, report's %q, want %q", filepath.Base(tt.kernel), tt.given, err, r.CrashKernel, tt.want)
		}
	}
}
