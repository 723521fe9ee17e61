package shell

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gokdump/gokdump/initramfs/internal/collect"
)

// Keys the line editor acts on.
const (
	keyInterrupt = 0x03 // ^C
	keyEOF       = 0x04 // ^D
	keyBackspace = 0x08
	keyKill      = 0x15 // ^U
	keyEscape    = 0x1b
	keyDelete    = 0x7f
)

const (
	// maxPending bounds the keystrokes kept while a command runs.
	maxPending = 4096
	// maxLine bounds a command line.
	maxLine = 4096
)

var (
	// errIdle: no keystroke for the idle timeout.
	errIdle = errors.New("no keystroke")
	// errInterrupted: ^C at the prompt.
	errInterrupted = errors.New("interrupted")
)

// input is the console's keyboard: a goroutine reads it all the time, so
// that a keystroke counts (for the idle timeout) and ^C stops the running
// command even while nobody reads a line.
type input struct {
	clock collect.Clock

	mu      sync.Mutex
	pending []byte
	eof     error // the read error that ended the input
	notify  chan struct{}

	lastKey atomic.Int64 // Unix nanoseconds of the last keystroke, on clock
	// stop, while a command runs, cancels it (^C).
	stop atomic.Pointer[context.CancelFunc]
	// onKey, if set, is called on every keystroke (the supervisor's lease).
	onKey func()
}

func newInput(r io.Reader, clock collect.Clock, onKey func()) *input {
	in := &input{clock: clock, notify: make(chan struct{}, 1), onKey: onKey}
	in.lastKey.Store(clock.Now().UnixNano())
	go in.read(r)
	return in
}

func (in *input) read(r io.Reader) {
	buf := make([]byte, 256)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			in.lastKey.Store(in.clock.Now().UnixNano())
			if in.onKey != nil {
				in.onKey()
			}
			b := buf[:n]
			if stop := in.stop.Load(); stop != nil && bytes.IndexByte(b, keyInterrupt) >= 0 {
				(*stop)()
				b = bytes.ReplaceAll(b, []byte{keyInterrupt}, nil)
			}
			in.mu.Lock()
			in.pending = append(in.pending, b[:min(len(b), maxPending-len(in.pending))]...)
			in.mu.Unlock()
			in.wake()
		}
		if err != nil {
			in.mu.Lock()
			in.eof = err
			in.mu.Unlock()
			in.wake()
			return
		}
	}
}

func (in *input) wake() {
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// take returns the keystrokes not read yet, and the input's end, if it
// ended.
func (in *input) take() ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	b := in.pending
	in.pending = nil
	return b, in.eof
}

// unread puts keystrokes back, in front: those after a line's end.
func (in *input) unread(b []byte) {
	if len(b) == 0 {
		return
	}
	in.mu.Lock()
	in.pending = append(bytes.Clone(b), in.pending...)
	in.mu.Unlock()
	in.wake()
}

// editor reads command lines from an input, echoing what it takes when
// the terminal does not (echo).
type editor struct {
	in   *input
	out  io.Writer
	echo bool
	idle time.Duration
}

// readLine prints prompt and returns the line typed, without its end. It
// returns errIdle when no key was pressed for the idle time since the
// prompt or the last keystroke, errInterrupted for ^C, and io.EOF for
// ^D on an empty line or the input's end.
func (e *editor) readLine(prompt string) (string, error) {
	io.WriteString(e.out, prompt)
	shown := e.in.clock.Now()
	var line []byte
	esc := 0    // 1: after ESC; 2: in a CSI sequence
	cr := false // the last key was \r: a \n after it is the same end
	for {
		keys, end := e.in.take()
		for i := 0; i < len(keys); i++ {
			c := keys[i]
			if esc > 0 {
				// Arrow and function keys: ESC [ … final, ESC O x.
				switch {
				case esc == 1 && (c == '[' || c == 'O'):
					esc = 2
				case esc == 2 && (c < 0x40 || c > 0x7e):
				default:
					esc = 0
				}
				continue
			}
			if cr && c == '\n' {
				cr = false
				continue
			}
			cr = false
			switch {
			case c == '\r' || c == '\n':
				cr = c == '\r'
				e.put("\n")
				rest := keys[i+1:]
				if cr && len(rest) > 0 && rest[0] == '\n' {
					rest = rest[1:]
				}
				e.in.unread(rest)
				return string(line), nil
			case c == keyInterrupt:
				e.put("^C\n")
				e.in.unread(keys[i+1:])
				return "", errInterrupted
			case c == keyEOF:
				if len(line) == 0 {
					e.put("\n")
					return "", io.EOF
				}
			case c == keyBackspace || c == keyDelete:
				if len(line) > 0 {
					_, n := utf8.DecodeLastRune(line)
					line = line[:len(line)-n]
					e.put("\b \b")
				}
			case c == keyKill:
				for n := utf8.RuneCount(line); n > 0; n-- {
					e.put("\b \b")
				}
				line = line[:0]
			case c == keyEscape:
				esc = 1
			case c < 0x20:
				// Other control keys (tab among them) do nothing.
			case len(line) < maxLine:
				line = append(line, c)
				e.put(string([]byte{c}))
			}
		}
		if end != nil {
			if len(line) > 0 {
				e.put("\n")
				return string(line), nil
			}
			return "", io.EOF
		}
		last := time.Unix(0, e.in.lastKey.Load())
		if shown.After(last) {
			last = shown
		}
		wait := e.idle - e.in.clock.Now().Sub(last)
		if wait <= 0 {
			return "", errIdle
		}
		select {
		case <-e.in.notify:
		case <-e.in.clock.After(wait):
		}
	}
}

func (e *editor) put(s string) {
	if e.echo {
		io.WriteString(e.out, s)
	}
}
