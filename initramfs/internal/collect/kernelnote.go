package collect

import (
	"bytes"
	"fmt"
	"strconv"
)

// KernelNote says what the capture kernel has to work with: its CPUs
// (the save runs one worker on each: pipeline.Options.Workers 0 is
// GOMAXPROCS, which follows them) and its memory, from meminfo (the
// contents of /proc/meminfo). It is the line an operator reads to see
// that capture_cpus took effect and how much room the capture had.
func KernelNote(meminfo []byte, cpus int) string {
	s := fmt.Sprintf("capture kernel: %d CPU", cpus)
	if cpus != 1 {
		s += "s"
	}
	total, okT := meminfoKiB(meminfo, "MemTotal")
	avail, okA := meminfoKiB(meminfo, "MemAvailable")
	if okT {
		s += fmt.Sprintf(", %.1f MiB of memory", float64(total)/1024)
	}
	if okA {
		s += fmt.Sprintf(", %.1f MiB available", float64(avail)/1024)
	}
	return s
}

// MemoryNote says how much of the capture kernel's memory is available
// now, from meminfo: logged when the capture is done, it tells how close
// the crashkernel= reservation came to being too small.
func MemoryNote(meminfo []byte) string {
	total, okT := meminfoKiB(meminfo, "MemTotal")
	avail, okA := meminfoKiB(meminfo, "MemAvailable")
	if !okT || !okA {
		return "memory left: unknown (no MemTotal or MemAvailable in /proc/meminfo)"
	}
	s := fmt.Sprintf("memory left: %.1f MiB available of %.1f MiB", float64(avail)/1024, float64(total)/1024)
	// What grows with capture_cpus, in the kernel: its per-CPU areas and
	// the stacks of its per-CPU threads.
	pcpu, okP := meminfoKiB(meminfo, "Percpu")
	stacks, okS := meminfoKiB(meminfo, "KernelStack")
	if okP && okS {
		s += fmt.Sprintf(" (per-CPU areas %.1f MiB, kernel stacks %.1f MiB)", float64(pcpu)/1024, float64(stacks)/1024)
	}
	return s
}

// meminfoKiB reads a "Key:  N kB" line of /proc/meminfo.
func meminfoKiB(meminfo []byte, key string) (uint64, bool) {
	for line := range bytes.Lines(meminfo) {
		k, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(k) != key {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		return n, err == nil
	}
	return 0, false
}
