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
		// 50 + 2 + 2 (segments) + 5 + 28 + 8 = 95 → 96M
		{1 << 30, 5 << 20, "96M"},
		{1 << 30, 0, "96M"}, // unknown: a host-only image is assumed
		{1 << 30, 12 << 20, "112M"},
		{2 << 40, 5 << 20, "112M"}, // 8 MiB more per TiB
	} {
		e := EstimateCrashkernel(p, tt.ram, tt.unpacked)
		if e.Value() != tt.want {
			t.Errorf("ram %d unpacked %d: %s, want %s\n%s", tt.ram, tt.unpacked, e.Value(), tt.want, e.Formula())
		}
		if !strings.Contains(e.Formula(), "crashkernel="+tt.want) {
			t.Errorf("formula lacks the value:\n%s", e.Formula())
		}
	}
	// A kernel alone (an initramfs built in) unpacks nothing extra.
	if e := EstimateCrashkernel(&Plan{KernelSize: 18 << 20}, 1<<30, 0); e.Unpacked != 0 {
		t.Errorf("no initrd: unpacked %d", e.Unpacked)
	}
}
