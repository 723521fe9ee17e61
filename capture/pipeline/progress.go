package pipeline

import (
	"fmt"
	"time"
)

// ProgressLine formats the progress of a dump: percent of pages, MiB of
// memory done, speed and time left.
func ProgressLine(done, total, pageSize uint64, elapsed time.Duration) string {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	mib := float64(done*pageSize) / (1 << 20)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = mib / s
	}
	eta := "--:--"
	if rate > 0 && done <= total {
		left := time.Duration(float64(total-done) * float64(pageSize) / (1 << 20) / rate * float64(time.Second))
		eta = fmt.Sprintf("%d:%02d", int(left.Minutes()), int(left.Seconds())%60)
	}
	return fmt.Sprintf("saving %3.0f%% %8.1f MiB %7.1f MiB/s ETA %s ", pct, mib, rate, eta)
}
