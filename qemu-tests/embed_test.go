package qemutests

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// embedCrashKernel is the reservation the dedicated kernel runs in, far
// below the 128M the distribution kernel and its separate initramfs get
// (see the README for the measured minimums).
const embedCrashKernel = "48M"

// TestEmbeddedCaptureKernel boots Debian's kernel as the first kernel and
// loads, as the capture kernel, a small kernel built from linux-source
// with configs/capture-kernel.config (and configs/kdump.config, which make
// test-kernel's gokdump vmtest run needs of the same build) and the
// capture initramfs built in: one file, no initrd. The dump must be saved and open in drgn (with the
// crashed Debian kernel's vmlinux).
//
// Building that kernel the first time takes about half an hour here, so
// the test runs only when an earlier build is cached (embedding a new
// initramfs then only relinks) or GOKDUMP_TEST_KERNEL=1 asks for the
// build: `make test-kernel` does that.
func TestEmbeddedCaptureKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	if os.Getenv("GOKDUMP_TEST_KERNEL") == "" && !harness.CaptureKernelCached(repoRoot) {
		t.Skip("no dedicated capture kernel built yet: run make test-kernel (or set GOKDUMP_TEST_KERNEL=1)")
	}
	_, captureInit, err := harness.Binaries(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// What `gokdump build --format cpio --drivers none` writes: no
	// modules, every driver is built into the kernel.
	cpio := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(cpio)
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(context.Background(), f, builder.Options{
		Init:     captureInit,
		Config:   []byte("target = \"LABEL=GOKDUMP\"\n"),
		Compress: builder.CompressNone,
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	k, err := harness.BuildCaptureKernel(repoRoot, cpio, filepath.Join(dir, "bzImage"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("capture kernel %s: %d bytes with a %d-byte initramfs embedded (make took %ds)", k.Version, fi.Size(), res.CPIOSize, k.Seconds)

	r := crash(t, harness.Spec{
		Line:            "6.1",
		Dbg:             true,
		CrashKernel:     embedCrashKernel,
		CaptureKernel:   k.Path,
		NoCaptureInitrd: true,
	})
	// The capture boot is the dedicated kernel, with no initrd.
	if _, _, ok := r.Find(regexp.MustCompile(`Linux version ` + regexp.QuoteMeta(k.Version) + ` \(gokdump@gokdump\)`)); !ok {
		failf(t, r, "the capture kernel %s did not boot", k.Version)
	}
	p := savedPath(t, r)
	t.Logf("phases:\n%s", r.PhaseReport())
	out := extract(t, r, p)
	checkDump(t, r, out, want{format: anydump.Kdump})
}
