package vmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Results of a run, and of each check.
const (
	Pass  = "pass"  // kdump works: every check passed
	Fail  = "fail"  // kdump failed: FailedPhase says where
	Error = "error" // the test could not run (setup): nothing is known of the kernel
	Skip  = "skip"  // a check that did not apply (drgn without --vmlinux)
)

// Phase names, in the order a run goes through them. A kdump failure is
// in one of config, boot, load, crash, capture-boot, save, checks.
const (
	PhaseConfig      = "config"       // the kernel's configuration is checked
	PhaseSetup       = "setup"        // images and disk made
	PhaseProbe       = "accel-probe"  // does KVM boot this kernel here?
	PhaseBoot        = "boot"         // QEMU start to the stage-1 init
	PhaseLoad        = "load"         // the capture kernel loaded by gokdump's loader
	PhaseCrash       = "crash"        // markers written, the first kernel crashed
	PhaseCaptureBoot = "capture-boot" // crash to gokdump's capture init
	PhaseSave        = "save"         // the capture saves the dump
	PhaseReboot      = "reboot"       // dump saved to QEMU's exit
	PhaseChecks      = "checks"       // the dump checked from the host
)

// Check names.
const (
	CheckKConfig   = "kernel-config"      // every option kdump needs is set
	CheckSaved     = "dump-saved"         // the capture saved a complete dump, 0600 in a 0700 directory
	CheckRelease   = "vmcoreinfo-release" // the dump's VMCOREINFO OSRELEASE is the kernel's release
	CheckKmsg      = "kmsg-marker"        // the run's /dev/kmsg marker is in the dump's kernel log
	CheckReason    = "crash-reason"       // the dump's kernel log says how the kernel died
	CheckUser      = "user-memory"        // user pages are dropped (or kept) as the dump level says
	CheckCache     = "page-cache"         // page-cache pages are dropped (or kept) as the dump level says
	CheckDmesgFile = "dmesg-file"         // vmcore-dmesg.txt is saved beside the dump, with the marker
	CheckDrgn      = "drgn"               // drgn opens the dump with --vmlinux and reads the log
)

// Check is the result of one check.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // Pass, Fail or Skip
	Detail string `json:"detail,omitempty"`
}

// Phase is how long a phase took.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// DumpInfo is what the capture saved.
type DumpInfo struct {
	Path   string `json:"path"`   // on the dump disk
	Bytes  int64  `json:"bytes"`  // its size
	Format string `json:"format"` // kdump or elf
	Level  int    `json:"dump_level"`
	// Pages the dump holds, and the highest page frame number of the
	// crashed machine.
	Pages  uint64 `json:"pages_kept"`
	MaxPFN uint64 `json:"max_pfn"`
	Panic  string `json:"panic,omitempty"` // the panic line of the crashed kernel
	// Kept is the dump's path on the host when --keep kept it.
	Kept string `json:"kept,omitempty"`
}

// Report is the result of a run. Result is Pass, Fail (FailedPhase and
// Error say where and why) or Error (the test could not run; Error says
// why).
type Report struct {
	Result      string `json:"result"`
	FailedPhase string `json:"failed_phase,omitempty"`
	Error       string `json:"error,omitempty"`

	Kernel      KernelInfo `json:"kernel"`
	Accel       string     `json:"accel,omitempty"` // tcg or kvm
	AccelReason string     `json:"accel_reason,omitempty"`
	Crash       string     `json:"crash"`
	DumpLevel   int        `json:"dump_level"`
	Disk        string     `json:"disk"`
	MemMiB      int        `json:"mem_mib"`
	CPUs        int        `json:"cpus"`
	CrashKernel string     `json:"crashkernel"`
	RunID       string     `json:"run_id,omitempty"` // in every marker of the run
	// Stage1Init and CaptureInit are the inits used, and where they came
	// from (installed, compiled from source, given).
	Stage1Init  string `json:"stage1_init,omitempty"`
	CaptureInit string `json:"capture_init,omitempty"`
	// Loader is the system call gokdump's loader used in the first
	// kernel: kexec_file_load where the kernel has it, else kexec_load
	// (Debian's arm64 kernels); CaptureCmdline the command line it gave
	// the capture kernel. Both "" when the load did not happen.
	Loader         string `json:"loader,omitempty"`
	CaptureCmdline string `json:"capture_cmdline,omitempty"`

	Config *ConfigReport `json:"config,omitempty"`
	Checks []Check       `json:"checks"`
	Phases []Phase       `json:"phases"`
	Dump   *DumpInfo     `json:"dump,omitempty"`
	// Rebooted is the panic of a first boot that died before the stage-1
	// init ran (TCG does so now and then), when the guest was booted again.
	Rebooted string `json:"rebooted,omitempty"`

	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	// Kept lists the files --keep wrote.
	Kept []string `json:"kept,omitempty"`
	// SerialTail is the end of the serial console when the run failed.
	SerialTail string `json:"serial_tail,omitempty"`
}

