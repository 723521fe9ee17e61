package qemutests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

// TestVMTest crash-tests the oldest and the newest line of the kernel
// matrix the two ways a kernel CI gets it: the oldest through `gokdump
// vmtest` as a CI job runs it (the command with its inits beside it, found
// as installed ones are; --json, --junit, --keep; its exit code), the
// newest through the Go API, vmtest.Run, as another test suite would call
// it. Both boot Debian's vmlinuz with its modules and its debug vmlinux on
// a virtio dump disk (its driver a module packed from --modules); the
// oldest crashes by sysrq, the newest by PID 1 exiting (--crash panic).
// Both must pass every check, drgn's included (Debian 12's drgn, or sid's
// through a wrapper where the line needs it); the JSON must decode as
// vmtest.Report and the JUnit validate. These are the virtio-blk cycles
// TestCrash ran before.
func TestVMTest(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	gokdump, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	stage1, captureInit, err := harness.Binaries(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		line  harness.Line
		crash string
		api   bool // vmtest.Run, not the command
	}
	cases := []tc{{harness.Oldest(), guest.CrashSysrq, false}}
	if harness.Newest().Name != harness.Oldest().Name {
		cases = append(cases, tc{harness.Newest(), guest.CrashPanic, true})
	}
	for _, c := range cases {
		t.Run(c.line.Name, func(t *testing.T) {
			t.Parallel()
			k, err := harness.GetKernel(repoRoot, c.line.Name, true)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			keep := filepath.Join(dir, "keep")
			drgn := ""
			if k.VMLinux != "" && !c.line.Needs(matrix.DrgnOld) {
				drgn = sidDrgn(t, dir)
			}
			var rep *vmtest.Report
			if c.api {
				rep = vmtestAPI(t, vmtest.Options{Kernel: k.VMLinuz, Modules: k.Modules, VMLinux: k.VMLinux, Drgn: drgn,
					Disk: "virtio", Crash: c.crash, Keep: keep, Stage1Init: stage1, CaptureInit: captureInit})
			} else {
				args := []string{"--kernel", k.VMLinuz, "--modules", k.Modules, "--disk", "virtio", "--crash", c.crash, "--keep", keep}
				if k.VMLinux != "" {
					args = append(args, "--vmlinux", k.VMLinux)
				}
				if drgn != "" {
					args = append(args, "--drgn", drgn)
				}
				rep = vmtestCommand(t, gokdump, dir, args)
				for _, init := range []string{rep.Stage1Init, rep.CaptureInit} {
					if !strings.HasSuffix(init, " (installed)") {
						t.Errorf("init %q, want the one beside gokdump", init)
					}
				}
			}

			if rep.Kernel.Release != k.KVer || rep.Crash != c.crash || rep.Disk != "virtio" || rep.DumpLevel != 31 {
				t.Errorf("report of %s, crash %s, disk %s, level %d", rep.Kernel.Release, rep.Crash, rep.Disk, rep.DumpLevel)
			}
			if rep.Accel == "" || rep.AccelReason == "" {
				t.Errorf("the report does not say which accelerator, and why: %q %q", rep.Accel, rep.AccelReason)
			}
			want := []string{vmtest.CheckKConfig, vmtest.CheckSaved, vmtest.CheckRelease, vmtest.CheckKmsg, vmtest.CheckReason,
				vmtest.CheckUser, vmtest.CheckCache, vmtest.CheckDmesgFile}
			if k.VMLinux != "" {
				want = append(want, vmtest.CheckDrgn)
			}
			for _, name := range want {
				if ch, ok := rep.Check(name); !ok || ch.Status != vmtest.Pass {
					t.Errorf("check %s: %+v", name, ch)
				}
			}
			var phases []string
			for _, p := range rep.Phases {
				phases = append(phases, p.Name)
			}
			if got := strings.Join(phases, " "); !strings.Contains(got, "boot load crash capture-boot save reboot checks") {
				t.Errorf("phases %s", got)
			}
			if d := rep.Dump; d == nil || d.Bytes <= 0 || d.Pages == 0 || d.Kept == "" {
				t.Errorf("dump %+v", d)
			}
			for _, f := range rep.Kept {
				if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("kept %s: %v %v, want mode 600", f, fi, err)
				}
			}
			if len(rep.Kept) != 4 {
				t.Errorf("kept %q, want serial.log, vmcore, vmcore-dmesg.txt, report.json", rep.Kept)
			}
		})
	}
}

