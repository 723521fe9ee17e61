package collect

import (
	"strings"
	"testing"
)

func TestKernelNote(t *testing.T) {
	const meminfo = "MemTotal:          95216 kB\nMemFree:           70000 kB\nMemAvailable:      61952 kB\nBuffers:               0 kB\n"
	for _, tt := range []struct {
		meminfo string
		cpus    int
		want    string
	}{
		{meminfo, 2, "capture kernel: 2 CPUs, 93.0 MiB of memory, 60.5 MiB available"},
		{meminfo, 1, "capture kernel: 1 CPU, 93.0 MiB of memory, 60.5 MiB available"},
		// An old kernel without MemAvailable, and no /proc at all.
		{"MemTotal: 1024 kB\n", 1, "capture kernel: 1 CPU, 1.0 MiB of memory"},
		{"", 4, "capture kernel: 4 CPUs"},
		{"MemTotal: lots kB\nMemAvailable:\n", 1, "capture kernel: 1 CPU"},
	} {
		if got := KernelNote([]byte(tt.meminfo), tt.cpus); got != tt.want {
			t.Errorf("KernelNote(%q, %d) = %q, want %q", tt.meminfo, tt.cpus, got, tt.want)
		}
	}
}

func TestMemoryNote(t *testing.T) {
	if got, want := MemoryNote([]byte("MemTotal: 79462 kB\nMemAvailable: 36045 kB\n")), "memory left: 35.2 MiB available of 77.6 MiB"; got != want {
		t.Errorf("MemoryNote = %q, want %q", got, want)
	}
	full := "MemTotal: 79462 kB\nMemAvailable: 36045 kB\nKernelStack: 1536 kB\nPercpu: 1280 kB\n"
	if got, want := MemoryNote([]byte(full)), "memory left: 35.2 MiB available of 77.6 MiB (per-CPU areas 1.2 MiB, kernel stacks 1.5 MiB)"; got != want {
		t.Errorf("MemoryNote = %q, want %q", got, want)
	}
	if got := MemoryNote([]byte("MemTotal: 79462 kB\n")); !strings.Contains(got, "unknown") {
		t.Errorf("MemoryNote without MemAvailable = %q", got)
	}
}
