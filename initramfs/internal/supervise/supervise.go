package supervise

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"golang.org/x/sys/unix"
)

// The child process's environment: its role, and the supervisor's
// start time (Unix nanoseconds), so that both print one clock.
const (
	EnvRole  = "GOKDUMP_ROLE"
	EnvStart = "GOKDUMP_START"
)

// The roles of a child process.
const (
	// RoleCapture saves the dump (collect.Capture).
	RoleCapture = "capture"
	// RoleShell is the operator's console (package shell): it reads the
	// console, and asks for its time as it goes (Lease).
	RoleShell = "shell"
)

// ResultFD is the capture process's end of the result pipe: its first
// ExtraFiles entry.
const ResultFD = 3

// maxReport bounds what the supervisor reads of one message.
const maxReport = 1 << 16

// DefaultGrace is how long the supervisor waits for a report once the
// capture process has exited (everything it wrote is in the pipe by
// then), and for its exit once it has reported.
const DefaultGrace = 5 * time.Second

// Options say what to run and how long to wait for it.
type Options struct {
	// Path is the executable run as the child process, with Env and
	// the role variables added; Role is its role (RoleCapture when "").
	Path string
	Env  []string
	Role string
	// Out takes the child process's standard output and error: the
	// console. An *os.File is handed over as it is. In, if set, is its
	// standard input (the console's keyboard, for RoleShell).
	Out io.Writer
	In  io.Reader
	// Lease lets the child move its deadline: each lease it sends
	// (Lease) sets the deadline that long from when it arrives. Without
	// it leases are ignored and Deadline holds.
	Lease bool
	// Console is the supervisor's own, for the line it may need to end.
	Console *collect.Console
	Clock   collect.Clock
	// Start is when the capture began (the console's clock), Deadline
	// when it must be over, and Budget the time_budget that set it.
	Start    time.Time
	Deadline time.Time
	Budget   time.Duration
	// Grace: see DefaultGrace. Zero means DefaultGrace.
	Grace time.Duration
	// InProcess runs the capture in this process, by the deadline, when
	// no capture process can be started (no memory for a second Go
	// runtime): collect.RunWithin.
	InProcess func(why error) collect.Result
}

