// Package guest holds what the QEMU crash tests and their first-stage init
// share: the parameters the harness writes into the stage-1 image, and the
// marker strings both sides agree on.
package guest

import (
	"fmt"
	"strings"
)

// ParamsPath is where the harness puts Params in the stage-1 image.
const ParamsPath = "/stage1.json"

// Params drive the first-stage init.
type Params struct {
	ID          string     // run id, part of every marker
	Kernel      string     // capture kernel in the stage-1 image ("" = none: QEMU dumps the guest)
	Initrd      string     // capture initramfs in the stage-1 image ("" = none)
	Append      string     // extra capture kernel arguments
	Cmdline     string     // full capture command line, replacing the derived one
	CaptureCPUs int        // nr_cpus= of the derived command line (0: 1), as gokdump load derives it from capture_cpus
	Syscall     string     // kexec.SyscallFile, kexec.SyscallClassic, or "" for the loader's choice
	AnonMiB     int        // random anonymous memory, one user marker per MiB
	ZeroMiB     int        // anonymous memory written with zeros
	CacheDevice string     // device to mount read-only for the page-cache workload
	CacheFSType string     // its filesystem type
	CacheFile   string     // file on it to read into the page cache
	Commands    [][]string // programs to run after loading, before the crash
	NoCrash     bool       // power off instead of crashing
	// Crash is how the first kernel dies: one of Crashes ("" is
	// CrashSysrq).
	Crash string
}

// How the stage-1 init crashes the first kernel. The host adds the
// command-line parameters each needs (CrashArgs); the LKDTM ones need
// CONFIG_LKDTM (built in, or the lkdtm module in the image) and debugfs.
const (
	CrashSysrq      = "sysrq"      // write c to /proc/sysrq-trigger: panic("sysrq triggered crash")
	CrashPanic      = "panic"      // PID 1 exits: panic("Attempted to kill init!")
	CrashOops       = "oops"       // LKDTM EXCEPTION: a NULL write in the kernel; panic_on_oops=1
	CrashBUG        = "bug"        // LKDTM BUG: BUG(); panic_on_oops=1
	CrashSoftlockup = "softlockup" // LKDTM SOFTLOCKUP: a CPU spins; softlockup_panic=1
)

// Crashes are the crash methods, the default first.
var Crashes = []string{CrashSysrq, CrashPanic, CrashOops, CrashBUG, CrashSoftlockup}

// LKDTMDirect is the LKDTM file a crash type is written to, under
// debugfs.
const LKDTMDirect = "/sys/kernel/debug/provoke-crash/DIRECT"

// LKDTMType is the LKDTM crash type of a method; "" for those that need
// no LKDTM.
func LKDTMType(crash string) string {
	switch crash {
	case CrashOops:
		return "EXCEPTION"
	case CrashBUG:
		return "BUG"
	case CrashSoftlockup:
		return "SOFTLOCKUP"
	}
	return ""
}

// CrashArgs are the first kernel's command-line parameters a crash
// method needs: an oops or BUG in process context only kills the task
// without panic_on_oops, and a soft lockup only warns without
// softlockup_panic (watchdog_thresh=5 has it found in 10 s, not 20).
func CrashArgs(crash string) string {
	switch crash {
	case CrashOops, CrashBUG:
		return "panic_on_oops=1"
	case CrashSoftlockup:
		return "softlockup_panic=1 watchdog_thresh=5"
	}
	return ""
}

// Marker returns GOKDUMP-<kind>-<id>-<n>. Kinds: USER (anonymous memory,
// one per MiB), CACHE (the page-cache file, one per MiB), KMSG (the kernel
// log line). Searching for MarkerPrefix finds every marker of a run.
func Marker(kind, id string, n int) string {
	return MarkerPrefix(kind, id) + fmt.Sprintf("%06d", n)
}

// MarkerPrefix is the part of a marker before its number. It is built at
// run time so the whole string never sits in a binary's text.
func MarkerPrefix(kind, id string) string {
	return strings.Join([]string{"GOKDUMP", kind, id, ""}, "-")
}
