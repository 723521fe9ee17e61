package vmtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gokdump/gokdump/qemu-tests/guest"
)

// KConfig is a kernel's build configuration (.config): option name
// (CONFIG_…) to value, "y", "m", a number or a quoted string. An option
// that is "not set" is absent.
type KConfig map[string]string

// maxKConfig bounds a configuration read: Debian's are about 300 KiB.
const maxKConfig = 16 << 20

// ErrNotKConfig means a file does not read as a kernel configuration.
var ErrNotKConfig = errors.New("not a kernel configuration")

// ParseKConfig reads a .config: CONFIG_NAME=value lines, comments and
// "# CONFIG_NAME is not set" lines (which leave the option out).
func ParseKConfig(r io.Reader) (KConfig, error) {
	c := KConfig{}
	sc := bufio.NewScanner(io.LimitReader(r, maxKConfig))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := false
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			seen = seen || strings.HasSuffix(l, " is not set")
			continue
		}
		name, val, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(name, "CONFIG_") {
			return nil, fmt.Errorf("line %d: %w: %q", n, ErrNotKConfig, truncate(l, 60))
		}
		c[name] = val
		seen = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !seen {
		return nil, fmt.Errorf("%w: no CONFIG_ options", ErrNotKConfig)
	}
	return c, nil
}

