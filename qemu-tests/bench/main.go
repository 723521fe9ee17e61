// Command bench compares gokdump's save with Debian's makedumpfile, and
// with an upstream makedumpfile when MAKEDUMPFILE names one, on real
// vmcores and writes the tables into BENCHMARKS.md: `make bench` runs it.
//
// Inputs, made when missing and kept in .cache/vmcores: ELF vmcores of a
// 1 GiB and a 2 GiB QEMU guest (the capture kernel writes them unfiltered,
// as the QEMU tests keep theirs with GOKDUMP_KEEP_VMCORES), and sparse
// synthetic ones in .cache/bench: the 1 GiB dump with 16 GiB of free, zero
// RAM added above 4 GiB, and with RAM up to 1 TiB and 4 TiB (see
// sparse.go). Each tool runs on each input at -d 31 and -d 1 (the
// terabyte inputs -d 31 only), input hot in the page cache, several times
// in turn; the tables show medians.
// One default QEMU crash cycle is timed as well (panic → QEMU exit, and
// the capture's own rate as its console reports it).
package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/harness"
)

func main() {
	runs := flag.Int("runs", 5, "runs of each tool on each input and level (the table shows medians)")
	qemu := flag.Bool("qemu", true, "time a default 1 GiB crash cycle in QEMU")
	cycles := flag.Int("cycles", 1, "QEMU crash cycles to time (the report shows the median)")
	update := flag.Bool("update", true, "write the table into BENCHMARKS.md")
	only := flag.String("inputs", "1G,2G,sparse,1T,4T", "inputs to run, comma-separated: 1G, 2G, sparse, 1T, 4T; none: only the QEMU cycle")
	flag.Parse()
	if !*qemu {
		*cycles = 0
	}
	if err := run(*runs, *cycles, *update, strings.Split(*only, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(runs, cycles int, update bool, only []string) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	if runs < 1 {
		return fmt.Errorf("-runs %d: need at least one", runs)
	}
	gokdump := filepath.Join(root, "bin", "gokdump")
	if _, err := os.Stat(gokdump); err != nil {
		return fmt.Errorf("%s missing: run make build (make bench does)", gokdump)
	}
	if _, err := exec.LookPath("makedumpfile"); err != nil {
		fmt.Println("==> makedumpfile missing: running scripts/install-deps")
		cmd := exec.Command(filepath.Join(root, "scripts", "install-deps"))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("install-deps: %w", err)
		}
	}
	if _, err := os.Stat(timeBin); err != nil {
		fmt.Printf("==> %s missing: installing Debian's time package\n", timeBin)
		if err := aptInstall("time"); err != nil {
			return err
		}
	}
	upstream := os.Getenv("MAKEDUMPFILE")
	if upstream != "" {
		if _, err := exec.LookPath(upstream); err != nil {
			return fmt.Errorf("MAKEDUMPFILE=%s: %w", upstream, err)
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("taskset (util-linux) runs the one-CPU rows: %w", err)
	}
	m := describeMachine(upstream)
	fmt.Printf("==> %s\n", m)

	var inputs []input
	if len(only) != 1 || only[0] != "none" {
		if inputs, err = ensureInputs(root, only); err != nil {
			return err
		}
	}
	var cycle *qemuCycle
	var all []*qemuCycle
	for i := 0; i < cycles; i++ {
		fmt.Printf("==> timing a default crash cycle (6.1, 1 GiB, level 31, zstd) in QEMU, %d of %d\n", i+1, cycles)
		c, err := timeCycle(root)
		if err != nil {
			return err
		}
		fmt.Print(c.String())
		all = append(all, c)
	}
	if len(all) > 0 {
		slices.SortFunc(all, func(a, b *qemuCycle) int { return cmp.Compare(a.PanicToExit, b.PanicToExit) })
		cycle = all[len(all)/2]
		cycle.Of = len(all)
	}

	work := filepath.Join(root, ".cache", "bench")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	rep := &report{Machine: m, Runs: runs, Cycle: cycle, LoadBefore: loadAvg()}
	for _, in := range inputs {
		fmt.Printf("==> %s (%s)\n", in.Name, filepath.Base(in.Path))
		if err := warm(in.Path); err != nil {
			return err
		}
		levels := []int{31, 1}
		if in.Only31 {
			levels = levels[:1]
		}
		for _, level := range levels {
			n := runs
			if in.MaxRuns > 0 {
				n = min(n, in.MaxRuns)
			}
			rows, err := measure(tools(gokdump, upstream), in, level, n, work)
			if err != nil {
				return err
			}
			rep.Rows = append(rep.Rows, rows...)
		}
	}
	rep.LoadAfter = loadAvg()
	rep.When = time.Now().UTC()
	table := rep.Markdown()
	fmt.Println()
	fmt.Print(table)
	if update {
		path := filepath.Join(root, "BENCHMARKS.md")
		if err := updateFile(path, table); err != nil {
			return err
		}
		fmt.Printf("\n==> wrote the table into %s\n", path)
	}
	return nil
}

// aptInstall installs Debian packages, with sudo unless root.
func aptInstall(pkgs ...string) error {
	args := append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends"}, pkgs...)
	if os.Geteuid() != 0 {
		args = append([]string{"sudo"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return nil
}
