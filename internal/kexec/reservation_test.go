package kexec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// TestReadReservation reads fake /sys and /proc trees as the kernels
// write them: 7.3 with crashkernel=80M crashkernel=128M,cma (as the QEMU
// CMA test's guest has them), 6.12 where ,cma is ignored, a kernel
// without CONFIG_CMA, hotplug off, and lockdown.
func TestReadReservation(t *testing.T) {
	page := uint64(os.Getpagesize())
	cmaPages := (128 << 20) / page
	old := cmaArch
	t.Cleanup(func() { cmaArch = old })
	cmaArch = "amd64"
	base := func(release, cmdline string, more map[string]string) map[string]string {
		m := map[string]string{
			"sys/kernel/kexec_crash_size":   "83886080\n",
			"sys/kernel/kexec_crash_loaded": "1\n",
			"proc/cmdline":                  cmdline,
			"proc/sys/kernel/osrelease":     release + "\n",
			"proc/meminfo":                  "MemTotal:         388488 kB\nCmaTotal:         131072 kB\nCmaFree:          131072 kB\n",
		}
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	yes, no := true, false
	tests := []struct {
		name      string
		files     map[string]string
		requested uint64
		reserved  uint64
		capable   bool
		elfhdr    uint64
		cpu, mem  *bool
		notes     []string
	}{
		{
			name: "7.3 with a CMA part",
			files: base("7.3.4+deb13-cloud-amd64", "console=ttyS0 crashkernel=80M panic=5 crashkernel=128M,cma\n", map[string]string{
				"sys/kernel/mm/cma/crashkernel/total_pages":     itoa(cmaPages) + "\n",
				"sys/kernel/mm/cma/crashkernel/available_pages": itoa(cmaPages) + "\n",
				"sys/kernel/crash_elfcorehdr_size":              "917616\n",
				"sys/devices/system/cpu/crash_hotplug":          "1\n",
				"sys/devices/system/memory/crash_hotplug":       "1\n",
			}),
			requested: 128 << 20, reserved: 128 << 20, capable: true, elfhdr: 917616, cpu: &yes, mem: &yes,
			notes: []string{"not in a dump"},
		},
		{
			name:      "6.12 ignores ,cma",
			files:     base("6.12.118+deb12-cloud-amd64", "crashkernel=80M crashkernel=128M,cma", nil),
			requested: 128 << 20,
			notes:     []string{"this kernel (6.12.118+deb12-cloud-amd64) cannot reserve it: that needs Linux 6.17+"},
		},
		{
			name: "6.17 without CONFIG_CMA",
			files: base("6.17.1", "crashkernel=80M crashkernel=64M,cma", map[string]string{
				"proc/meminfo": "MemTotal:         388488 kB\n",
			}),
			requested: 64 << 20,
			notes:     []string{"cannot reserve it"},
		},
		{
			name:      "6.19 with CMA, nothing reserved",
			files:     base("6.19.14", "crashkernel=80M crashkernel=1G,cma", nil),
			requested: 1 << 30, capable: true,
			notes: []string{"no CMA area was reserved"},
		},
		{
			name: "hotplug off, locked down",
			files: base("6.12.1", "crashkernel=256M", map[string]string{
				"sys/devices/system/cpu/crash_hotplug":    "0\n",
				"sys/devices/system/memory/crash_hotplug": "1\n",
				"sys/kernel/security/lockdown":            "none integrity [confidentiality]\n",
			}),
			cpu: &no, mem: &yes,
			notes: []string{"CPU hotplug does not update", "kernel lockdown (confidentiality): kexec_load of any kernel is refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fixture.Tree(t, tt.files)
			s, err := ReadStatus(filepath.Join(root, "sys"), filepath.Join(root, "proc"))
			if err != nil {
				t.Fatal(err)
			}
			if s.CMARequested != tt.requested || s.CMAReserved != tt.reserved || s.CMACapable != tt.capable || s.ElfcorehdrSize != tt.elfhdr {
				t.Errorf("cma requested %d reserved %d capable %v, elfcorehdr %d; want %d %d %v, %d",
					s.CMARequested, s.CMAReserved, s.CMACapable, s.ElfcorehdrSize, tt.requested, tt.reserved, tt.capable, tt.elfhdr)
			}
			if !eqBoolPtr(s.CrashHotplugCPU, tt.cpu) || !eqBoolPtr(s.CrashHotplugMemory, tt.mem) {
				t.Errorf("crash_hotplug cpu %v memory %v", s.CrashHotplugCPU, s.CrashHotplugMemory)
			}
			if s.CrashSize != 80<<20 && !strings.Contains(tt.name, "hotplug") {
				t.Errorf("standard part %d: the CMA part must not be counted in it", s.CrashSize)
			}
			notes := s.Notes()
			if len(notes) != len(tt.notes) {
				t.Fatalf("Notes() = %q, want %d", notes, len(tt.notes))
			}
			for i := range notes {
				if !strings.Contains(notes[i], tt.notes[i]) {
					t.Errorf("note %d = %q, want it to contain %q", i, notes[i], tt.notes[i])
				}
			}
		})
	}
}

func TestReadReservationErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"bad cma size":    {"proc/cmdline": "crashkernel=80M crashkernel=lots,cma"},
		"bad total_pages": {"proc/cmdline": "", "sys/kernel/mm/cma/crashkernel/total_pages": "many\n"},
		"bad hotplug":     {"proc/cmdline": "", "sys/devices/system/cpu/crash_hotplug": "y\n"},
	} {
		t.Run(name, func(t *testing.T) {
			files["sys/kernel/kexec_crash_size"] = "0"
			root := fixture.Tree(t, files)
			if _, err := ReadStatus(filepath.Join(root, "sys"), filepath.Join(root, "proc")); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestCMACapable(t *testing.T) {
	old := cmaArch
	t.Cleanup(func() { cmaArch = old })
	for _, tt := range []struct {
		arch, release string
		hasCMA, want  bool
	}{
		{"amd64", "6.17.0", true, true},
		{"amd64", "6.16.9-amd64", true, false},
		{"amd64", "7.0-rc1", true, true},
		{"amd64", "6.17.0", false, false},
		{"arm64", "7.3.4", true, false},
		{"amd64", "", true, false},
		{"amd64", "6", true, false},
	} {
		cmaArch = tt.arch
		if got := cmaCapable(tt.release, tt.hasCMA); got != tt.want {
			t.Errorf("cmaCapable(%q, %v) on %s = %v, want %v", tt.release, tt.hasCMA, tt.arch, got, tt.want)
		}
	}
}

func eqBoolPtr(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
