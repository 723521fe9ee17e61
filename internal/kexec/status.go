package kexec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Status is what the running kernel says about crash capture: whether
// memory is reserved and a capture kernel loaded. It is plain data with JSON
// tags so commands can print it and later code can add to it.
type Status struct {
	// Supported: the kernel has crash dump support
	// (/sys/kernel/kexec_crash_size exists).
	Supported bool `json:"supported"`
	// CrashSize is the crashkernel= reservation in bytes
	// (/sys/kernel/kexec_crash_size); 0 when none.
	CrashSize uint64 `json:"crash_size"`
	// Loaded: a capture kernel is loaded (/sys/kernel/kexec_crash_loaded).
	Loaded bool `json:"loaded"`
	// Crashkernel holds the values of the crashkernel= parameters on the
	// running kernel's command line (/proc/cmdline), in order.
	Crashkernel []string `json:"crashkernel,omitempty"`
	// Lockdown is the active kernel lockdown mode (none, integrity,
	// confidentiality), "" when securityfs does not say. Under lockdown
	// only signed kernels load.
	Lockdown string `json:"lockdown,omitempty"`
	// KexecLoadDisabled: kernel.kexec_load_disabled is set, so no kernel
	// can be loaded (or unloaded) until reboot.
	KexecLoadDisabled bool `json:"kexec_load_disabled"`
	// Release is the running kernel's (/proc/sys/kernel/osrelease).
	Release string `json:"release,omitempty"`
	// CMARequested is what crashkernel=SIZE,cma asks for; CMAReserved
	// what the kernel reserved as CMA for the capture kernel, beside
	// CrashSize (reservation.go); CMACapable whether this kernel can.
	CMARequested uint64 `json:"cma_requested,omitempty"`
	CMAReserved  uint64 `json:"cma_reserved,omitempty"`
	CMACapable   bool   `json:"cma_capable"`
	// ElfcorehdrSize is the room kept for the capture's ELF headers
	// (/sys/kernel/crash_elfcorehdr_size), 0 when the kernel does not say.
	ElfcorehdrSize uint64 `json:"elfcorehdr_size,omitempty"`
	// CrashHotplugCPU and CrashHotplugMemory say whether the kernel
	// updates the loaded capture's headers itself on hotplug
	// (/sys/devices/system/{cpu,memory}/crash_hotplug); nil when it
	// does not say.
	CrashHotplugCPU    *bool `json:"crash_hotplug_cpu,omitempty"`
	CrashHotplugMemory *bool `json:"crash_hotplug_memory,omitempty"`
}

// Ready reports whether a crash now would boot a capture kernel.
func (s Status) Ready() bool { return len(s.Problems()) == 0 }

// Problems lists, in words meant for the user, why a crash now would not be
// caught; it is empty when one would.
func (s Status) Problems() []string {
	var p []string
	switch {
	case !s.Supported:
		p = append(p, "this kernel has no crash dump support (no /sys/kernel/kexec_crash_size; CONFIG_CRASH_DUMP is off)")
	case s.CrashSize == 0 && len(s.Crashkernel) > 0:
		p = append(p, fmt.Sprintf("crashkernel=%s is on the kernel command line but no memory was reserved (more than the machine can spare, or a syntax error: see dmesg)",
			strings.Join(s.Crashkernel, " crashkernel=")))
	case s.CrashSize == 0:
		p = append(p, "no memory reserved for a capture kernel: add crashkernel= (256M, for example) to the kernel command line and reboot")
	}
	if s.Supported && !s.Loaded {
		msg := "no capture kernel loaded (gokdump load)"
		if s.KexecLoadDisabled {
			msg += "; kernel.kexec_load_disabled is set, so none can be until reboot"
		}
		p = append(p, msg)
	}
	return p
}

// ReadStatus reads the crash capture status from a sysfs tree mounted at
// sysfsRoot and a procfs at procRoot ("/sys" and "/proc" on a live system;
// tests pass directories of fixtures). Files a kernel may lack leave their
// fields zero; a missing sysfsRoot/kernel or malformed contents are errors.
func ReadStatus(sysfsRoot, procRoot string) (Status, error) {
	var s Status
	if fi, err := os.Stat(filepath.Join(sysfsRoot, "kernel")); err != nil || !fi.IsDir() {
		return s, fmt.Errorf("kexec: %s has no kernel directory: is sysfs mounted there?", sysfsRoot)
	}
	size, ok, err := readUint(filepath.Join(sysfsRoot, "kernel/kexec_crash_size"))
	if err != nil {
		return s, err
	}
	s.Supported, s.CrashSize = ok, size
	if ok {
		loaded, _, err := readBool(filepath.Join(sysfsRoot, "kernel/kexec_crash_loaded"))
		if err != nil {
			return s, err
		}
		s.Loaded = loaded
	}
	cmdline, err := os.ReadFile(filepath.Join(procRoot, "cmdline"))
	if err != nil {
		return s, fmt.Errorf("kexec: read kernel command line: %w", err)
	}
	s.Crashkernel = crashkernelArgs(string(cmdline))
	lockdown, err := os.ReadFile(filepath.Join(sysfsRoot, "kernel/security/lockdown"))
	if err == nil {
		s.Lockdown = parseLockdown(string(lockdown))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("kexec: read lockdown mode: %w", err)
	}
	s.KexecLoadDisabled, _, err = readBool(filepath.Join(procRoot, "sys/kernel/kexec_load_disabled"))
	if err != nil {
		return s, err
	}
	return s, s.readReservation(sysfsRoot, procRoot)
}

// crashkernelArgs returns the values of the crashkernel= parameters on a
// command line, before any "--".
func crashkernelArgs(cmdline string) []string {
	var v []string
	for _, a := range splitCmdline(cmdline) {
		if a == "--" {
			break
		}
		if paramKey(a) == "crashkernel" {
			_, val, _ := strings.Cut(strings.ReplaceAll(a, `"`, ""), "=")
			v = append(v, val)
		}
	}
	return v
}

// parseLockdown picks the active mode out of securityfs's lockdown file,
// "none [integrity] confidentiality".
func parseLockdown(s string) string {
	for _, f := range strings.Fields(s) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1]
		}
	}
	return ""
}

// readUint reads a file holding one decimal number; ok is false when the
// file does not exist.
func readUint(path string) (v uint64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("kexec: %w", err)
	}
	v, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("kexec: %s: %w", path, err)
	}
	return v, true, nil
}

// readBool reads a file holding 0 or 1 (any other number reads as true,
// as the kernel's own readers of such knobs do); ok is false when the file
// does not exist.
func readBool(path string) (v, ok bool, err error) {
	n, ok, err := readUint(path)
	return n != 0, ok, err
}
