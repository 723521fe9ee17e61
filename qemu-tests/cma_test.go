package qemutests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestCMAReservation captures with most of the capture kernel's memory
// reserved as CMA (crashkernel=…,cma, Linux 6.17+ on x86_64, a kernel
// built with CONFIG_CMA): the crashed kernel lends it to movable
// allocations; the capture kernel gets it as RAM beside the small
// standard reservation. Of the matrix, only "latest" has CONFIG_CMA (the
// 6.19 cloud kernel does not), so the test runs there.
func TestCMAReservation(t *testing.T) {
	t.Parallel()
	const stdMiB, cmaMiB = 80, 128
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	k, err := harness.GetKernel(repoRoot, "latest", true)
	if err != nil {
		t.Fatal(err)
	}
	if !kernelHas(k, "CONFIG_CMA=y") {
		t.Fatalf("%s is built without CONFIG_CMA: crashkernel=…,cma cannot be tested on it; move the test to a line that has it", k.KVer)
	}
	spec := faultSpec("latest", "target = \"LABEL=GOKDUMP\"\nfinal_action = \"poweroff\"\n")
	spec.Dbg = true
	spec.CrashKernel = strconv.Itoa(stdMiB) + "M"
	spec.FirstAppend = "crashkernel=" + strconv.Itoa(cmaMiB) + "M,cma"
	r := crash(t, spec)
	o := outcome(t, r, "saved")
	wantAction(t, o, "poweroff", "Power down")
	lineAt(t, r, `crashkernel CMA reserved: `+strconv.Itoa(cmaMiB)+` MB in \d+ range`)
	// The kernel's "Memory: free/total available" line: the crashed
	// kernel's first, the capture kernel's second. The capture kernel
	// has the CMA ranges as RAM, more than the standard reservation.
	memRE := regexp.MustCompile(`\] Memory: \d+K/(\d+)K available`)
	var totals []int
	for _, l := range r.Log {
		if m := memRE.FindStringSubmatch(l.Text); m != nil {
			n, _ := strconv.Atoi(m[1])
			totals = append(totals, n)
		}
	}
	if len(totals) != 2 {
		failf(t, r, "%d \"Memory:\" lines, want 2 (the crashed kernel's, the capture kernel's)", len(totals))
	}
	t.Logf("the capture kernel has %d KiB of RAM, from crashkernel=%dM and crashkernel=%dM,cma", totals[1], stdMiB, cmaMiB)
	if totals[1] <= stdMiB<<10 {
		t.Errorf("the capture kernel has %d KiB of RAM, no more than the standard reservation (%d MiB): the CMA part was not given to it", totals[1], stdMiB)
	}
	file := extract(t, r, o.Path)
	checkDump(t, r, file, want{format: anydump.Kdump})
}

// kernelHas reports whether the kernel's build config (in its package,
// /boot/config-KVER or /usr/lib/modules/KVER/config) has the line opt.
func kernelHas(k harness.Kernel, opt string) bool {
	for _, p := range []string{"boot/config-" + k.KVer, "lib/modules/" + k.KVer + "/config", "usr/lib/modules/" + k.KVer + "/config"} {
		b, err := os.ReadFile(filepath.Join(k.Root, p))
		if err == nil {
			return slices.Contains(strings.Split(string(b), "\n"), opt)
		}
	}
	return false
}
