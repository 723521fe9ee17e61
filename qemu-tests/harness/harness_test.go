package harness

import (
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

func TestDiedBeforeStage1(t *testing.T) {
	panicLine := "[    0.647357] Kernel panic - not syncing: Attempted to kill the idle task!"
	tests := []struct {
		name  string
		lines []string
		want  bool
	}{
		{"early panic", []string{"[    0.30] x86/fpu: x87 FPU will use FXSAVE", panicLine}, true},
		{"panic after stage1", []string{"stage1: [1.20] start, kernel 6.12", panicLine}, false},
		{"no panic", []string{"[    0.30] x86/fpu: x87 FPU will use FXSAVE"}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Run{}
			for _, l := range tt.lines {
				r.Log = append(r.Log, LogLine{Text: l})
			}
			line, got := r.diedBeforeStage1()
			if got != tt.want || (got && line != panicLine) {
				t.Errorf("diedBeforeStage1 = %q, %v; want %v", line, got, tt.want)
			}
		})
	}
}

// TestMatrixDumpsKept checks that the QEMU tests kept a real dump of every
// line of the kernel matrix for the unit tests, which find them by line:
// in strict mode (make test, CI) a line without one fails here.
func TestMatrixDumpsKept(t *testing.T) {
	for _, l := range Lines() {
		t.Run(l.Name, func(t *testing.T) {
			d := fixture.MatrixDump(t, l.Name)
			t.Logf("%s: %s (%s)", l.Name, d.Name(), d.KVer)
			if l.Dbg {
				d.NeedVMLinux(t)
			}
		})
	}
}
