package qemutests

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
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
