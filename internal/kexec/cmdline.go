package kexec

import (
	"runtime"
	"strings"
)

// captureArgs are added to every derived capture command line. A user's
// --append overrides them by key.
var captureArgs = []string{
	// The dead kernel may have left interrupts pending or routed to CPUs
	// that no longer run; polling every handler on each interrupt keeps
	// devices whose interrupt line is lost usable. x86 only (x86Only):
	// on arm64 the GIC is reset by the capture kernel and irqpoll only
	// costs time.
	"irqpoll",
	// nr_cpus= (and disable_cpu_apicid=) follow here: CPUs.args.
	// Devices are still running where the dead kernel left them,
	// possibly mid-DMA; this asks drivers to reset them before use.
	"reset_devices",
	// A capture kernel that panics in turn reboots after a second
	// instead of hanging the machine.
	"panic=1",
	// The Go runtime reserves address space for its heap arena index
	// at start; in the ~70 MiB a capture kernel has, the default
	// overcommit heuristic refuses it and the init dies before main.
	"sysctl.vm.overcommit_memory=1",
	// The kernel's build-time CMA area (Debian's arm64 kernels:
	// CONFIG_CMA_SIZE_MBYTES=64) is carved out of the reservation for
	// contiguous DMA buffers nothing in the capture needs. Debian's arm64
	// 6.12 at crashkernel=144M: 64 MiB cma-reserved, 34 MiB left
	// available, and unpacking the initramfs failed; at 96M the area does
	// not fit, is not reserved, and the capture works, so without this a
	// larger reservation can fail where a smaller one works.
	"cma=0",
}

// captureParams are captureArgs with cpus's parameters after irqpoll,
// where nr_cpus=1 has always been.
func captureParams(cpus CPUs) []string {
	var ps []string
	for _, a := range captureArgs {
		ps = append(ps, a)
		if a == "irqpoll" {
			ps = append(ps, cpus.args()...)
		}
	}
	return ps
}

// x86Only are the captureArgs added only when the running kernel (this
// program's GOARCH, captureArch; tests set it) is x86.
var (
	x86Only     = map[string]bool{"irqpoll": true}
	captureArch = runtime.GOARCH
)

// dropGroups are parameters of the running kernel that do not apply to, or
// would break, a capture kernel, with why they are dropped.
var dropGroups = []struct {
	why  string
	keys []string
}{
	{"the first kernel's boot: the capture kernel boots its own initramfs", []string{
		"BOOT_IMAGE", "initrd", "root", "rootfstype", "rootflags", "rootwait", "rootdelay", "nfsroot",
		"ro", "rw", "init", "rdinit", "resume", "resume_offset"}},
	{"would make the capture kernel ignore its initramfs", []string{"noinitrd"}},
	// The capture loads the dump target's drivers itself; a first
	// kernel that does without modules, or blacklists one for its own
	// reasons, must not stop it.
	{"would keep the capture from loading the dump target's drivers", []string{
		"nomodule", "module_blacklist", "modprobe.blacklist"}},
	{"hides the console messages that say why a dump failed", []string{"quiet", "splash"}},
	{"replaced by the capture kernel's own value", []string{"nr_cpus", "maxcpus", "possible_cpus", "disable_cpu_apicid", "panic"}},
	// A WARN in a driver facing hardware the dead kernel left busy is
	// likely, and must not reboot the machine before the dump is saved.
	{"a warning would reboot before the dump is saved", []string{"panic_on_warn"}},
	{"CPU lists of the first kernel, naming CPUs the capture kernel does not bring up", []string{
		"isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"}},
	// The capture kernel has a few dozen MiB, and its memory map comes
	// from kexec, not from these.
	{"memory settings sized for the whole machine", []string{
		"hugepages", "hugepagesz", "default_hugepagesz", "hugetlb_cma", "cma", "kernelcore", "movablecore",
		"mem", "memmap", "swiotlb", "log_buf_len", "slub_debug", "page_owner"}},
	{"meaningful only in the first kernel", []string{"crashkernel", "elfcorehdr", "kexec_load_disabled"}},
	// Not dropped, though commonly turned off in capture kernels:
	// intel_iommu=, amd_iommu=, iommu=. With the IOMMU off, devices the
	// dead kernel left doing DMA cannot fault on stale translations, but
	// some machines cannot reach their disks without it; a user can
	// --append intel_iommu=off.
}

