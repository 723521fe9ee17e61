// Command demo crashes a QEMU guest end to end and shows what gokdump
// saved: `make demo` runs it. It fetches a Debian cloud kernel, builds the
// capture initramfs with gokdump's builder, boots the guest under TCG, lets
// it load the capture kernel and panic, and copies the dump out of the
// guest's disk into out/demo/.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/harness"
)

func main() {
	line := flag.String("kernel", "6.12", "Debian kernel line to crash: 6.1, 6.12, 6.19, latest (the newest Debian serves) or another line")
	disk := flag.String("disk", "nvme", "dump target disk: nvme or virtio")
	mem := flag.Int("mem", 1024, "guest memory in MiB")
	flag.Parse()
	if err := run(*line, *disk, *mem); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(line, disk string, mem int) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	out := filepath.Join(root, "out", "demo", time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

	t0 := time.Now()
	step("fetching the current Debian %s cloud kernel (cached in .cache/kernels)", line)
	k, err := harness.GetKernel(root, line, false)
	if err != nil {
		return err
	}
	if k.Unverified != "" {
		step("%s %s from %s; unverified (taken from the archive's pool, not a signed index): %s", k.KVer, k.Version, k.Suite, k.Unverified)
	} else {
		step("%s %s from %s", k.KVer, k.Version, k.Suite)
	}
	fetch := time.Since(t0)
	t1 := time.Now()
	step("building the capture init and the first-stage init")
	if _, _, err := harness.Binaries(root); err != nil {
		return err
	}
	build := time.Since(t1)

	step("crashing %s in QEMU (TCG, %d MiB, %s disk); serial log: %s", k.KVer, mem, disk, filepath.Join(out, "serial.log"))
	t2 := time.Now()
	r, err := harness.Crash(root, harness.Spec{Line: line, Disk: disk, MemMiB: mem, Dir: out})
	if err != nil {
		return err
	}
	cycle := time.Since(t2)
	p, err := r.SavedPath()
	if err != nil {
		fmt.Println(r.Tail(40))
		return err
	}
	local := filepath.Join(out, "vmcore")
	if err := r.Extract(p, local); err != nil {
		return err
	}
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	fmt.Printf("\nThe capture kernel saved %s on the guest's dump disk (%s).\n", p, r.Disk)
	fmt.Printf("Copied out to %s: %.1f MiB.\n\n", local, float64(st.Size())/(1<<20))
	fmt.Printf("Phases of the crash cycle (QEMU clock):\n%s\n", r.PhaseReport())
	fmt.Printf("Host: kernel fetch %.1fs, build %.1fs, QEMU cycle incl. images %.1fs.\n",
		fetch.Seconds(), build.Seconds(), cycle.Seconds())
	fmt.Printf("\nLook inside: bin/gokdump info %s\n", local)
	return nil
}
