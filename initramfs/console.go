package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gokdump/gokdump/capture/pipeline"
)

// The console: log lines, the machine-readable result lines, and the
// progress line, which is rewritten in place with \r and must be ended
// before anything else is printed.

var (
	// start is when the capture began: the supervisor's start, handed to
	// the capture process so both print the same clock.
	start = time.Now()

	conMu    sync.Mutex
	conOut   io.Writer = os.Stdout
	progOpen bool      // a progress line is on the console, not ended
)

// endProgressLocked ends an open progress line.
func endProgressLocked() {
	if progOpen {
		io.WriteString(conOut, "\n")
		progOpen = false
	}
}

// logf prints a timestamped note.
func logf(format string, args ...any) {
	conMu.Lock()
	defer conMu.Unlock()
	endProgressLocked()
	fmt.Fprintf(conOut, "gokdump: [%7.3f] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// result prints one of the machine-readable lines README documents
// ("gokdump: saved …", "gokdump: INCOMPLETE …", "gokdump: FAILED …",
// "gokdump: LEFTOVER …", "gokdump: ACTION …").
func result(format string, args ...any) {
	conMu.Lock()
	defer conMu.Unlock()
	endProgressLocked()
	fmt.Fprintf(conOut, "gokdump: "+format+"\n", args...)
}

// progress rewrites one console line with how far the dump is, at most
// every interval: serial consoles are slow, and slower still under
// emulation. At 25, 50, 75 and 100% the line is ended, so a log that
// keeps whole lines only still shows the dump's course. It also makes
// the dump durable as it goes: a power cut then leaves a readable part.
type progress struct {
	interval time.Duration
	pageSize uint64
	begin    time.Time
	last     time.Time
	quarter  int // the last quarter (25%, 50%, …) reached
	// show prints the line; without it only checkpoints and hooks run.
	show bool
	// checkpoint, if set, makes what is written so far durable. It runs
	// at every quarter, before the line saying so (so a reader of the
	// console knows that much is on disk), and every checkpointEvery.
	checkpoint      func()
	checkpointEvery time.Duration
	lastCheckpoint  time.Time
	// hook, for tests of the capture path, runs on every update.
	hook func()
}

func newProgress(pageSize uint64, show bool) *progress {
	now := time.Now()
	return &progress{interval: 500 * time.Millisecond, pageSize: pageSize, begin: now, show: show,
		checkpointEvery: 5 * time.Second, lastCheckpoint: now}
}

// update is pipeline.Options.Progress: done of total pages written. It runs
// in the goroutine that writes the dump.
func (p *progress) update(done, total uint64) {
	if p.hook != nil {
		p.hook()
	}
	now := time.Now()
	q := 4
	if total > 0 {
		q = int(4 * done / total)
	}
	milestone := q > p.quarter
	if milestone {
		p.quarter = q
	}
	if p.checkpoint != nil && (milestone || now.Sub(p.lastCheckpoint) >= p.checkpointEvery) {
		p.checkpoint()
		p.lastCheckpoint = time.Now()
	}
	if !p.show || (!milestone && now.Sub(p.last) < p.interval) {
		return
	}
	p.last = now
	line := "gokdump: " + pipeline.ProgressLine(done, total, p.pageSize, now.Sub(p.begin))
	conMu.Lock()
	defer conMu.Unlock()
	io.WriteString(conOut, "\r"+line)
	progOpen = true
	if milestone {
		// Each quarter stays on the console as a line of its own, for
		// logs that keep only whole lines.
		endProgressLocked()
	}
}

// end finishes the progress line, if one was shown.
func (p *progress) end() {
	conMu.Lock()
	defer conMu.Unlock()
	endProgressLocked()
}
