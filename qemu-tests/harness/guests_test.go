package harness

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParallel(t *testing.T) {
	for v, want := range map[string]int{"": 2, "1": 1, "3": 3, "0": 2, "-1": 2, "two": 2} {
		if got := parallel(v); got != want {
			t.Errorf("parallel(%q) = %d, want %d", v, got, want)
		}
	}
}

// TestGuest: of many tests that want a guest at once, two run.
func TestGuest(t *testing.T) {
	limit := cap(guests)
	var running, most atomic.Int32
	var wg sync.WaitGroup
	for range 3 * limit {
		wg.Go(func() {
			done := Guest()
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(30 * time.Millisecond)
			running.Add(-1)
			done()
		})
	}
	wg.Wait()
	if got := int(most.Load()); got != limit {
		t.Errorf("at most %d guests ran at once, want %d", got, limit)
	}
}