// ReadKConfig reads the configuration at path.
func ReadKConfig(path string) (KConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ParseKConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Builtin reports whether an option is y.
func (c KConfig) Builtin(name string) bool { return c[name] == "y" }

// Arch returns the GOARCH the configuration is for, "" when it names
// none this knows.
func (c KConfig) Arch() string {
	switch {
	case c.Builtin("CONFIG_X86_64"):
		return "amd64"
	case c.Builtin("CONFIG_ARM64"):
		return "arm64"
	}
	return ""
}

// ConfigFor says what a configuration is checked for: the run vmtest
// would make.
type ConfigFor struct {
	Arch    string // GOARCH: amd64 (default), arm64
	Disk    string // nvme (default), virtio
	Crash   string // a guest.Crashes method; "" is sysrq
	Modules bool   // a modules directory is given: =m drivers can be loaded
}

// A Requirement is a kernel option, or a choice of them, that kdump under
// vmtest needs.
type Requirement struct {
	// Options are the options any one of which will do ("y", or "m"
	// where Module allows it), spelled as the kernel spells them.
	Options []string
	// Module: a module does (loaded from --modules), not only built in.
	Module bool
	// Absent: the option must NOT be set (a kernel that refuses what
	// vmtest does).
	Absent bool
	// Warn: missing it is reported but does not fail the check.
	Warn bool
	Why  string
}

// Requirements lists what a run needs of the kernel's configuration, for
// both of its roles: the first kernel (which loads the capture kernel and
// crashes) and the capture kernel (the same kernel, booted by kexec,
// which saves the dump).
func Requirements(f ConfigFor) []Requirement {
	module := f.Modules
	rs := []Requirement{
		{Options: []string{"CONFIG_KEXEC_FILE", "CONFIG_KEXEC"}, Why: "gokdump loads the capture kernel with kexec_file_load(2), or kexec_load(2) where the kernel has only that (Debian's arm64 kernels)"},
		{Options: []string{"CONFIG_CRASH_DUMP"}, Why: "the kernel boots as a capture kernel and reserves crashkernel= memory"},
		{Options: []string{"CONFIG_PROC_VMCORE"}, Why: "the capture kernel shows the crashed memory as /proc/vmcore"},
		{Options: []string{"CONFIG_RELOCATABLE"}, Why: "the capture kernel runs from the crashkernel= reservation, wherever it is"},
		{Options: []string{"CONFIG_BLK_DEV_INITRD"}, Why: "both kernels boot into an initramfs"},
		{Options: []string{"CONFIG_RD_ZSTD"}, Why: "the capture initramfs is zstd-compressed (gokdump build's default)"},
		{Options: []string{"CONFIG_DEVTMPFS"}, Why: "the inits find the disk in /dev (devtmpfs)"},
		{Options: []string{"CONFIG_PROC_FS"}, Why: "/proc/vmcore, /proc/cmdline"},
		{Options: []string{"CONFIG_SYSFS"}, Why: "the capture finds the dump disk in /sys/block"},
		{Options: []string{"CONFIG_BINFMT_ELF"}, Why: "the inits are static ELF programs"},
		{Options: []string{"CONFIG_FUTEX"}, Why: "the Go runtime of the inits"},
		{Options: []string{"CONFIG_EPOLL"}, Why: "the Go runtime of the inits"},
		{Options: []string{"CONFIG_PRINTK"}, Why: "the kernel log, with the run's marker, is in the dump"},
		{Options: []string{"CONFIG_PCI"}, Why: "the dump disk is a PCI device"},
		{Options: []string{"CONFIG_EXT4_FS"}, Module: module, Why: "the dump disk is ext4"},
		{Options: []string{"CONFIG_KEXEC_SIG_FORCE"}, Absent: true, Warn: true,
			Why: "with it set, kexec_file_load(2) refuses a capture kernel not signed with a key the kernel trusts"},
	}
	switch f.Arch {
	case "arm64":
		rs = append(rs,
			Requirement{Options: []string{"CONFIG_SERIAL_AMBA_PL011"}, Why: "the serial console (ttyAMA0) vmtest reads"},
			Requirement{Options: []string{"CONFIG_SERIAL_AMBA_PL011_CONSOLE"}, Why: "the serial console (ttyAMA0) vmtest reads"})
	default:
		rs = append(rs,
			Requirement{Options: []string{"CONFIG_SERIAL_8250"}, Why: "the serial console (ttyS0) vmtest reads"},
			Requirement{Options: []string{"CONFIG_SERIAL_8250_CONSOLE"}, Why: "the serial console (ttyS0) vmtest reads"})
	}
	switch f.Disk {
	case "virtio":
		rs = append(rs,
			Requirement{Options: []string{"CONFIG_VIRTIO_BLK"}, Module: module, Why: "the dump disk (--disk virtio)"},
			Requirement{Options: []string{"CONFIG_VIRTIO_PCI"}, Module: module, Why: "the dump disk's transport (--disk virtio)"})
	default:
		rs = append(rs, Requirement{Options: []string{"CONFIG_BLK_DEV_NVME"}, Module: module, Why: "the dump disk (--disk nvme)"})
	}
	switch f.Crash {
	case "", guest.CrashSysrq:
		rs = append(rs, Requirement{Options: []string{"CONFIG_MAGIC_SYSRQ"}, Why: "--crash sysrq writes c to /proc/sysrq-trigger"})
	case guest.CrashPanic:
		// PID 1 exiting panics every kernel.
	default:
		rs = append(rs,
			Requirement{Options: []string{"CONFIG_LKDTM"}, Module: module, Why: "--crash " + f.Crash + " is LKDTM's " + guest.LKDTMType(f.Crash)},
			Requirement{Options: []string{"CONFIG_DEBUG_FS"}, Why: "LKDTM is driven through debugfs"})
		switch f.Crash {
		case guest.CrashBUG:
			rs = append(rs, Requirement{Options: []string{"CONFIG_BUG"}, Why: "--crash bug: without it BUG() does nothing"})
		case guest.CrashSoftlockup:
			rs = append(rs, Requirement{Options: []string{"CONFIG_SOFTLOCKUP_DETECTOR"}, Why: "--crash softlockup: the watchdog that panics"})
		}
	}
	if f.Modules {
		rs = append(rs, Requirement{Options: []string{"CONFIG_MODULES"}, Why: "--modules: drivers are loaded as modules"})
	}
	return rs
}

// ConfigItem is one requirement as a configuration meets it.
type ConfigItem struct {
	Option string `json:"option"` // the option checked (the first of a choice)
	Value  string `json:"value"`  // its value: y, m, … or "" (not set)
	Want   string `json:"want"`   // "y", "y or m", "not set"
	OK     bool   `json:"ok"`
	Warn   bool   `json:"warn,omitempty"` // not meeting it is a warning only
	Why    string `json:"why"`
}

// ConfigReport is the result of a configuration check.
type ConfigReport struct {
	Source string       `json:"source,omitempty"` // the file checked
	Arch   string       `json:"arch"`
	Items  []ConfigItem `json:"items"`
	// Missing names every required option the configuration lacks;
	// empty when kdump can work.
	Missing []string `json:"missing"`
	// Warnings are options that may get in the way.
	Warnings []string `json:"warnings,omitempty"`
}

// OK reports whether nothing required is missing.
func (r *ConfigReport) OK() bool { return len(r.Missing) == 0 }

// CheckConfig checks a configuration against Requirements(f). A
// configuration for another architecture than f.Arch fails as such.
func CheckConfig(c KConfig, f ConfigFor) *ConfigReport {
	if f.Arch == "" {
		f.Arch = "amd64"
	}
	r := &ConfigReport{Arch: f.Arch, Missing: []string{}}
	if a := c.Arch(); a != f.Arch {
		name := map[string]string{"amd64": "CONFIG_X86_64", "arm64": "CONFIG_ARM64"}[f.Arch]
		r.Items = append(r.Items, ConfigItem{Option: name, Value: c[name], Want: "y",
			Why: fmt.Sprintf("the kernel is %s; the configuration is for %s", f.Arch, orNone(a))})
		r.Missing = append(r.Missing, name)
		return r
	}
	for _, q := range Requirements(f) {
		it := ConfigItem{Option: q.Options[0], Value: c[q.Options[0]], Warn: q.Warn, Why: q.Why}
		ok := func(v string) bool { return v == "y" || (q.Module && v == "m") }
		switch {
		case q.Absent:
			it.Want = "not set"
			it.OK = it.Value == "" || it.Value == "n"
		default:
			it.Want = "y"
			if q.Module {
				it.Want = "y or m"
			}
			for _, o := range q.Options {
				if ok(c[o]) {
					it.Option, it.Value, it.OK = o, c[o], true
					break
				}
			}
			if !it.OK && c[it.Option] == "m" && !q.Module {
				it.Want += " (a module needs --modules)"
				if slices.Contains([]string{"CONFIG_SERIAL_8250", "CONFIG_SERIAL_AMBA_PL011"}, it.Option) {
					it.Want = "y (a console must be built in)"
				}
			}
		}
		r.Items = append(r.Items, it)
		switch {
		case it.OK:
		case q.Warn:
			r.Warnings = append(r.Warnings, it.Option)
		default:
			r.Missing = append(r.Missing, it.Option)
		}
	}
	return r
}

func orNone(s string) string {
	if s == "" {
		return "no architecture this knows"
	}
	return s
}

// WriteText writes the report for a reader: one line per option, the
// missing ones marked, and a summary line naming them.
func (r *ConfigReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if r.Source != "" {
		fmt.Fprintf(bw, "kernel config %s (%s):\n", r.Source, r.Arch)
	}
	for _, it := range r.Items {
		mark := "ok  "
		switch {
		case !it.OK && it.Warn:
			mark = "WARN"
		case !it.OK:
			mark = "MISS"
		}
		val := it.Value
		if val == "" {
			val = "not set"
		}
		fmt.Fprintf(bw, "  %s %-34s %-8s want %-10s %s\n", mark, it.Option, val, it.Want, it.Why)
	}
	if r.OK() {
		fmt.Fprintf(bw, "every option kdump needs is set")
		if len(r.Warnings) > 0 {
			fmt.Fprintf(bw, "; warnings: %s", strings.Join(r.Warnings, ", "))
		}
		fmt.Fprintln(bw)
	} else {
		fmt.Fprintf(bw, "missing for kdump: %s\n", strings.Join(r.Missing, ", "))
	}
	return bw.Flush()
}

// FindKConfig returns the configuration of the kernel image at kernel (of
// release rel, "" if unknown, with modules, "" if none) where builds and
// distributions leave it, or "" when there is none: config-REL beside the
// image (/boot), config beside it or in the modules directory
// (/usr/lib/modules/REL), the build tree's .config behind the modules
// directory's build link, and the .config of the source tree an
// arch/*/boot/ image was built in.
func FindKConfig(kernel, rel, modules string) string {
	dir := filepath.Dir(kernel)
	var cands []string
	if rel != "" {
		cands = append(cands, filepath.Join(dir, "config-"+rel))
	}
	cands = append(cands, filepath.Join(dir, "config"))
	if modules != "" {
		cands = append(cands, filepath.Join(modules, "config"), filepath.Join(modules, "build", ".config"))
	}
	// TREE/arch/ARCH/boot/IMAGE
	if filepath.Base(dir) == "boot" && filepath.Base(filepath.Dir(filepath.Dir(dir))) == "arch" {
		cands = append(cands, filepath.Join(dir, "..", "..", "..", ".config"))
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return filepath.Clean(c)
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