// TestVMTestARM64 is `gokdump vmtest` on Debian's arm64 6.12 as a CI job
// runs it (--json, --junit, --keep, its exit code), with its modules and
// its debug vmlinux on a virtio dump disk: QEMU's virt machine under TCG,
// both inits found installed in arm64/ beside gokdump (where make
// puts the other architecture's inits), the capture kernel loaded with
// kexec_load (Debian's arm64 kernels have no kexec_file_load) on a line
// with console=ttyAMA0 and no irqpoll, crashkernel= at the arm64 default.
// Every check must pass, drgn's (Debian 12's) included. One cycle, about
// 35 s on two cores, in make test.
func TestVMTestARM64(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	gokdump, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	stage1, captureInit, err := harness.BinariesFor(repoRoot, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(gokdump), "arm64", "gokdump-vmtest-init"); stage1 != want {
		t.Fatalf("the harness's arm64 stage-1 init is %s, not in arm64/ beside gokdump (%s)", stage1, want)
	}
	k, err := harness.GetKernelArch(repoRoot, "6.12", "arm64", true)
	if err != nil {
		t.Fatal(err)
	}
	if k.VMLinux == "" {
		fixture.Missing(t, "no debug vmlinux of %s for the drgn check", k.KVer)
	}
	dir := t.TempDir()
	// Both inits are found installed, as gokdump build finds the capture
	// init (builder.InstalledInitPaths): in arm64/ beside gokdump.
	rep := vmtestCommand(t, gokdump, dir, []string{"--kernel", k.VMLinuz, "--modules", k.Modules, "--vmlinux", k.VMLinux,
		"--disk", "virtio", "--keep", filepath.Join(dir, "keep")})

	if rep.Kernel.Arch != "arm64" || rep.Kernel.Release != k.KVer || rep.Disk != "virtio" || rep.DumpLevel != 31 ||
		rep.CrashKernel != vmtest.DefaultCrashKernel || rep.Accel != "tcg" {
		t.Errorf("report of %s %s, disk %s, level %d, crashkernel %s, accel %s", rep.Kernel.Arch, rep.Kernel.Release,
			rep.Disk, rep.DumpLevel, rep.CrashKernel, rep.Accel)
	}
	if rep.Stage1Init != stage1+" (installed)" || rep.CaptureInit != captureInit+" (installed)" {
		t.Errorf("inits %q and %q, want %s and %s installed", rep.Stage1Init, rep.CaptureInit, stage1, captureInit)
	}
	if rep.Loader != "kexec_load" || !strings.Contains(rep.CaptureCmdline, "console=ttyAMA0") || strings.Contains(rep.CaptureCmdline, "irqpoll") {
		t.Errorf("loaded with %q, capture line %q: want kexec_load, console=ttyAMA0, no irqpoll", rep.Loader, rep.CaptureCmdline)
	}
	for _, name := range []string{vmtest.CheckKConfig, vmtest.CheckSaved, vmtest.CheckRelease, vmtest.CheckKmsg, vmtest.CheckReason,
		vmtest.CheckUser, vmtest.CheckCache, vmtest.CheckDmesgFile, vmtest.CheckDrgn} {
		if ch, ok := rep.Check(name); !ok || ch.Status != vmtest.Pass {
			t.Errorf("check %s: %+v", name, ch)
		}
	}
	if d := rep.Dump; d == nil || d.Format != "kdump" || d.Pages == 0 || d.Kept == "" {
		t.Errorf("dump %+v", d)
	} else {
		t.Logf("%s: %d pages kept at level 31, %d bytes; %.0fs", k.KVer, d.Pages, d.Bytes, rep.Seconds)
	}
}

