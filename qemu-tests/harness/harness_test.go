package harness

import (
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

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