// Run runs the capture process and returns its result, or a failed one,
// by o.Deadline at the latest. Whatever is left of the capture process
// and its descendants when Run returns is killed.
func Run(o Options) collect.Result {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return o.InProcess(err)
	}
	if o.Role == "" {
		o.Role = RoleCapture
	}
	cmd := exec.Command(o.Path)
	cmd.Env = append(slices.Clone(o.Env), EnvRole+"="+o.Role, EnvStart+"="+strconv.FormatInt(o.Start.UnixNano(), 10))
	cmd.Stdout, cmd.Stderr, cmd.Stdin = o.Out, o.Out, o.In
	cmd.ExtraFiles = []*os.File{pw}
	// A process group of its own, so that its descendants die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// When Out is not a file, Wait copies until every holder of the
	// output pipe is gone: a descendant must not stretch that.
	cmd.WaitDelay = o.Grace
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return o.InProcess(err)
	}
	pw.Close()
	defer pr.Close() // unblocks the reader if it is still waiting
	killGroup := func() { unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }

	reported := make(chan collect.Result, 1)
	leases := make(chan time.Duration, 1)
	go func() {
		// Messages are JSON objects, one a line: leases, then the report,
		// which is taken as soon as it is complete, whoever else keeps
		// the pipe open.
		defer close(reported)
		br := bufio.NewReaderSize(pr, 4096)
		for {
			line, err := readLine(br, maxReport)
			var m message
			if len(line) > 0 && json.Unmarshal(line, &m) == nil {
				if m.Status != "" {
					reported <- m.Result
					return
				}
				if m.LeaseMS > 0 {
					// The newest lease wins: an older one not taken yet
					// is dropped.
					select {
					case <-leases:
					default:
					}
					leases <- time.Duration(m.LeaseMS) * time.Millisecond
				}
			}
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The loop below sets these to nil once they have delivered.
	reports, exits := (<-chan collect.Result)(reported), (<-chan error)(exited)

	until := func(t time.Time) time.Duration { return t.Sub(o.Clock.Now()) }
	deadline := o.Clock.After(until(o.Deadline))
	var grace <-chan time.Time
	startGrace := func() {
		if grace == nil {
			grace = o.Clock.After(min(o.Grace, until(o.Deadline)))
		}
	}
	var (
		report  *collect.Result
		exitErr error
		late    bool
	)
wait:
	for reports != nil || exits != nil {
		select {
		case r, ok := <-reports:
			reports = nil
			if ok {
				report = &r
			}
			startGrace()
		case exitErr = <-exits:
			exits = nil
			startGrace()
		case d := <-leases:
			if o.Lease && report == nil && exits != nil {
				deadline = o.Clock.After(d)
			}
		case <-grace:
			break wait
		case <-deadline:
			late = true
			break wait
		}
	}
	// The capture and whatever it left behind end here, reported or not:
	// whatever it is stuck in cannot stop the action. Killed, it writes
	// no more; nobody waits for it.
	killGroup()
	if report != nil {
		return *report
	}
	o.Console.Break()
	switch {
	case late && exits != nil && o.Lease:
		return collect.Failedf("the %s process outlived the time it asked for (a stuck command?); it was stopped", o.Role)
	case late && exits != nil:
		return collect.BudgetExceeded(o.Budget)
	case exits != nil:
		return collect.Failedf("the capture process closed its result pipe without a result and did not exit within %v", o.Grace)
	}
	return collect.Failedf("the capture process died (%s) before it could report", ExitReason(exitErr))
}

// ExitReason says how a process ended, from exec.Cmd.Wait's error.
func ExitReason(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Signaled():
				return "killed by signal " + ws.Signal().String()
			case ws.ExitStatus() == 2:
				return "exit status 2: a Go panic or fatal error, see above"
			}
		}
		return ee.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// message is what a child sends through the result pipe: a lease, or
// its report (Status set).
type message struct {
	collect.Result
	LeaseMS int64 `json:"lease_ms,omitempty"`
}

// readLine reads up to a newline or the end, keeping at most max bytes of
// a line (a longer one is not a message).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= max {
			line = append(line, chunk...)
		} else {
			line = append(line[:0], "overlong"...)
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// IsCapture reports whether this process is the capture process.
func IsCapture() bool { return os.Getenv(EnvRole) == RoleCapture }

// Role is this process's role, "" for PID 1.
func Role() string { return os.Getenv(EnvRole) }

// Lease tells the supervisor to wait d more from now, on the child's
// end of the result pipe. The caller keeps leases and the report from
// being written at once.
func Lease(w io.Writer, d time.Duration) error {
	b, err := json.Marshal(message{LeaseMS: max(d.Milliseconds(), 1)})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Start returns the supervisor's start time, handed down in EnvStart.
func Start() (time.Time, bool) {
	ns, err := strconv.ParseInt(os.Getenv(EnvStart), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// ResultPipe returns the capture process's end of the result pipe, made
// close-on-exec: call it first thing, before anything can execute a
// program that would inherit it. It refuses an fd 3 that is not a pipe.
func ResultPipe() (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(ResultFD, &st); err != nil {
		return nil, fmt.Errorf("supervise: result pipe on fd %d: %w", ResultFD, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, fmt.Errorf("supervise: fd %d is not the result pipe (mode %#o)", ResultFD, st.Mode)
	}
	unix.CloseOnExec(ResultFD)
	return os.NewFile(ResultFD, "result"), nil
}

// Report sends res to the supervisor and closes the pipe. The newline
// ends the message: the supervisor takes it then, whoever else keeps the
// pipe open.
func Report(w io.WriteCloser, res collect.Result) error {
	b, err := json.Marshal(res)
	if err != nil {
		w.Close()
		return err
	}
	_, err = w.Write(append(b, '\n'))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}