// Passed reports whether kdump worked.
func (r *Report) Passed() bool { return r.Result == Pass }

func (r *Report) check(name, status, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
}

// Check returns the check of that name, and whether there is one.
func (r *Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// WriteJSON writes the report as indented JSON (README, "gokdump vmtest").
func (r *Report) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

// WriteJSON writes the configuration check as indented JSON.
func (r *ConfigReport) WriteJSON(w io.Writer) error { return writeJSON(w, r) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteText writes the report for a reader.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Result == Error {
		if r.Kernel.Path != "" {
			fmt.Fprintf(&b, "kernel   %s\n", r.Kernel.Path)
		}
		fmt.Fprintf(&b, "ERROR: the test could not run: %s\n", r.Error)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "kernel   %s (%s, %s)\n", r.Kernel.Release, r.Kernel.Arch, r.Kernel.Path)
	if r.Accel != "" {
		fmt.Fprintf(&b, "accel    %s: %s\n", r.Accel, r.AccelReason)
	}
	fmt.Fprintf(&b, "run      --crash %s, dump level %d, %s disk, %d MiB, %d CPU, crashkernel=%s\n",
		r.Crash, r.DumpLevel, r.Disk, r.MemMiB, r.CPUs, r.CrashKernel)
	if r.Config != nil {
		src := r.Config.Source
		if r.Config.OK() {
			fmt.Fprintf(&b, "config   %s: every option kdump needs is set", src)
			if len(r.Config.Warnings) > 0 {
				fmt.Fprintf(&b, " (warnings: %s)", strings.Join(r.Config.Warnings, ", "))
			}
			b.WriteString("\n")
		} else {
			fmt.Fprintf(&b, "config   %s: missing %s\n", src, strings.Join(r.Config.Missing, ", "))
		}
	}
	if r.Loader != "" {
		fmt.Fprintf(&b, "loaded   with %s: %s\n", r.Loader, r.CaptureCmdline)
	}
	if r.Rebooted != "" {
		fmt.Fprintf(&b, "note     the first boot died before the stage-1 init (%s); booted again\n", r.Rebooted)
	}
	if len(r.Phases) > 0 {
		b.WriteString("phases  ")
		for _, p := range r.Phases {
			fmt.Fprintf(&b, " %s %.1fs", p.Name, p.Seconds)
		}
		b.WriteString("\n")
	}
	if d := r.Dump; d != nil {
		fmt.Fprintf(&b, "dump     %s: %d bytes, %s, level %d, %d pages kept of %d\n", d.Path, d.Bytes, d.Format, d.Level, d.Pages, d.MaxPFN+1)
	}
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-4s %-20s %s\n", strings.ToUpper(c.Status), c.Name, c.Detail)
	}
	for _, k := range r.Kept {
		fmt.Fprintf(&b, "kept     %s\n", k)
	}
	switch r.Result {
	case Pass:
		fmt.Fprintf(&b, "PASS: kdump works on %s (%.0fs)\n", r.Kernel.Release, r.Seconds)
	default:
		if r.SerialTail != "" {
			fmt.Fprintf(&b, "--- serial console (end) ---\n%s\n", r.SerialTail)
		}
		fmt.Fprintf(&b, "FAIL: kdump failed in phase %s: %s\n", r.FailedPhase, r.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
