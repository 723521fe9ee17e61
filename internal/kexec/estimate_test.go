package kexec

import (
	"strings"
	"testing"
)

func TestEstimateCrashkernel(t *testing.T) {
	p := &Plan{KernelSize: 50 << 20, InitrdSize: 2 << 20, Initrd: "x"}
	for _, tt := range []struct {
		ram, unpacked uint64
		want          string
	}{
		// 50 + 2 + 2 (segments) + 5 + 28 + 1 (1 GiB of RAM: 8 KiB, a
		// whole MiB) = 88 → 96M
		{1 << 30, 5 << 20, "96M"},
		{1 << 30, 0, "96M"}, // unknown: a host-only image is assumed
		{1 << 30, 12 << 20, "96M"},
		{1 << 30, 18 << 20, "112M"},   // 101
		{512 << 20, 12 << 20, "96M"},  // half a GiB is not charged a whole TiB's 8 MiB
		{2 << 40, 5 << 20, "112M"},    // 54 + 5 + 28 + 16 = 103
		{1 << 40, 22 << 20, "112M"},   // 54 + 22 + 28 + 8 = 112, a multiple of 16 MiB
		{1<<40 + 1, 22 << 20, "128M"}, // one byte more is one MiB more
		{128 << 30, 22 << 20, "112M"}, // 54 + 22 + 28 + 1
		{129 << 30, 22 << 20, "112M"}, // 54 + 22 + 28 + 2
		{129 << 30, 29 << 20, "128M"}, // 54 + 29 + 28 + 2
	} {
		e := EstimateCrashkernel(p, tt.ram, tt.unpacked)
		if e.Value() != tt.want {
			t.Errorf("ram %d unpacked %d: %s, want %s\n%s", tt.ram, tt.unpacked, e.Value(), tt.want, e.Formula())
		}
		if !strings.Contains(e.Formula(), "crashkernel="+tt.want) {
			t.Errorf("formula lacks the value:\n%s", e.Formula())
		}
	}
	e := EstimateCrashkernel(p, 3<<29, 5<<20)
	for _, want := range []string{"8 MiB per TiB of RAM, for 1.5 GiB", "rounded up to a multiple of 16 MiB: crashkernel=96M\n", "= "} {
		if !strings.Contains(e.Formula(), want) {
			t.Errorf("formula lacks %q:\n%s", want, e.Formula())
		}
	}
	// A kernel alone (an initramfs built in) unpacks nothing extra.
	if e := EstimateCrashkernel(&Plan{KernelSize: 18 << 20}, 1<<30, 0); e.Unpacked != 0 {
		t.Errorf("no initrd: unpacked %d", e.Unpacked)
	}
}
