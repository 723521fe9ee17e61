package qemutests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

var repoRoot = func() string {
	r, err := harness.RepoRoot()
	if err != nil {
		panic(err)
	}
	return r
}()

// crash runs one crash cycle for a test, skipping under -short.
func crash(t *testing.T, spec harness.Spec) *harness.Run {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	spec.Dir = t.TempDir()
	r, err := harness.Crash(repoRoot, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rebooted != "" {
		t.Logf("the first kernel died before the stage-1 init (%s); booted again", r.Rebooted)
	}
	return r
}

// failf reports a failed run with the tail of the serial log.
func failf(t *testing.T, r *harness.Run, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s\nQEMU: %v after %v\n--- serial log (tail) ---\n%s",
		fmt.Sprintf(format, args...), r.Err, r.Elapsed, r.Tail(60))
}

// savedPath returns the dump the capture reported, or fails with the log.
func savedPath(t *testing.T, r *harness.Run) string {
	t.Helper()
	p, err := r.SavedPath()
	if err != nil {
		failf(t, r, "%v", err)
	}
	return p
}

// extract copies a file out of the run's disk image.
func extract(t *testing.T, r *harness.Run, path string) string {
	t.Helper()
	dst := filepath.Join(r.Spec.Dir, filepath.Base(filepath.Dir(path))+"-"+filepath.Base(path))
	if err := r.Extract(path, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func ls(t *testing.T, r *harness.Run, dir string) map[string]uint32 {
	t.Helper()
	m, err := r.Ls(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// keep moves a dump into $GOKDUMP_KEEP_VMCORES, when set, as
// <kver>-<disk>-<mem>M.<kind>, with the run id beside it, for benchmarks
// and for developing readers against real dumps; an ELF one is recorded in
// the directory's index, where the unit tests find it (fixture.RealDumps).
func keep(t *testing.T, r *harness.Run, file, kind string) {
	t.Helper()
	dir := os.Getenv("GOKDUMP_KEEP_VMCORES")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s-%s-%dM.%s", r.Kernel.KVer, r.Spec.Disk, r.Spec.MemMiB, kind))
	if err := os.Rename(file, dst); err != nil {
		t.Fatalf("keep %s: %v", dst, err)
	}
	// A dump holds the guest's secrets, as any would.
	if err := os.Chmod(dst, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".id", []byte(r.ID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if kind == "elf" {
		// The debug vmlinux, when fetched, is found in the cache by KVER.
		e := fixture.IndexEntry{File: filepath.Base(dst), KVer: r.Kernel.KVer, Line: r.Kernel.Line,
			Disk: r.Spec.Disk, MemMiB: r.Spec.MemMiB, ID: r.ID}
		if r.Kernel.Name != r.Kernel.Line {
			e.Matrix = r.Kernel.Name
		}
		if err := fixture.AddToIndex(dir, e); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("kept %s", dst)
}

// record adds a record to the kernel table's results file.
func record(t *testing.T, rec matrix.Record) {
	t.Helper()
	if err := matrix.Append(rec); err != nil {
		t.Error(err)
	}
}
