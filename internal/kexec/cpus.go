package kexec

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPUs is how many CPUs the capture kernel brings up, and what it needs
// to bring up more than one safely.
type CPUs struct {
	// N goes on the command line as nr_cpus=; below 1 is 1.
	N int
	// BootAPICID is the APIC ID of the running kernel's boot CPU (x86:
	// /proc/cpuinfo's apicid of processor 0), "" where there is none. With
	// N above 1 it goes on as disable_cpu_apicid=, as kdump-utils passes
	// it: the capture kernel boots on the CPU that panicked, and an INIT
	// sent from there to the firmware's boot CPU can reset the whole
	// machine on older kernels (newer ones leave that CPU out by
	// themselves, and ignore the parameter).
	BootAPICID string
}

// args are the capture kernel's parameters for c.
func (c CPUs) args() []string {
	n := max(c.N, 1)
	a := []string{"nr_cpus=" + strconv.Itoa(n)}
	if n > 1 && c.BootAPICID != "" {
		a = append(a, "disable_cpu_apicid="+c.BootAPICID)
	}
	return a
}

// ReadCPUs is CPUs for n CPUs on this machine: the boot CPU's APIC ID
// comes from procRoot/cpuinfo when n is above 1. A cpuinfo that cannot be
// read, or has no APIC IDs (not x86), leaves it out.
func ReadCPUs(procRoot string, n int) CPUs {
	c := CPUs{N: n}
	if n > 1 {
		if b, err := os.ReadFile(filepath.Join(procRoot, "cpuinfo")); err == nil {
			c.BootAPICID = BootAPICID(b)
		}
	}
	return c
}

// BootAPICID finds processor 0's apicid in the contents of /proc/cpuinfo,
// "" when there is none: a decimal number, as x86's cpuinfo prints it
// and disable_cpu_apicid= reads it.
func BootAPICID(cpuinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(nil, 1<<20) // a "flags" line is long; cpuinfo is read whole anyway
	cpu := ""
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			cpu = v
		case "apicid":
			if cpu != "0" {
				continue
			}
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return ""
			}
			return v
		}
	}
	return ""
}

// CmdlineCPUs is the nr_cpus= a capture command line gives (its last, as
// the kernel takes it); false when it has none or not a number.
func CmdlineCPUs(cmdline string) (int, bool) {
	n, ok := 0, false
	for _, a := range splitCmdline(cmdline) {
		if a == "--" {
			break
		}
		if paramKey(a) != "nr_cpus" {
			continue
		}
		_, v, _ := strings.Cut(a, "=")
		m, err := strconv.Atoi(strings.Trim(v, `"`))
		n, ok = m, err == nil && m > 0
	}
	return n, ok
}
