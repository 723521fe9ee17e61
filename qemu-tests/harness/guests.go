package harness

import (
	"os"
	"strconv"
)

// EnvParallel bounds the guests one test process runs at once (default
// DefaultParallel): CI has two cores, and TCG takes one per guest.
const EnvParallel = "QEMU_PARALLEL"

// DefaultParallel is how many guests run at once without EnvParallel.
const DefaultParallel = 2

// guests holds one token per guest running. go test -parallel alone would
// not bound them: it defaults to GOMAXPROCS, and a test may boot more than
// one guest.
var guests = make(chan struct{}, parallel(os.Getenv(EnvParallel)))

// parallel reads EnvParallel's value: a positive number, else the default.
func parallel(v string) int {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n
	}
	return DefaultParallel
}

// Guest waits until fewer than QEMU_PARALLEL guests (2) run in this
// process and returns the function that ends this one's turn. Every boot
// of the harness takes one; a test that boots a guest by other means
// (gokdump vmtest, vmtest.Run) takes one around it. A goroutine holding a
// turn must not wait for another guest.
func Guest() (done func()) {
	guests <- struct{}{}
	return func() { <-guests }
}
