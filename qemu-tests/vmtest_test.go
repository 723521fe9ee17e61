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
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

// TestVMTest runs `gokdump vmtest`, as a kernel CI job would, on the
// oldest and the newest line of the kernel matrix: the gokdump command
// with its inits beside it (found as installed ones are), Debian's
// vmlinuz, its modules and its debug vmlinux, a virtio dump disk (its
// driver a module packed from --modules), --json, --junit and --keep. The
// oldest line crashes by sysrq, the newest by PID 1 exiting (--crash
// panic). Both must pass every check, drgn's included (Debian 12's drgn,
// or sid's through a wrapper where the line needs it); the JSON must
// decode as vmtest.Report and the JUnit file validate. These are the
// virtio-blk cycles TestCrash ran before.
func TestVMTest(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	gokdump, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := harness.Binaries(repoRoot); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		line  harness.Line
		crash string
	}
	cases := []tc{{harness.Oldest(), guest.CrashSysrq}}
	if harness.Newest().Name != harness.Oldest().Name {
		cases = append(cases, tc{harness.Newest(), guest.CrashPanic})
	}
	for _, c := range cases {
		t.Run(c.line.Name, func(t *testing.T) {
			t.Parallel()
			k, err := harness.GetKernel(repoRoot, c.line.Name, true)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			junit, keep := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "keep")
			args := []string{"vmtest", "--kernel", k.VMLinuz, "--modules", k.Modules, "--disk", "virtio",
				"--crash", c.crash, "--json", "--junit", junit, "--keep", keep}
			if k.VMLinux != "" {
				args = append(args, "--vmlinux", k.VMLinux)
				if !c.line.Needs(matrix.DrgnOld) {
					args = append(args, "--drgn", sidDrgn(t, dir))
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, gokdump, args...)
			// Not a checkout: the inits beside gokdump are used.
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var rep vmtest.Report
			if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
				t.Fatalf("gokdump vmtest: %v; its JSON: %v\n%s\n%s", err, jerr, stdout.Bytes(), stderr.Bytes())
			}
			t.Logf("gokdump %s\n%s", strings.Join(args, " "), stderr.Bytes())
			var text bytes.Buffer
			rep.WriteText(&text)
			t.Logf("report:\n%s", text.Bytes())
			if err != nil || !rep.Passed() {
				var ee *exec.ExitError
				code := 0
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
				t.Fatalf("gokdump vmtest exited %d (%v): %s in phase %q: %s", code, err, rep.Result, rep.FailedPhase, rep.Error)
			}

			if rep.Kernel.Release != k.KVer || rep.Crash != c.crash || rep.Disk != "virtio" || rep.DumpLevel != 31 {
				t.Errorf("report of %s, crash %s, disk %s, level %d", rep.Kernel.Release, rep.Crash, rep.Disk, rep.DumpLevel)
			}
			if rep.Accel == "" || rep.AccelReason == "" {
				t.Errorf("the report does not say which accelerator, and why: %q %q", rep.Accel, rep.AccelReason)
			}
			for _, init := range []string{rep.Stage1Init, rep.CaptureInit} {
				if !strings.HasSuffix(init, " (installed)") {
					t.Errorf("init %q, want the one beside gokdump", init)
				}
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
			doc, err := os.ReadFile(junit)
			if err != nil {
				t.Fatal(err)
			}
			if err := fixture.CheckJUnit(doc); err != nil {
				t.Errorf("%v\n%s", err, doc)
			}
			if !bytes.Contains(doc, []byte(`failures="0" errors="0"`)) {
				t.Errorf("the JUnit file counts failures or errors:\n%s", doc)
			}
		})
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
