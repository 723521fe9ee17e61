package qemutests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestEstimate checks that the crashkernel= size `gokdump estimate`
// recommends for a guest is enough: the capture at exactly that size
// succeeds. With GOKDUMP_CALIBRATE=1 it also searches for the smallest size
// that works, to calibrate the estimate's terms (not run in CI).
func TestEstimate(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"6.1", "6.12"} {
		t.Run(line, func(t *testing.T) {
			t.Parallel()
			if testing.Short() {
				t.Skip("QEMU crash tests are skipped with -short")
			}
			k, err := harness.GetKernel(repoRoot, line, false)
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "capture.img")
			spec := harness.Spec{Line: line, MemMiB: 1024}
			if err := harness.BuildCaptureImage(repoRoot, spec, img); err != nil {
				t.Fatal(err)
			}
			p, err := kexec.NewPlan(k.VMLinuz, img, "", "/nonexistent")
			if err != nil {
				t.Fatal(err)
			}
			unpacked, err := builder.UnpackedSize(img)
			if err != nil {
				t.Fatal(err)
			}
			e := kexec.EstimateCrashkernel(p, uint64(spec.MemMiB)<<20, uint64(unpacked), 1)
			t.Logf("%s: estimate\n%s", k.KVer, e.Formula())

			spec.CrashKernel, spec.CaptureImage = e.Value(), img
			r := crash(t, spec)
			savedPath(t, r)

			if os.Getenv("GOKDUMP_CALIBRATE") == "" {
				return
			}
			var res []string
			for mib := int(e.Total>>20) - 4; mib >= 56; mib -= 4 {
				spec.CrashKernel = fmt.Sprintf("%dM", mib)
				r := crash(t, spec)
				_, err := r.SavedPath()
				res = append(res, fmt.Sprintf("%dM: %v", mib, err == nil))
				if err != nil {
					t.Logf("%dM fails:\n%s", mib, r.Tail(15))
					break
				}
			}
			t.Logf("%s: %s", k.KVer, strings.Join(res, ", "))
		})
	}
}
