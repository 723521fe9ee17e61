package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// input is one vmcore the tools are run on.
type input struct {
	Name string // as the table shows it
	Path string
	// RAMMiB is the memory the vmcore holds, holes excluded.
	RAMMiB uint64
	// MaxRuns caps the runs on this input (0: no cap): makedumpfile
	// takes minutes on the sparse one at -d 1.
	MaxRuns int
	// Only31 runs only -d 31: at -d 1 the tools would read terabytes of
	// zeros.
	Only31 bool
}

// sparseExtraGiB is the free, zero RAM the sparse input adds to the 1 GiB
// dump.
const sparseExtraGiB = 16

// ensureInputs finds the benchmark vmcores in .cache/vmcores, making the
// missing ones: a QEMU crash cycle for the 1 and 2 GiB dumps (6.1 kernel:
// Debian's makedumpfile filters its pages right; on 6.12 it misses the
// compound order of huge pages and keeps user data at -d 31), and
// the sparse one from the 1 GiB dump.
func ensureInputs(root string, only []string) ([]input, error) {
	want := map[string]bool{}
	for _, o := range only {
		want[strings.TrimSpace(o)] = true
	}
	dir := filepath.Join(root, ".cache", "vmcores")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	k, err := harness.GetKernel(root, "6.1", false)
	if err != nil {
		return nil, err
	}
	guest := func(mem int) (string, error) {
		p := filepath.Join(dir, fmt.Sprintf("%s-nvme-%dM.elf", k.KVer, mem))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		fmt.Printf("==> %s missing: crashing a %d MiB guest for an unfiltered ELF dump\n", filepath.Base(p), mem)
		return p, crashForELF(root, mem, p)
	}
	var ins []input
	add := func(name, path string) error {
		f, err := vmcore.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var ram uint64
		for _, r := range f.PhysRanges() {
			ram += r.End - r.Start
		}
		ins = append(ins, input{Name: name, Path: path, RAMMiB: ram >> 20})
		return nil
	}
	if want["1G"] || want["sparse"] {
		p, err := guest(1024)
		if err != nil {
			return nil, err
		}
		if want["1G"] {
			if err := add("1 GiB guest", p); err != nil {
				return nil, err
			}
		}
		if want["2G"] {
			p2, err := guest(2048)
			if err != nil {
				return nil, err
			}
			if err := add("2 GiB guest", p2); err != nil {
				return nil, err
			}
		}
		if want["sparse"] {
			// Not in .cache/vmcores: tests take every vmcore there for a
			// real one.
			sp := filepath.Join(root, ".cache", "bench",
				strings.TrimSuffix(filepath.Base(p), ".elf")+fmt.Sprintf("+%dG-free.2.elf", sparseExtraGiB))
			if err := os.MkdirAll(filepath.Dir(sp), 0o700); err != nil {
				return nil, err
			}
			if _, err := os.Stat(sp); err != nil {
				fmt.Printf("==> %s missing: adding %d GiB of free RAM to %s\n", filepath.Base(sp), sparseExtraGiB, filepath.Base(p))
				if err := makeSparse(p, sp, sparseExtraGiB<<30); err != nil {
					return nil, err
				}
			}
			if err := add(fmt.Sprintf("1 GiB + %d GiB free (sparse)", sparseExtraGiB), sp); err != nil {
				return nil, err
			}
			ins[len(ins)-1].MaxRuns = 3
		}
	} else if want["2G"] {
		p2, err := guest(2048)
		if err != nil {
			return nil, err
		}
		if err := add("2 GiB guest", p2); err != nil {
			return nil, err
		}
	}
	for _, tb := range []struct {
		key  string
		tib  uint64
		name string
	}{{"1T", 1, "1 TiB, all free but 1 GiB (sparse)"}, {"4T", 4, "4 TiB, all free but 1 GiB (sparse)"}} {
		if !want[tb.key] {
			continue
		}
		p, err := guest(1024)
		if err != nil {
			return nil, err
		}
		// The new RAM runs from 4 GiB to the terabyte: past the first
		// root of mem_section, it must end at a root's boundary.
		extra := tb.tib<<40 - 4<<30
		sp := filepath.Join(root, ".cache", "bench",
			strings.TrimSuffix(filepath.Base(p), ".elf")+fmt.Sprintf("+to-%dT-free.elf", tb.tib))
		if err := os.MkdirAll(filepath.Dir(sp), 0o700); err != nil {
			return nil, err
		}
		if _, err := os.Stat(sp); err != nil {
			fmt.Printf("==> %s missing: adding RAM up to %d TiB to %s\n", filepath.Base(sp), tb.tib, filepath.Base(p))
			if err := makeSparse(p, sp, extra); err != nil {
				return nil, err
			}
		}
		if err := add(tb.name, sp); err != nil {
			return nil, err
		}
		ins[len(ins)-1].MaxRuns = 3
		ins[len(ins)-1].Only31 = true
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("no inputs among %q (want 1G, 2G, sparse, 1T, 4T)", only)
	}
	return ins, nil
}

