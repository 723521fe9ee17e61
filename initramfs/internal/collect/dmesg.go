package collect

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/config"
)

// The kernel log is read from the crashed kernel's memory before the
// dump, and that memory is hostile: a corrupt ring (count_bits 31, or
// records whose data blocks overlap 8 bytes apart and add up to
// gigabytes of text) must not spend the capture's time or the capture
// kernel's memory. So the read has limits of its own:
const (
	// LogReadMax bounds the crashed kernel's memory the log reader may
	// read: descriptors, infos and text. A 4 MiB ring (CONFIG_LOG_BUF_SHIFT
	// 22, far above distribution defaults) needs about 18 MiB.
	LogReadMax = 32 << 20
	// LogTextMax bounds the log kept: the newest records that fit.
	LogTextMax = 8 << 20
	// logGrace is how long, once the budget is spent and every read
	// fails, the reader has to return the records it has.
	logGrace = time.Second
)

// LogBudget is how long reading the kernel log may take: a twentieth of
// time_budget, from 2 to 20 seconds. A sound log takes milliseconds.
func LogBudget(timeBudget time.Duration) time.Duration {
	return min(max(timeBudget/20, 2*time.Second), 20*time.Second)
}

// Why a log read was cut.
var (
	errLogTime  = errors.New("time budget of the kernel log spent")
	errLogBytes = errors.New("read limit of the kernel log reached")
)

// budgetReader is the crashed kernel's memory as the log reader sees it:
// every read fails once the deadline has passed, LogReadMax is read, or
// the capture has stopped waiting.
type budgetReader struct {
	pr       kmem.PhysReader
	now      func() time.Time
	deadline time.Time
	max      int64
	read     atomic.Int64
	cut      atomic.Pointer[error] // why reads fail, once they do
}

func (b *budgetReader) stop(err error) { b.cut.CompareAndSwap(nil, &err) }

func (b *budgetReader) ReadPhys(p []byte, addr uint64) (int, error) {
	if err := b.cut.Load(); err != nil {
		return 0, *err
	}
	if b.now().After(b.deadline) {
		b.stop(errLogTime)
		return 0, errLogTime
	}
	if b.read.Add(int64(len(p))) > b.max {
		b.stop(errLogBytes)
		return 0, errLogBytes
	}
	return b.pr.ReadPhys(p, addr)
}

// readDmesg returns the crashed kernel's log in makedumpfile --dump-dmesg's
// format, nil when it cannot be read within its budget, and its panic
// line. It says on the console what it got and, when it got nothing, that
// the dump is saved without it. The returned flag stays set while a
// reader it stopped waiting for may still read f.
func readDmesg(env *Env, cfg *config.Config, f *vmcore.File) ([]byte, string, *atomic.Bool) {
	budget := LogBudget(cfg.TimeBudget)
	br := &budgetReader{pr: f, now: env.Clock.Now, deadline: env.Clock.Now().Add(budget), max: LogReadMax}
	type logOut struct {
		text    []byte
		records int
		skipped int
		dropped int
		reason  string
		err     error
	}
	busy := new(atomic.Bool)
	busy.Store(true)
	done := make(chan logOut, 1)
	go func() {
		var o logOut
		defer func() {
			// A parser bug on hostile data must not kill the capture.
			if r := recover(); r != nil {
				o = logOut{err: fmt.Errorf("panic: %v", r)}
			}
			busy.Store(false)
			done <- o
		}()
		l, err := env.ReadLog(br, f.VMCOREINFO, f.Machine)
		if err != nil {
			o.err = err
			return
		}
		o.dropped = keepNewest(l, LogTextMax)
		var b bytes.Buffer
		if err := l.WriteDmesg(&b); err != nil {
			o.err = err
			return
		}
		o.text = cutHead(b.Bytes(), LogTextMax)
		o.records, o.skipped = len(l.Records), l.Skipped
		o.reason, _ = l.Panic()
	}()

	var o logOut
	select {
	case o = <-done:
	case <-env.Clock.After(budget):
		// Every read fails from now on; a reader that reads gives up
		// soon. One that does not is left behind.
		br.stop(errLogTime)
		select {
		case o = <-done:
		case <-env.Clock.After(logGrace):
			env.logf("kernel log: not read within its budget of %v; the dump is saved without it", budget)
			return nil, "", busy
		}
	}
	if o.err != nil {
		env.logf("kernel log: %v; the dump is saved without it", o.err)
		return nil, "", busy
	}
	if cut := br.cut.Load(); cut != nil {
		env.logf("kernel log: %v after %v and %.1f MiB read: %d records kept, the rest skipped",
			*cut, budget.Round(time.Millisecond), float64(min(br.read.Load(), br.max))/(1<<20), o.records)
	} else if o.skipped > 0 {
		env.logf("kernel log: %d records, %d damaged ones skipped", o.records, o.skipped)
	}
	if o.dropped > 0 {
		env.logf("kernel log: the %d oldest records dropped to keep it within %d MiB", o.dropped, LogTextMax>>20)
	}
	if o.reason != "" {
		env.logf("crash reason: %s", printk.Printable(o.reason))
	}
	return o.text, o.reason, busy
}

// keepNewest drops the oldest records of l until their text fits in max
// bytes, and returns how many it dropped.
func keepNewest(l *printk.Log, max int) int {
	n, i := 0, len(l.Records)
	for i > 0 && n+len(l.Records[i-1].Text) <= max {
		n += len(l.Records[i-1].Text)
		i--
	}
	l.Records = l.Records[i:]
	return i
}

// cutHead keeps the last max bytes of text, from a line's start. The
// text's escapes can make it longer than the records' text.
func cutHead(text []byte, max int) []byte {
	if len(text) <= max {
		return text
	}
	text = text[len(text)-max:]
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[i+1:]
	}
	return bytes.Clone(text)
}