// dropArgs maps the keys of dropGroups, normalised (see paramKey), to why.
var dropArgs = func() map[string]string {
	m := map[string]string{}
	for _, g := range dropGroups {
		for _, k := range g.keys {
			m[paramKey(k)] = g.why
		}
	}
	return m
}()

// dropPrefixes are namespaces of parameters read by the first kernel's
// user space (systemd, dracut, plymouth), not by our init.
var dropPrefixes = []string{"systemd.", "rd.", "plymouth."}

// A Dropped is a parameter of the running kernel that the derived capture
// command line leaves out.
type Dropped struct {
	Arg    string // as written in /proc/cmdline
	Reason string
}

// CaptureCmdline derives the capture kernel's command line from the running
// kernel's (procCmdline, the contents of /proc/cmdline): it keeps what still
// applies (console=, earlyprintk, loglevel, driver options, ...), drops what
// does not or would break the capture (root=, crashkernel=, hugepages=,
// nomodule, module_blacklist=, systemd.*, ...; see dropGroups), adds the
// capture options (irqpoll nr_cpus=N reset_devices panic=1
// sysctl.vm.overcommit_memory=1 cma=0, with disable_cpu_apicid= for more than
// one CPU: see CPUs), then appends extra, whose parameters replace
// earlier ones with the same name. Quoted values (foo="a b") are kept as
// written. Arguments after "--" in procCmdline belong to the first
// kernel's init and are dropped; in extra they are kept, last.
func CaptureCmdline(procCmdline, extra string, cpus CPUs) string {
	s, _ := DeriveCmdline(procCmdline, extra, cpus)
	return s
}

// DeriveCmdline is CaptureCmdline that also says what it dropped from
// procCmdline and why, for the loader to show.
func DeriveCmdline(procCmdline, extra string, cpus CPUs) (string, []Dropped) {
	var args []string
	var drops []Dropped
	proc := splitCmdline(procCmdline)
	for i, a := range proc {
		if a == "--" {
			for _, a := range proc[i+1:] {
				drops = append(drops, Dropped{a, "for the first kernel's init"})
			}
			break
		}
		if why := dropped(paramKey(a)); why != "" {
			drops = append(drops, Dropped{a, why})
		} else {
			args = append(args, a)
		}
	}
	for _, a := range captureParams(cpus) {
		if x86Only[a] && captureArch != "amd64" && captureArch != "386" {
			continue
		}
		args = append(withoutKey(args, paramKey(a)), a)
	}
	ex := splitCmdline(extra)
	var initArgs []string
	for i, a := range ex {
		if a == "--" {
			ex, initArgs = ex[:i], ex[i:]
			break
		}
	}
	// Remove overridden parameters from the derived part only, so that a
	// user's repeated key (console=ttyS0 console=tty0) survives whole.
	for _, a := range ex {
		args = withoutKey(args, paramKey(a))
	}
	args = append(append(args, ex...), initArgs...)
	return strings.Join(args, " "), drops
}

// dropped says why the parameter key is dropped, "" when it is kept.
func dropped(key string) string {
	if why := dropArgs[key]; why != "" {
		return why
	}
	for _, p := range dropPrefixes {
		if strings.HasPrefix(key, p) {
			return "read by the first kernel's user space"
		}
	}
	return ""
}

func withoutKey(args []string, key string) []string {
	out := args[:0:0]
	for _, a := range args {
		if paramKey(a) != key {
			out = append(out, a)
		}
	}
	return out
}

// splitCmdline splits a kernel command line into parameters the way the
// kernel does: at white space outside double quotes, which may open a
// parameter ("foo=a b") or its value (foo="a b"). Each parameter is
// returned as written, quotes included.
func splitCmdline(s string) []string {
	var args []string
	start, inQuote := -1, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSpace(c) && !inQuote {
			if start >= 0 {
				args = append(args, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		if c == '"' {
			inQuote = !inQuote
		}
	}
	if start >= 0 {
		args = append(args, s[start:])
	}
	return args
}

// isSpace is the kernel's isspace for the bytes a command line holds.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// paramKey is a parameter's name for comparisons: the part before the first
// '=', without quotes, with '-' read as '_' as the kernel's parameq does.
func paramKey(arg string) string {
	if i := strings.IndexByte(arg, '='); i >= 0 {
		arg = arg[:i]
	}
	arg = strings.ReplaceAll(arg, `"`, "")
	return strings.ReplaceAll(arg, "-", "_")
}
