package qemutests

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// arm64Dumps are the QEMU-written arm64 dumps the unit tests read (see
// fixture.ARM64Lines): each line with QEMU's max CPU (LPA2, so 52-bit
// addresses where the kernel is built for them), and 6.12 once more on a
// CPU without LPA2, where the same kernel runs with 48.
var arm64Dumps = []struct{ line, cpu string }{
	{"6.1", ""},
	{"6.12", ""},
	{"latest", ""},
	{"6.12", "max,lpa2=off,pauth-impdef=on"},
}

// TestQMPDumpARM64 makes the arm64 dumps with qemu-tests/qmpdump: Debian's
// arm64 kernel boots under TCG to the stage-1 init, which writes the
// markers and panics; QEMU writes the core (dump-guest-memory), which
// qmpdump checks (VMCOREINFO, release, every marker) and keeps in the
// cache's vmcores. Our loader cannot crash an arm64 kernel yet, so this
// stands in for the crash cycle until it can.
func TestQMPDumpARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU runs are skipped with -short")
	}
	for _, d := range arm64Dumps {
		name := d.line
		if d.cpu != "" {
			name += "-" + strings.ReplaceAll(strings.ReplaceAll(d.cpu, ",", "-"), "=", "-")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{"run", "./qemu-tests/qmpdump", "-arch", "arm64", "-line", d.line}
			if d.cpu != "" {
				args = append(args, "-cpu", d.cpu)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = repoRoot
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			t.Logf("%.1fs\n%s", time.Since(start).Seconds(), out)
		})
	}
}

// TestCrashARM64 is the arm64 crash cycle through gokdump's own loader:
// Debian's arm64 kernels have no kexec_file_load, so the stage-1 init
// loads the capture kernel with kexec_load (the DTB copied with /chosen
// set, the generated purgatory), panics, and the capture saves the dump
// onto NVMe or virtio-blk, checked as on x86_64: at level 31 no user or
// page-cache marker, the kernel log's kept, vmcore-dmesg.txt beside it,
// drgn opens it. The virtio cases' capture image is made by the CLI, as a
// user on an x86-64 host would: gokdump build --arch arm64 with the arm64
// kernel's modules tree and the generic arm64 drivers, the arm64 init
// found in arm64/ beside gokdump. Two cycles (NVMe and virtio on 6.12,
// about 45 s each under TCG) run in make test; the level-1 run (every
// marker kept) and the newest line only with GOKDUMP_ARM64_FULL=1 (make
// qemu-test-arm64).
func TestCrashARM64(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line, disk, args string
		cli                    bool // capture image by gokdump build --arch arm64
		w                      want
		full                   bool
	}{
		{"6.12-d31", "6.12", "nvme", "", false, want{format: anydump.Kdump}, false},
		{"6.12-virtio-d31", "6.12", "virtio", "", true, want{format: anydump.Kdump}, false},
		{"6.12-d1", "6.12", "nvme", " gokdump.dump_level=1", false, want{format: anydump.Kdump, userAll: true, cacheAll: true}, true},
		{"latest-virtio-d31", "latest", "virtio", "", true, want{format: anydump.Kdump}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.full && os.Getenv("GOKDUMP_ARM64_FULL") == "" {
				t.Skip("two arm64 cycles run in make test; GOKDUMP_ARM64_FULL=1 (make qemu-test-arm64) runs this one too")
			}
			if testing.Short() {
				t.Skip("QEMU crash tests are skipped with -short")
			}
			t.Parallel()
			spec := harness.Spec{
				Arch: "arm64", Line: tc.line, Disk: tc.disk, Dbg: true, CaptureSyscall: kexec.SyscallClassic,
				// The arm64 stage 1 derives the capture line: no irqpoll.
				CaptureAppend: strings.TrimSpace(tc.args),
				// 72M is the smallest that worked (68M: the capture
				// kernel runs out of memory; TestEstimate/arm64 runs
				// at the estimate); 256M leaves TCG room.
				CrashKernel: "256M",
				Timeout:     6 * time.Minute,
			}
			if tc.cli {
				spec.CaptureImage = buildARM64Capture(t, tc.line)
			}
			r := crash(t, spec)
			p := savedPath(t, r)
			t.Logf("%s phases:\n%s", r.Kernel.KVer, r.PhaseReport())
			if !strings.Contains(r.Serial(), "loaded with kexec_load") {
				failf(t, r, "stage 1 did not load with kexec_load")
			}
			if _, m, ok := r.Find(regexp.MustCompile(`cmdline: (.*)`)); !ok || strings.Contains(m[1], "irqpoll") || !strings.Contains(m[1], "console=ttyAMA0") {
				failf(t, r, "capture command line %q: want console=ttyAMA0 and no irqpoll", m)
			}
			// The capture init's line (the stage-1 init's says stage1:).
			if tc.disk == "virtio" && !regexp.MustCompile(`gokdump: (\[[^]]*\] )?module \S+/virtio_blk\.ko\S* loaded`).MatchString(r.Serial()) {
				failf(t, r, "the capture init did not load virtio_blk")
			}
			if fails := regexp.MustCompile(`gokdump: (\[[^]]*\] )?module \S+: .*`).FindAllString(r.Serial(), -1); len(fails) > 0 {
				t.Logf("modules the capture kernel refused (no such device here):\n%s", strings.Join(fails, "\n"))
			}
			checkDmesgFile(t, r, path.Dir(p))
			fx := checkDump(t, r, extract(t, r, p), tc.w)
			t.Logf("%d pages kept at %s, cycle %.1fs", fx.pages, tc.name, r.Elapsed.Seconds())
		})
	}
}

// buildARM64Capture makes the capture image of an arm64 crash cycle with
// the CLI on this (x86-64) host: gokdump build --arch arm64 of the
// line's arm64 modules tree (--kernel-modules of its lib/modules and
// --kver) with the generic arm64 drivers and the harness's config
// (target LABEL=GOKDUMP). The arm64 init is the one the harness builds
// into arm64/ beside its gokdump, found as make's bin/arm64/ is.
func buildARM64Capture(t *testing.T, line string) string {
	t.Helper()
	k, err := harness.GetKernelArch(repoRoot, line, "arm64", true)
	if err != nil {
		t.Fatal(err)
	}
	_, arm64Init, err := harness.BinariesFor(repoRoot, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gokdump.toml")
	if err := os.WriteFile(cfg, []byte("target = \"LABEL=GOKDUMP\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "capture-arm64.img")
	args := []string{"build", "--arch", "arm64", "--kernel-modules", filepath.Dir(k.Modules), "--kver", k.KVer,
		"--drivers", "generic", "--config", cfg, "-o", img}
	start := time.Now()
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gokdump %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("gokdump %s (%.1fs):\n%s", strings.Join(args, " "), time.Since(start).Seconds(), out)
	for _, want := range []string{"init: " + arm64Init + " (installed)", "virtio_blk"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("gokdump build does not say %q", want)
		}
	}
	return img
}