// crashForELF crashes a guest of mem MiB whose capture kernel writes an
// unfiltered ELF dump, and moves the dump to dst.
func crashForELF(root string, mem int, dst string) error {
	tmp, err := os.MkdirTemp(filepath.Join(root, ".cache"), "bench-qemu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r, err := harness.Crash(root, harness.Spec{Line: "6.1", MemMiB: mem, Dir: tmp,
		CaptureAppend: "gokdump.format=elf gokdump.dump_level=0", Timeout: 600 * time.Second})
	if err != nil {
		return err
	}
	p, err := r.SavedPath()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, r.Tail(40))
	}
	if err := r.Extract(p, dst+".tmp"); err != nil {
		return err
	}
	if err := os.Chmod(dst+".tmp", 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(dst+".id", []byte(r.ID+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

// qemuCycle is the timing of one crash cycle.
type qemuCycle struct {
	PanicToExit time.Duration
	Elapsed     time.Duration
	Summary     string // the capture's own summary line
	Phases      string
	Console     []string // the capture init's log lines
	Of          int      // the median of this many cycles
}

func (c *qemuCycle) String() string {
	var b strings.Builder
	b.WriteString(c.Phases)
	for _, l := range c.Console {
		fmt.Fprintf(&b, "  | %s\n", l)
	}
	return b.String()
}

var summaryRE = regexp.MustCompile(`gokdump: \[\s*[0-9.]+\] (level \d+, .*MiB/s.*)`)

// timeCycle runs one crash cycle with the default capture settings.
func timeCycle(root string) (*qemuCycle, error) {
	tmp, err := os.MkdirTemp(filepath.Join(root, ".cache"), "bench-qemu-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	r, err := harness.Crash(root, harness.Spec{Line: "6.1", Dir: tmp})
	if err != nil {
		return nil, err
	}
	if _, err := r.SavedPath(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, r.Tail(40))
	}
	c := &qemuCycle{Elapsed: r.Elapsed, Phases: r.PhaseReport()}
	for _, p := range r.Phases() {
		if p.Name == "crash" {
			c.PanicToExit = r.Elapsed - p.At
		}
	}
	if _, m, ok := r.Find(summaryRE); ok {
		c.Summary = m[1]
	}
	for _, l := range r.Log {
		if strings.HasPrefix(l.Text, "gokdump: [") {
			c.Console = append(c.Console, fmt.Sprintf("%7.2fs %s", l.At.Seconds(), l.Text))
		}
	}
	if c.PanicToExit == 0 || c.Summary == "" {
		return nil, fmt.Errorf("no crash or capture summary on the console:\n%s", r.Tail(40))
	}
	return c, nil
}

// warm reads path once so that the runs find it in the page cache. Holes
// of a sparse file are skipped: reading them costs no I/O anyway.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, e := range dataExtents(f) {
		if _, err := io.Copy(io.Discard, io.NewSectionReader(f, e[0], e[1]-e[0])); err != nil {
			return fmt.Errorf("warm %s: %w", path, err)
		}
	}
	return nil
}
