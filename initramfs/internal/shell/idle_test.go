package shell

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/config"
)

// manualClock is a clock the test moves: timers fire when Advance passes
// them.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
}

type timer struct {
	at time.Time
	ch chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, timer{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock on by d and fires the timers due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// waitTimer waits (in real time) until a timer is set to fire at at.
func (c *manualClock) waitTimer(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, tm := range c.timers {
			if tm.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no timer set for %v", at)
}

// TestIdleTimeout: the console waits shell_timeout for a keystroke, a
// keystroke (even one that ends no line) starts the wait again, and with
// none for shell_timeout the console is left for final_action: an
// unattended machine never stays there.
func TestIdleTimeout(t *testing.T) {
	clock := newManualClock()
	start := clock.Now()
	w := newWorld(t, clock)
	w.cfg.ShellTimeout = 5 * time.Minute
	pr, pw := io.Pipe()
	defer pw.Close()
	var mu sync.Mutex
	var leases []time.Duration
	done := w.session(pr, func(d time.Duration) { mu.Lock(); leases = append(leases, d); mu.Unlock() })

	clock.waitTimer(t, start.Add(5*time.Minute))
	clock.Advance(4 * time.Minute)
	io.WriteString(pw, "x") // a key, no line
	key := start.Add(4 * time.Minute)
	clock.waitTimer(t, key.Add(5*time.Minute))
	clock.Advance(2 * time.Minute) // the first wait's timer fires; 2 minutes since the key
	clock.waitTimer(t, key.Add(5*time.Minute))
	select {
	case a := <-done:
		t.Fatalf("left with %q 2 minutes after a keystroke", a)
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(3 * time.Minute)
	if a := wait(t, done); a != config.ActionPoweroff {
		t.Errorf("left with %q, want final_action poweroff", a)
	}
	if got := clock.Now().Sub(key); got != 5*time.Minute {
		t.Errorf("left %v after the last keystroke", got)
	}
	if !strings.Contains(w.out.String(), "console: no keystroke for 5m0s: leaving it") {
		t.Error("no word of the timeout")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leases) == 0 || leases[0] != 5*time.Minute+LeaseGrace {
		t.Errorf("leases %v", leases)
	}
}

// TestEditor: the keys the line editor acts on, echoed as a terminal
// shows them.
func TestEditor(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		lines      []string
		echo       string
	}{
		{"plain", "ls\n", []string{"ls"}, "> ls\n"},
		{"cr lf", "a\r\nb\rc\n", []string{"a", "b", "c"}, "> a\n> b\n> c\n"},
		{"backspace", "lx\x7fs\n", []string{"ls"}, "> lx\b \bs\n"},
		{"utf-8 backspace", "é\x7fe\n", []string{"e"}, "> é\b \be\n"},
		{"kill line", "abc\x15ls\n", []string{"ls"}, "> abc\b \b\b \b\b \bls\n"},
		{"arrows ignored", "l\x1b[As\x1bOB\n", []string{"ls"}, "> ls\n"},
		{"interrupt", "abc\x03ls\n", []string{"", "ls"}, "> abc^C\n> ls\n"},
		{"eof on empty", "\x04", nil, "> \n"},
		{"eof mid-line ignored", "a\x04b\n", []string{"ab"}, "> ab\n"},
		{"tab ignored", "l\ts\n", []string{"ls"}, "> ls\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			in := newInput(strings.NewReader(tc.keys), newManualClock(), nil)
			e := &editor{in: in, out: &out, echo: true, idle: time.Hour}
			var got []string
			for {
				l, err := e.readLine("> ")
				if err == io.EOF {
					break
				}
				if err != nil && err != errInterrupted {
					t.Fatal(err)
				}
				got = append(got, l)
			}
			if strings.Join(got, "|") != strings.Join(tc.lines, "|") {
				t.Errorf("lines %q, want %q", got, tc.lines)
			}
			if o := strings.TrimSuffix(out.String(), "> "); o != tc.echo {
				t.Errorf("echo %q, want %q", o, tc.echo)
			}
		})
	}
}
