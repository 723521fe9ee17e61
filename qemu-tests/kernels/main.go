// Command kernels fetches what the QEMU tests' kernel matrix needs before
// they run, so that a download problem shows as such and not as a test
// failure: each line's Debian kernel with its debug vmlinux
// (scripts/fetch-kernel, as harness.Matrix says for the line, or the lines
// of $GOKDUMP_LINES), the arm64 kernels of fixture.ARM64Lines (for
// qemu-tests/qmpdump), and the sid tree of newer readers (scripts/sid-root).
// It prints one line per kernel. .ci/run and `make kernels` run it.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

func main() {
	root, err := harness.RepoRoot()
	if err != nil {
		fail(err)
	}
	for _, l := range harness.Lines() {
		t := time.Now()
		k, err := harness.GetKernel(root, l.Name, true)
		if err != nil {
			fail(err)
		}
		dbg := "debug vmlinux"
		if k.VMLinux == "" {
			dbg = "no -dbg package"
		}
		unverified := ""
		if k.Unverified != "" {
			unverified = "; unverified (from the pool): " + k.Unverified
		}
		fmt.Printf("%-7s %s %s (%s), %s, %.0fs%s\n", l.Name, k.KVer, k.Version, k.Suite, dbg, time.Since(t).Seconds(), unverified)
	}
	// The arm64 kernels of which qemu-tests/qmpdump makes the arm64 dumps
	// the unit tests read.
	for _, l := range fixture.ARM64Lines {
		t := time.Now()
		args := []string{l, "--arch", "arm64", "--dbg-optional"}
		cmd := exec.Command(filepath.Join(root, "scripts", "fetch-kernel"), args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			fail(fmt.Errorf("fetch-kernel %s: %w", strings.Join(args, " "), err))
		}
		kv := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				kv[k] = v
			}
		}
		dbg := "debug vmlinux"
		if kv["VMLINUX"] == "" {
			dbg = "no -dbg package"
		}
		fmt.Printf("%-7s %s (arm64), %s, %.0fs\n", l, kv["KVER"], dbg, time.Since(t).Seconds())
	}
	t := time.Now()
	v, err := harness.ReaderVersions(root)
	if err != nil {
		fail(err)
	}
	fmt.Printf("readers: %s, %s, %s, %s, %s, %s (%.0fs)\n",
		matrix.Header(matrix.DrgnOld, v[matrix.DrgnOld]), matrix.Header(matrix.MDFOld, v[matrix.MDFOld]),
		matrix.Header(matrix.CrashOld, v[matrix.CrashOld]), matrix.Header(matrix.DrgnNew, v[matrix.DrgnNew]),
		matrix.Header(matrix.MDFNew, v[matrix.MDFNew]), matrix.Header(matrix.CrashNew, v[matrix.CrashNew]), time.Since(t).Seconds())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kernels:", err)
	os.Exit(1)
}
