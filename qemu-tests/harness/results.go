package harness

import (
	"regexp"
	"strconv"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

var anonHugeRE = regexp.MustCompile(`stage1: .*meminfo AnonHugePages: (\d+) kB`)

// AnonHugeKB returns the guest's AnonHugePages before the crash, as the
// stage-1 init logged it; -1 when it did not.
func (r *Run) AnonHugeKB() int {
	if _, m, ok := r.Find(anonHugeRE); ok {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return -1
}

// BootToDump is the time from QEMU's start to the capture's "gokdump:
// saved" line, 0 when there is none.
func (r *Run) BootToDump() time.Duration {
	if l, _, ok := r.Find(savedRE); ok {
		return l.At
	}
	return 0
}

// Record returns the kernel table's record of the run for test, with
// what the run itself tells; the test adds what it measured.
func (r *Run) Record(test string) matrix.Record {
	rec := r.Kernel.Record(test)
	rec.BootToDump = r.BootToDump().Seconds()
	return rec
}

// Record returns the kernel table's record of the kernel for test.
func (k Kernel) Record(test string) matrix.Record {
	rec := matrix.Record{Test: test, Line: k.Name, KVer: k.KVer, Version: k.Version, Suite: k.Suite,
		Unverified: k.Unverified != ""}
	if k.VMLinux != "" {
		has := true
		rec.VMLinux = &has
	}
	return rec
}
