package kexec

import (
	"strings"
	"testing"
)

func TestEstimateCrashkernel(t *testing.T) {
	p := &Plan{KernelSize: 50 << 20, InitrdSize: 2 << 20, Initrd: "x"}
	for _, tt := range []struct {
		ram, unpacked uint64
		cpus          int
		want          string
	}{
		// 50 + 2 + 2 (segments) + 5 + 28 + 1 (1 GiB of RAM: 8 KiB, a
		// whole MiB) = 88 → 96M
		{1 << 30, 5 << 20, 1, "96M"},
		{1 << 30, 0, 1, "96M"}, // unknown: a host-only image is assumed
		{1 << 30, 12 << 20, 1, "96M"},
		{1 << 30, 18 << 20, 1, "112M"},   // 101
		{512 << 20, 12 << 20, 1, "96M"},  // half a GiB is not charged a whole TiB's 8 MiB
		{2 << 40, 5 << 20, 1, "112M"},    // 54 + 5 + 28 + 16 = 103
		{1 << 40, 22 << 20, 1, "112M"},   // 54 + 22 + 28 + 8 = 112, a multiple of 16 MiB
		{1<<40 + 1, 22 << 20, 1, "128M"}, // one byte more is one MiB more
		{128 << 30, 22 << 20, 1, "112M"}, // 54 + 22 + 28 + 1
		{129 << 30, 22 << 20, 1, "112M"}, // 54 + 22 + 28 + 2
		{129 << 30, 29 << 20, 1, "128M"}, // 54 + 29 + 28 + 2
		{1 << 30, 5 << 20, 0, "96M"},     // 0 CPUs is one
		{1 << 30, 5 << 20, 2, "96M"},     // 88 + 2
		{1 << 30, 5 << 20, 5, "96M"},     // 88 + 4 × 2 = 96, a multiple of 16 MiB
		{1 << 30, 5 << 20, 6, "112M"},    // 88 + 10 = 98
		{256 << 30, 22 << 20, 8, "128M"}, // 54 + 22 + 28 + 2 + 7 × 2 = 120
	} {
		e := EstimateCrashkernel(p, tt.ram, tt.unpacked, tt.cpus)
		if e.Value() != tt.want {
			t.Errorf("ram %d unpacked %d cpus %d: %s, want %s\n%s", tt.ram, tt.unpacked, tt.cpus, e.Value(), tt.want, e.Formula())
		}
		if !strings.Contains(e.Formula(), "crashkernel="+tt.want) {
			t.Errorf("formula lacks the value:\n%s", e.Formula())
		}
	}
	e := EstimateCrashkernel(p, 3<<29, 5<<20, 1)
	for _, want := range []string{"8 MiB per TiB of RAM, for 1.5 GiB", "rounded up to a multiple of 16 MiB: crashkernel=96M\n", "= "} {
		if !strings.Contains(e.Formula(), want) {
			t.Errorf("formula lacks %q:\n%s", want, e.Formula())
		}
	}
	if strings.Contains(e.Formula(), "per CPU") {
		t.Errorf("one CPU is charged nothing, and not shown:\n%s", e.Formula())
	}
	e = EstimateCrashkernel(p, 3<<29, 5<<20, 4)
	if want := "+ 2 MiB per CPU beyond the first, for 4 CPUs         6.0 MiB\n"; !strings.Contains(e.Formula(), want) {
		t.Errorf("formula lacks %q:\n%s", want, e.Formula())
	}
	// A kernel alone (an initramfs built in) unpacks nothing extra.
	if e := EstimateCrashkernel(&Plan{KernelSize: 18 << 20}, 1<<30, 0, 1); e.Unpacked != 0 {
		t.Errorf("no initrd: unpacked %d", e.Unpacked)
	}
}

func TestCMASplit(t *testing.T) {
	for _, tt := range []struct {
		name     string
		e        Estimate
		std, cma uint64
		ok       bool
	}{
		// The QEMU CMA test's guest: 7.3's 60.2 MiB init_size, a 3.5 MiB
		// initrd, 3.8 MiB of segments: 67.5 MiB loaded → 80M + 48M.
		{"7.3 cloud", Estimate{Load: 67<<20 + 512<<10, Total: 128 << 20}, 80 << 20, 48 << 20, true},
		{"exact multiple", Estimate{Load: 64 << 20, Total: 112 << 20}, 64 << 20, 48 << 20, true},
		{"nothing left", Estimate{Load: 90 << 20, Total: 96 << 20}, 96 << 20, 0, false},
	} {
		std, cma, ok := tt.e.CMASplit()
		if std != tt.std || cma != tt.cma || ok != tt.ok {
			t.Errorf("%s: CMASplit() = %d MiB, %d MiB, %v; want %d, %d, %v", tt.name, std>>20, cma>>20, ok, tt.std>>20, tt.cma>>20, tt.ok)
		}
		if ok && std+cma != tt.e.Total {
			t.Errorf("%s: the parts do not add up to the estimate", tt.name)
		}
	}
}

// The kernel's machine picks the runtime term and the formula's words.
func TestEstimateArch(t *testing.T) {
	// Debian's arm64 6.12: image_size 34.25 MiB on a 2 MiB boundary, the
	// QEMU test's 3.2 MiB image unpacking to 8.5 MiB.
	arm := &Plan{Arch: ArchARM64, KernelSize: 34891712, Arm64: &Arm64Header{ImageSize: 35913728, PageSize: 4 << 10},
		Initrd: "x", InitrdSize: 3<<20 + 200<<10}
	x86 := &Plan{Arch: ArchX86_64, KernelSize: 8 << 20, Image: &BzImage{SetupSects: 3, InitSize: 50 << 20}, Initrd: "x", InitrdSize: 3 << 20}
	other := &Plan{KernelSize: 50 << 20, Initrd: "x", InitrdSize: 3 << 20}
	for _, tt := range []struct {
		name    string
		p       *Plan
		runtime uint64
		want    string
		words   []string
	}{
		// 36 + 3.2 + 2 + 8.5 + 36 + 1 = 86.7
		{"arm64", arm, runtimeMemoryArm64, "96M", []string{"loaded kernel (image_size)", "capture kernel and capture at run time (arm64)    36.0 MiB"}},
		// 50 + 3 + 2 + 8.5 + 28 + 1 = 92.5
		{"x86_64", x86, runtimeMemory, "96M", []string{"loaded kernel (init_size)", "capture kernel and capture at run time            28.0 MiB"}},
		{"not recognised", other, runtimeMemory, "96M", []string{"loaded kernel (file size)"}},
	} {
		e := EstimateCrashkernel(tt.p, 1<<30, 8<<20+512<<10, 1)
		if e.Arch != tt.p.Arch || e.Runtime != tt.runtime || e.Value() != tt.want {
			t.Errorf("%s: arch %q, runtime %d, %s; want %d, %s\n%s", tt.name, e.Arch, e.Runtime, e.Value(), tt.runtime, tt.want, e.Formula())
		}
		for _, w := range tt.words {
			if !strings.Contains(e.Formula(), w) {
				t.Errorf("%s: formula lacks %q:\n%s", tt.name, w, e.Formula())
			}
		}
	}
}
