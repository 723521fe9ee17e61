package kexec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// x86Cpuinfo is /proc/cpuinfo of a 2-CPU x86 machine whose boot CPU has
// APIC ID 2, trimmed.
const x86Cpuinfo = `processor	: 0
vendor_id	: GenuineIntel
physical id	: 0
apicid		: 2
initial apicid	: 2
flags		: fpu vme de pse tsc msr pae mce cx8 apic

processor	: 1
vendor_id	: GenuineIntel
apicid		: 0
initial apicid	: 0

`

func TestBootAPICID(t *testing.T) {
	for _, tt := range []struct{ name, cpuinfo, want string }{
		{"x86", x86Cpuinfo, "2"},
		{"arm64", "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n", ""},
		{"empty", "", ""},
		// apicid of processor 1 only: not the boot CPU's.
		{"processor 0 without apicid", "processor : 0\nflags : fpu\n\nprocessor : 1\napicid : 7\n", ""},
		{"not a number", "processor : 0\napicid : 0x2\n", ""},
		{"out of range", "processor : 0\napicid : 99999999999\n", ""},
	} {
		if got := BootAPICID([]byte(tt.cpuinfo)); got != tt.want {
			t.Errorf("%s: BootAPICID = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCaptureCmdlineCPUs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cpus  CPUs
		extra string
		want  string
	}{
		{"zero is one", CPUs{}, "", "irqpoll nr_cpus=1 reset_devices"},
		{"one, no APIC ID needed", CPUs{N: 1, BootAPICID: "0"}, "", "irqpoll nr_cpus=1 reset_devices"},
		{"two on x86", CPUs{N: 2, BootAPICID: "0"}, "", "irqpoll nr_cpus=2 disable_cpu_apicid=0 reset_devices"},
		{"four elsewhere", CPUs{N: 4}, "", "irqpoll nr_cpus=4 reset_devices"},
		// The user's own nr_cpus= wins, as every appended parameter does.
		{"appended nr_cpus wins", CPUs{N: 4, BootAPICID: "0"}, "nr_cpus=1", "irqpoll disable_cpu_apicid=0 reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0 nr_cpus=1"},
	} {
		// The first kernel's own values never reach the capture's.
		got := CaptureCmdline("console=ttyS0 nr_cpus=64 disable_cpu_apicid=5", tt.extra, tt.cpus)
		if want := "console=ttyS0 " + tt.want; !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want it to start with %q", tt.name, got, want)
		}
	}
}

func TestReadCPUs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cpuinfo"), []byte(x86Cpuinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := ReadCPUs(dir, 2), (CPUs{N: 2, BootAPICID: "2"}); got != want {
		t.Errorf("ReadCPUs(2) = %+v, want %+v", got, want)
	}
	// One CPU needs no APIC ID; a missing cpuinfo costs only the APIC ID.
	if got, want := ReadCPUs(dir, 1), (CPUs{N: 1}); got != want {
		t.Errorf("ReadCPUs(1) = %+v, want %+v", got, want)
	}
	if got, want := ReadCPUs(filepath.Join(dir, "none"), 3), (CPUs{N: 3}); got != want {
		t.Errorf("ReadCPUs without cpuinfo = %+v, want %+v", got, want)
	}
}

func FuzzBootAPICID(f *testing.F) {
	f.Add([]byte(x86Cpuinfo))
	f.Add([]byte("processor : 0\napicid : 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id := BootAPICID(b)
		// Whatever it returns goes on a kernel command line as it is.
		for _, c := range id {
			if c < '0' || c > '9' {
				t.Fatalf("BootAPICID = %q: not a decimal number", id)
			}
		}
	})
}

func TestCmdlineCPUs(t *testing.T) {
	for _, tt := range []struct {
		cmdline string
		n       int
		ok      bool
	}{
		{"console=ttyS0 irqpoll nr_cpus=2 reset_devices", 2, true},
		{"irqpoll nr_cpus=1 reset_devices nr_cpus=4", 4, true}, // the last wins
		{`nr-cpus="3"`, 3, true},
		{"irqpoll reset_devices", 0, false},
		{"nr_cpus=two", 0, false},
		{"nr_cpus=0", 0, false},
		{"nr_cpus=2 -- nr_cpus=8", 2, true}, // init's arguments
	} {
		if n, ok := CmdlineCPUs(tt.cmdline); n != tt.n || ok != tt.ok {
			t.Errorf("CmdlineCPUs(%q) = %d, %v; want %d, %v", tt.cmdline, n, ok, tt.n, tt.ok)
		}
	}
}
