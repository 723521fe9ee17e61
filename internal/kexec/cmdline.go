package kexec

import "strings"

// captureArgs are added to every derived capture command line. A user's
// --append overrides them by key.
var captureArgs = []string{
	// The dead kernel may have left interrupts pending or routed to CPUs
	// that no longer run; polling every handler on each interrupt keeps
	// devices whose interrupt line is lost usable.
	"irqpoll",
	// One CPU is enough to copy memory, and every other CPU would cost
	// per-CPU memory out of the small reservation.
	"nr_cpus=1",
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
}

// dropArgs are parameters of the running kernel that do not apply to, or
// hurt, a capture kernel. Keys are normalised (see paramKey).
var dropArgs = map[string]bool{
	// The capture kernel boots from its own initramfs; the first kernel's
	// boot loader, root file system and init do not apply.
	"BOOT_IMAGE": true, "initrd": true, "root": true, "rootfstype": true,
	"rootflags": true, "rootwait": true, "rootdelay": true, "nfsroot": true,
	"ro": true, "rw": true, "init": true, "rdinit": true,
	"resume": true, "resume_offset": true,
	// Console output is what tells a user why a dump failed.
	"quiet": true, "splash": true,
	// nr_cpus=1 and panic=1 are added; the first kernel's values would
	// contradict them.
	"nr_cpus": true, "maxcpus": true, "possible_cpus": true, "panic": true,
	// A WARN in a driver facing hardware the dead kernel left busy is
	// likely, and must not reboot the machine before the dump is saved.
	"panic_on_warn": true,
	// CPU lists for the big machine name CPUs the capture kernel does not
	// bring up, or isolate its only CPU.
	"isolcpus": true, "nohz_full": true, "rcu_nocbs": true, "irqaffinity": true,
	// Memory reservations and layouts sized for the whole machine: the
	// capture kernel has a few dozen MiB, and its memory map comes from
	// kexec, not from these.
	"hugepages": true, "hugepagesz": true, "default_hugepagesz": true,
	"hugetlb_cma": true, "cma": true, "kernelcore": true, "movablecore": true,
	"mem": true, "memmap": true, "swiotlb": true, "log_buf_len": true,
	"slub_debug": true, "page_owner": true,
	// Set by the kernel for the capture kernel, or meaningful only in the
	// first one.
	"crashkernel": true, "elfcorehdr": true, "kexec_load_disabled": true,
	// Not dropped, though commonly turned off in capture kernels:
	// intel_iommu=, amd_iommu=, iommu=. With the IOMMU off, devices the
	// dead kernel left doing DMA cannot fault on stale translations, but
	// some machines cannot reach their disks without it; a user can
	// --append intel_iommu=off.
}

// dropPrefixes are namespaces of parameters read by the first kernel's
// user space (systemd, dracut, plymouth), not by our init.
var dropPrefixes = []string{"systemd.", "rd.", "plymouth."}

// CaptureCmdline derives the capture kernel's command line from the running
// kernel's (procCmdline, the contents of /proc/cmdline): it keeps what still
// applies (console=, earlyprintk, loglevel, driver options, ...), drops what
// does not (root=, crashkernel=, hugepages=, systemd.*, ...; see dropArgs),
// adds the capture options (irqpoll nr_cpus=1 reset_devices panic=1
// sysctl.vm.overcommit_memory=1), then appends extra, whose parameters
// replace earlier ones with the same name. Quoted values (foo="a b") are
// kept as written. Arguments after "--" in procCmdline belong to the first
// kernel's init and are dropped; in extra they are kept, last.
func CaptureCmdline(procCmdline, extra string) string {
	var args []string
	for _, a := range splitCmdline(procCmdline) {
		if a == "--" {
			break
		}
		if !dropped(paramKey(a)) {
			args = append(args, a)
		}
	}
	for _, a := range captureArgs {
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
	return strings.Join(args, " ")
}

func dropped(key string) bool {
	if dropArgs[key] {
		return true
	}
	for _, p := range dropPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
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
