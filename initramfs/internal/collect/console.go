package collect

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gokdump/gokdump/capture/pipeline"
)

// Console is the capture's console: timestamped notes, the
// machine-readable result lines, and the progress line, which is
// rewritten in place with \r and must be ended before anything else is
// printed. It is safe for concurrent use.
type Console struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	now   func() time.Time
	open  bool // a progress line is on the console, not ended
	// kept is the newest keepMax bytes of the notes and result lines
	// (not the progress line), for kexec-dmesg.log.
	kept []byte
}

// keepMax bounds what the console keeps of what it printed.
const keepMax = 1 << 20

// NewConsole returns a console writing to w whose notes are stamped with
// the seconds since start, as now tells them. The supervisor and the
// capture process share start, so both print one clock.
func NewConsole(w io.Writer, start time.Time, now func() time.Time) *Console {
	return &Console{w: w, start: start, now: now}
}

// Start is when the capture began.
func (c *Console) Start() time.Time { return c.start }

// Elapsed is the time since Start.
func (c *Console) Elapsed() time.Duration { return c.now().Sub(c.start) }

func (c *Console) endLocked() {
	if c.open {
		io.WriteString(c.w, "\n")
		c.open = false
	}
}

// Logf prints a timestamped note: "gokdump: [  1.234] …".
func (c *Console) Logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked()
	c.printLocked(fmt.Sprintf("gokdump: [%7.3f] %s\n", c.Elapsed().Seconds(), fmt.Sprintf(format, args...)))
}

// printLocked writes a whole line and keeps it.
func (c *Console) printLocked(line string) {
	io.WriteString(c.w, line)
	if len(c.kept)+len(line) > keepMax {
		// Drop the oldest half, from a line's start.
		cut := len(c.kept) / 2
		if i := bytes.IndexByte(c.kept[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		c.kept = append(c.kept[:0], c.kept[cut:]...)
	}
	c.kept = append(c.kept, line[:min(len(line), keepMax)]...)
}

// Text returns the notes and result lines printed so far (the newest
// MiB of them).
func (c *Console) Text() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.kept)
}

// Result prints one of the machine-readable lines README documents:
// "gokdump: " and the line, alone on its line.
func (c *Console) Result(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked()
	c.printLocked(fmt.Sprintf("gokdump: "+format+"\n", args...))
}

// Break ends whatever line another process may have left open on the
// same console (the capture process's progress line) before the
// supervisor prints.
func (c *Console) Break() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open = true
	c.endLocked()
}

// progress rewrites one console line with how far the dump is, at most
// every interval: serial consoles are slow, and slower still under
// emulation. At 25, 50, 75 and 100% the line is ended, so a log that
// keeps whole lines only still shows the dump's course. It also makes
// the dump durable as it goes: a power cut then leaves a readable part.
type progress struct {
	con      *Console
	now      func() time.Time
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
	// hook (Hooks.Writing) runs on every update.
	hook func()
}

func newProgress(con *Console, now func() time.Time, pageSize uint64, show bool) *progress {
	t := now()
	return &progress{con: con, now: now, interval: 500 * time.Millisecond, pageSize: pageSize, begin: t, show: show,
		checkpointEvery: 5 * time.Second, lastCheckpoint: t}
}

// update is pipeline.Options.Progress: done of total pages written. It runs
// in the goroutine that writes the dump.
func (p *progress) update(done, total uint64) {
	if p.hook != nil {
		p.hook()
	}
	now := p.now()
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
		p.lastCheckpoint = p.now()
	}
	if !p.show || (!milestone && now.Sub(p.last) < p.interval) {
		return
	}
	p.last = now
	line := "gokdump: " + pipeline.ProgressLine(done, total, p.pageSize, now.Sub(p.begin))
	c := p.con
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.w, "\r"+line)
	c.open = true
	if milestone {
		// Each quarter stays on the console as a line of its own, for
		// logs that keep only whole lines.
		c.endLocked()
	}
}

// end finishes the progress line, if one was shown.
func (p *progress) end() {
	p.con.mu.Lock()
	defer p.con.mu.Unlock()
	p.con.endLocked()
}