// vmtestCommand runs gokdump vmtest with args, --json and --junit, from a
// directory that is no checkout (so the inits beside gokdump are used),
// as one guest of the harness's; it fails the test unless the command
// exits 0 with a passing report and a valid JUnit file.
func vmtestCommand(t *testing.T, gokdump, dir string, args []string) *vmtest.Report {
	t.Helper()
	junit := filepath.Join(dir, "junit.xml")
	args = append([]string{"vmtest", "--json", "--junit", junit}, args...)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := func() error {
		defer harness.Guest()()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, gokdump, args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	}()
	t.Logf("gokdump %s (%.0fs)\n%s", strings.Join(args, " "), time.Since(start).Seconds(), stderr.Bytes())
	var rep vmtest.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("gokdump vmtest: %v; its JSON: %v\n%s", err, jerr, stdout.Bytes())
	}
	logReport(t, &rep)
	if err != nil || !rep.Passed() {
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		t.Fatalf("gokdump vmtest exited %d (%v): %s in phase %q: %s", code, err, rep.Result, rep.FailedPhase, rep.Error)
	}
	doc, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	checkJUnit(t, doc)
	return &rep
}

// vmtestAPI runs vmtest.Run as one guest of the harness's and fails the
// test unless the report passes; its JSON must decode to the same report
// and its JUnit validate.
func vmtestAPI(t *testing.T, o vmtest.Options) *vmtest.Report {
	t.Helper()
	o.Log = func(format string, args ...any) { t.Logf("vmtest: "+format, args...) }
	rep, err := func() (*vmtest.Report, error) {
		defer harness.Guest()()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		return vmtest.Run(ctx, o)
	}()
	logReport(t, rep)
	if err != nil || !rep.Passed() {
		t.Fatalf("vmtest.Run: %v: %s in phase %q: %s", err, rep.Result, rep.FailedPhase, rep.Error)
	}
	if rep.Stage1Init != o.Stage1Init+" (given)" || rep.CaptureInit != o.CaptureInit+" (given)" {
		t.Errorf("inits %q and %q, want those given", rep.Stage1Init, rep.CaptureInit)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back vmtest.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || !reflect.DeepEqual(&back, rep) {
		t.Errorf("the JSON does not decode to the report (%v):\n%s", err, js.Bytes())
	}
	var junit bytes.Buffer
	if err := rep.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	checkJUnit(t, junit.Bytes())
	return rep
}

func logReport(t *testing.T, rep *vmtest.Report) {
	t.Helper()
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("report:\n%s", text.Bytes())
}

// checkJUnit: a valid JUnit document of a passing run.
func checkJUnit(t *testing.T, doc []byte) {
	t.Helper()
	if err := fixture.CheckJUnit(doc); err != nil {
		t.Errorf("%v\n%s", err, doc)
	}
	if !bytes.Contains(doc, []byte(`failures="0" errors="0"`)) {
		t.Errorf("the JUnit file counts failures or errors:\n%s", doc)
	}
}

// sidDrgn writes a drgn command into dir that runs sid's drgn
// (scripts/sid-run), binding each of its arguments that is a file.
func sidDrgn(t *testing.T, dir string) string {
	t.Helper()
	if _, err := harness.ReaderVersions(repoRoot); err != nil {
		fixture.Missing(t, "no sid tree for the newer drgn: %v", err)
	}
	sid := harness.SidCommand(repoRoot, nil, "/usr/bin/python3", "-m", "drgn")
	var quoted []string
	for _, a := range sid.Args {
		if a == "--" {
			break
		}
		quoted = append(quoted, fmt.Sprintf("%q", a))
	}
	quoted[0] = fmt.Sprintf("%q", sid.Path)
	script := fmt.Sprintf(`#!/usr/bin/env bash
binds=()
for a in "$@"; do [ -e "$a" ] && binds+=(--bind "$a"); done
exec %s "${binds[@]}" -- /usr/bin/python3 -m drgn "$@"
`, strings.Join(quoted, " "))
	p := filepath.Join(dir, "sid-drgn")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
