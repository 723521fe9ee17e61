package qemutests

import (
	"context"
	"os"
	"os/exec"
	"path"
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
// onto NVMe, checked as on x86_64: at level 31 no user or page-cache
// marker, the kernel log's kept, vmcore-dmesg.txt beside it, drgn opens
// it. One cycle (about 45 s under TCG) runs in make test; the level-1 run
// (every marker kept) only with GOKDUMP_ARM64_FULL=1 (make
// qemu-test-arm64).
func TestCrashARM64(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, args string
		w          want
		full       bool
	}{
		{"6.12-d31", "", want{format: anydump.Kdump}, false},
		{"6.12-d1", " gokdump.dump_level=1", want{format: anydump.Kdump, userAll: true, cacheAll: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.full && os.Getenv("GOKDUMP_ARM64_FULL") == "" {
				t.Skip("one arm64 cycle runs in make test; GOKDUMP_ARM64_FULL=1 (make qemu-test-arm64) runs this one too")
			}
			t.Parallel()
			r := crash(t, harness.Spec{
				Arch: "arm64", Line: "6.12", Dbg: true, CaptureSyscall: kexec.SyscallClassic,
				// The arm64 stage 1 derives the capture line: no irqpoll.
				CaptureAppend: strings.TrimSpace(tc.args),
				// 96M is the smallest that worked (64M: the capture
				// kernel runs out of memory); 256M leaves TCG room.
				CrashKernel: "256M",
				Timeout:     6 * time.Minute,
			})
			p := savedPath(t, r)
			t.Logf("%s phases:\n%s", r.Kernel.KVer, r.PhaseReport())
			if !strings.Contains(r.Serial(), "loaded with kexec_load") {
				failf(t, r, "stage 1 did not load with kexec_load")
			}
			if _, m, ok := r.Find(regexp.MustCompile(`cmdline: (.*)`)); !ok || strings.Contains(m[1], "irqpoll") || !strings.Contains(m[1], "console=ttyAMA0") {
				failf(t, r, "capture command line %q: want console=ttyAMA0 and no irqpoll", m)
			}
			checkDmesgFile(t, r, path.Dir(p))
			fx := checkDump(t, r, extract(t, r, p), tc.w)
			t.Logf("%d pages kept at %s", fx.pages, tc.name)
		})
	}
}
