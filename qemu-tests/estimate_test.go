package qemutests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestEstimate checks that the crashkernel= size `gokdump estimate`
// recommends for a guest is enough: the capture at exactly that size
// succeeds: on Debian 12's two x86_64 lines, and on its arm64 6.12 under
// TCG, loaded with kexec_load as TestCrashARM64 does (one cycle, 25-45 s).
// With GOKDUMP_CALIBRATE=1 it also searches, in
// 4 MiB steps down, for the smallest size that works, to calibrate the
// estimate's terms (not run in CI); GOKDUMP_CALIBRATE_MEM=2048 sets the
// guest's memory in MiB for that, GOKDUMP_CALIBRATE_FROM=76 the first size
// tried (MiB).
func TestEstimate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec harness.Spec
	}{
		{"6.1", harness.Spec{Arch: "amd64", Line: "6.1"}},
		{"6.12", harness.Spec{Arch: "amd64", Line: "6.12"}},
		{"arm64", harness.Spec{Arch: "arm64", Line: "6.12", CaptureSyscall: kexec.SyscallClassic, Timeout: 6 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() {
				t.Skip("QEMU crash tests are skipped with -short")
			}
			spec := tc.spec
			spec.MemMiB = 1024
			calibrate := os.Getenv("GOKDUMP_CALIBRATE") != ""
			if m, err := strconv.Atoi(os.Getenv("GOKDUMP_CALIBRATE_MEM")); calibrate && err == nil && m > 0 {
				spec.MemMiB = m
			}
			k, err := harness.GetKernelArch(repoRoot, spec.Line, spec.Arch, false)
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "capture.img")
			if err := harness.BuildCaptureImage(repoRoot, spec, img); err != nil {
				t.Fatal(err)
			}
			// The kernel file decides the formula, as gokdump estimate
			// run on any machine does.
			p, err := kexec.NewPlanAnyArch(k.VMLinuz, img, "/nonexistent")
			if err != nil {
				t.Fatal(err)
			}
			if kexec.GOARCHOf(p.Arch) != spec.Arch {
				t.Fatalf("%s read as a %q kernel, want one for %s", k.VMLinuz, p.Arch, spec.Arch)
			}
			unpacked, err := builder.UnpackedSize(img)
			if err != nil {
				t.Fatal(err)
			}
			e := kexec.EstimateCrashkernel(p, uint64(spec.MemMiB)<<20, uint64(unpacked), 1)
			t.Logf("%s, %d MiB guest: estimate\n%s", k.KVer, spec.MemMiB, e.Formula())

			spec.CrashKernel, spec.CaptureImage = e.Value(), img
			r := crash(t, spec)
			savedPath(t, r)
			t.Logf("%s: %s; cycle %.0fs", e.Value(), captureMemory(r), r.Elapsed.Seconds())

			if !calibrate {
				return
			}
			var res []string
			from := int(e.Total>>20) - 4
			if m, err := strconv.Atoi(os.Getenv("GOKDUMP_CALIBRATE_FROM")); err == nil && m > 0 {
				from = m
			}
			for mib := from; mib >= 56; mib -= 4 {
				spec.CrashKernel = fmt.Sprintf("%dM", mib)
				r := crash(t, spec)
				_, err := r.SavedPath()
				res = append(res, fmt.Sprintf("%dM: %v", mib, err == nil))
				if err != nil {
					t.Logf("%dM fails:\n%s", mib, r.Tail(60))
					break
				}
				t.Logf("%dM: %s", mib, captureMemory(r))
			}
			t.Logf("%s, %d MiB guest: %s", k.KVer, spec.MemMiB, strings.Join(res, ", "))
		})
	}
}

// captureMemory is what the capture init logged of its memory: at its
// start and once the dump is saved.
func captureMemory(r *harness.Run) string {
	var s []string
	for _, re := range []*regexp.Regexp{regexp.MustCompile(`capture kernel: .*`), regexp.MustCompile(`memory left: .*`)} {
		if _, m, ok := r.Find(re); ok {
			s = append(s, m[0])
		}
	}
	return strings.Join(s, "; ")
}
