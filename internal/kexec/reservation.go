package kexec

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/gokdump/gokdump/internal/size"
)

// The CMA part of a reservation: crashkernel=SIZE,cma (Linux 6.17, x86_64,
// a kernel built with CONFIG_CMA) reserves SIZE more as a CMA area named
// "crashkernel" beside the standard reservation. The running system lends
// it to movable allocations (user memory, page cache); at a crash the
// capture kernel gets it as RAM, so only the kernel and initrd must fit
// the standard part. The kernel shows only the standard part as "Crash
// kernel" in /proc/iomem and in kexec_crash_size; the CMA part is in
// /sys/kernel/mm/cma/crashkernel/total_pages. What the running system
// keeps in it is not in the dump (the kernel leaves it out of the ELF
// headers, as the capture kernel overwrites it).

// cmaMinRelease is the first release with crashkernel=…,cma.
var cmaMinRelease = [2]int{6, 17}

// cmaArch is where cmaMinRelease holds: the GOARCH of the running kernel,
// which is this program's (tests set it).
var cmaArch = runtime.GOARCH

// cmaRequested adds up the sizes of the crashkernel=SIZE,cma values; a
// value it cannot read is an error naming it.
func cmaRequested(values []string) (uint64, error) {
	var n uint64
	for _, v := range values {
		sz, ok := strings.CutSuffix(v, ",cma")
		if !ok {
			continue
		}
		s, err := size.Parse(sz)
		if err != nil {
			return 0, fmt.Errorf("kexec: crashkernel=%s: %w", v, err)
		}
		n += uint64(s)
	}
	return n, nil
}

// readCMAReserved reads the size of the crash kernel's CMA areas: the
// total_pages of /sys/kernel/mm/cma/crashkernel* (CONFIG_CMA_SYSFS), in
// pages of pageSize. ok is false when there is no such area.
func readCMAReserved(sysfsRoot string, pageSize uint64) (n uint64, ok bool, err error) {
	dirs, err := filepath.Glob(filepath.Join(sysfsRoot, "kernel/mm/cma/crashkernel*"))
	if err != nil {
		return 0, false, err
	}
	for _, d := range dirs {
		pages, found, err := readUint(filepath.Join(d, "total_pages"))
		if err != nil {
			return 0, false, err
		}
		if found {
			n += pages * pageSize
			ok = true
		}
	}
	return n, ok, nil
}

// cmaCapable reports whether a kernel of release, on cmaArch, built with
// CONFIG_CMA (meminfo says CmaTotal), can reserve crashkernel=…,cma.
func cmaCapable(release string, hasCMA bool) bool {
	if !hasCMA || cmaArch != "amd64" {
		return false
	}
	maj, min, ok := majorMinor(release)
	return ok && (maj > cmaMinRelease[0] || maj == cmaMinRelease[0] && min >= cmaMinRelease[1])
}

// majorMinor reads "6.17" out of a release such as "6.17.3-amd64".
func majorMinor(release string) (int, int, bool) {
	a, rest, ok := strings.Cut(release, ".")
	if !ok {
		return 0, 0, false
	}
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	maj, err1 := strconv.Atoi(a)
	min, err2 := strconv.Atoi(b)
	return maj, min, err1 == nil && err2 == nil
}

// meminfoHas reports whether a meminfo file has a line for key
// ("CmaTotal"); a missing file is false.
func meminfoHas(path, key string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kexec: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, _, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			return true, nil
		}
	}
	return false, sc.Err()
}

// readReservation fills in the reservation's newer facts: the CMA part,
// the size of the ELF headers kept for the capture, and whether CPU and
// memory hotplug update them without a reload.
func (s *Status) readReservation(sysfsRoot, procRoot string) error {
	var err error
	if s.CMARequested, err = cmaRequested(s.Crashkernel); err != nil {
		return err
	}
	if s.CMAReserved, _, err = readCMAReserved(sysfsRoot, uint64(os.Getpagesize())); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/osrelease")); err == nil {
		s.Release = strings.TrimSpace(string(b))
	}
	hasCMA, err := meminfoHas(filepath.Join(procRoot, "meminfo"), "CmaTotal")
	if err != nil {
		return err
	}
	s.CMACapable = cmaCapable(s.Release, hasCMA)
	if s.ElfcorehdrSize, _, err = readUint(filepath.Join(sysfsRoot, "kernel/crash_elfcorehdr_size")); err != nil {
		return err
	}
	for _, h := range []struct {
		dir string
		to  **bool
	}{{"cpu", &s.CrashHotplugCPU}, {"memory", &s.CrashHotplugMemory}} {
		v, ok, err := readBool(filepath.Join(sysfsRoot, "devices/system", h.dir, "crash_hotplug"))
		if err != nil {
			return err
		}
		if ok {
			*h.to = &v
		}
	}
	return nil
}

// Notes lists, in words meant for the user, what the reservation and the
// kernel's settings mean for a capture without stopping it: the CMA part,
// hotplug, lockdown.
func (s Status) Notes() []string {
	var n []string
	switch {
	case s.CMARequested > 0 && !s.CMACapable && s.CMAReserved == 0:
		n = append(n, fmt.Sprintf("crashkernel=…,cma asks for %s, but this kernel (%s) cannot reserve it: that needs Linux 6.17+ on x86_64 built with CONFIG_CMA; "+
			"only the standard part is reserved", size.Size(s.CMARequested), orUnknown(s.Release)))
	case s.CMARequested > 0 && s.CMAReserved == 0:
		n = append(n, fmt.Sprintf("crashkernel=…,cma asks for %s but no CMA area was reserved (see dmesg: \"crashkernel CMA\"); only the standard part is reserved", size.Size(s.CMARequested)))
	case s.CMAReserved > 0 && s.CMAReserved < s.CMARequested:
		n = append(n, fmt.Sprintf("crashkernel=…,cma asks for %s, only %s was reserved as CMA", size.Size(s.CMARequested), size.Size(s.CMAReserved)))
	}
	if s.CMAReserved > 0 {
		n = append(n, "what the running system keeps in the CMA part (user memory, movable kernel pages) is not in a dump: "+
			"fine at dump_level 31; at lower levels such pages are missing")
	}
	for _, h := range []struct {
		what string
		v    *bool
	}{{"CPU", s.CrashHotplugCPU}, {"memory", s.CrashHotplugMemory}} {
		if h.v != nil && !*h.v {
			n = append(n, fmt.Sprintf("%s hotplug does not update the loaded capture's ELF headers (crash_hotplug 0): load again after hotplug (gokdump load)", h.what))
		}
	}
	switch s.Lockdown {
	case "integrity", "confidentiality":
		n = append(n, fmt.Sprintf("kernel lockdown (%s): kexec_load of any kernel is refused (gokdump load --syscall classic cannot work), and kexec_file_load "+
			"takes only a kernel signed by a key this kernel trusts (CONFIG_KEXEC_SIG): a distribution's signed kernel loads, "+
			"an unsigned one (built here, or a dedicated capture kernel) fails", s.Lockdown))
	}
	return n
}

func orUnknown(s string) string {
	if s == "" {
		return "release unknown"
	}
	return s
}
