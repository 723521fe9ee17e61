package qemutests

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

var (
	// The capture init's first note: its CPUs and memory.
	kernelNoteRE = regexp.MustCompile(`capture kernel: (\d+) CPUs?(?:, ([0-9.]+) MiB of memory)?(?:, ([0-9.]+) MiB available)?`)
	// The supervisor's note once the capture is done.
	memoryLeftRE = regexp.MustCompile(`memory left: ([0-9.]+) MiB available.*`)
	// The pipeline's note on how it saves: its worker count.
	workersRE = regexp.MustCompile(`gokdump: \[[ 0-9.]+\] (\d+) workers?, pages `)
	// The save's summary: its duration.
	summaryRE = regexp.MustCompile(`level \d+, kdump \w+: .* ([0-9.]+)s \(\d+ MiB/s`)
)

// cpuRun is what a capture on several CPUs said about itself.
type cpuRun struct {
	cpus, workers int
	memMiB, avail float64
	left          float64 // MiB available once the capture is done
	leftNote      string
	save          string // the save's own duration, as its summary says
}

func readCPURun(t *testing.T, r *harness.Run) cpuRun {
	t.Helper()
	var c cpuRun
	_, m, ok := r.Find(kernelNoteRE)
	if !ok {
		failf(t, r, "no %q line from the capture init", "capture kernel: N CPUs")
	}
	c.cpus, _ = strconv.Atoi(m[1])
	c.memMiB, _ = strconv.ParseFloat(m[2], 64)
	c.avail, _ = strconv.ParseFloat(m[3], 64)
	if _, m, ok := r.Find(workersRE); ok {
		c.workers, _ = strconv.Atoi(m[1])
	}
	if _, m, ok := r.Find(memoryLeftRE); ok {
		c.left, _ = strconv.ParseFloat(m[1], 64)
		c.leftNote = m[0]
	}
	if _, m, ok := r.Find(summaryRE); ok {
		c.save = m[1] + " s"
	}
	return c
}

// TestCaptureCPUs crashes a 4-CPU guest whose config says capture_cpus =
// 2: the capture kernel must come up with two CPUs (nr_cpus=2 on the
// command line the loader derives), the save must run a worker on each,
// and the dump must be whole. The save's time is logged, not asserted.
func TestCaptureCPUs(t *testing.T) {
	t.Parallel()
	spec := harness.Spec{Line: "latest", CPUs: 4, Dbg: true,
		Config: "target = \"LABEL=GOKDUMP\"\ncapture_cpus = 2\n"}
	r := crash(t, spec)
	p := savedPath(t, r)
	c := readCPURun(t, r)
	if !strings.Contains(r.Serial(), "nr_cpus=2") {
		failf(t, r, "the capture command line has no nr_cpus=2")
	}
	if c.cpus != 2 || c.workers != 2 {
		failf(t, r, "capture kernel: %d CPUs, %d workers; want 2 and 2", c.cpus, c.workers)
	}
	dir := path.Dir(p)
	checkDmesgFile(t, r, dir)
	out := extract(t, r, p)
	checkDump(t, r, out, want{format: anydump.Kdump})
	in, err := anydump.ReadInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Complete || in.Release != r.Kernel.KVer {
		t.Errorf("gokdump info: release %q, complete %v", in.Release, in.Complete)
	}
	t.Logf("%s, capture_cpus = 2: %d CPUs, %.1f MiB of memory, %.1f MiB available at start; save %s",
		r.Kernel.KVer, c.cpus, c.memMiB, c.avail, c.save)

}

// TestCaptureCPUsCalibrate boots the capture with nr_cpus=1, 2 and 4 in a
// 4-CPU guest and logs the memory each capture kernel had left for the
// init, and the save's time: the per-CPU cost gokdump estimate charges
// (kexec.PerCPU). Only with GOKDUMP_CALIBRATE=1 (not in CI).
func TestCaptureCPUsCalibrate(t *testing.T) {
	if os.Getenv("GOKDUMP_CALIBRATE") == "" {
		t.Skip("GOKDUMP_CALIBRATE=1 runs it")
	}
	var res []string
	var r *harness.Run
	for _, n := range []int{1, 2, 4} {
		r = crash(t, harness.Spec{Line: "latest", CPUs: 4, CaptureAppend: fmt.Sprintf("nr_cpus=%d", n)})
		savedPath(t, r)
		c := readCPURun(t, r)
		res = append(res, fmt.Sprintf("nr_cpus=%d: %d CPUs, %d workers, %.1f MiB of memory, %.1f MiB available at start, save %s; %s",
			n, c.cpus, c.workers, c.memMiB, c.avail, c.save, c.leftNote))
	}
	t.Logf("%s under -smp 4, crashkernel=%s:\n%s", r.Kernel.KVer, r.Spec.CrashKernel, strings.Join(res, "\n"))
}
