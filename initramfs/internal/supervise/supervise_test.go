package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/sys/unix"
)

// The supervisor runs the test binary itself as the capture process:
// TestMain turns it into one that misbehaves as $GOKDUMP_TEST_CHILD says,
// and, with $GOKDUMP_TEST_GRANDCHILD set, into a descendant that sleeps
// holding whatever it inherited.
const (
	envTestChild  = "GOKDUMP_TEST_CHILD"
	envGrandchild = "GOKDUMP_TEST_GRANDCHILD"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envGrandchild) != "":
		fmt.Printf("grandchild pid=%d\n", os.Getpid())
		time.Sleep(time.Minute)
		os.Exit(0)
	case IsCapture():
		testChild(os.Getenv(envTestChild))
	}
	os.Exit(m.Run())
}

// testChild is the capture process of the tests.
func testChild(role string) {
	pipe, err := ResultPipe()
	start, ok := Start()
	if err != nil || !ok {
		fmt.Printf("child: result pipe %v, start %v\n", err, ok)
		os.Exit(1)
	}
	con := collect.NewConsole(os.Stdout, start, time.Now)
	res := collect.Result{Status: collect.StatusSaved, Path: "/var/crash/x/vmcore", Bytes: 42, Level: 31, Format: "kdump"}
	// spawn starts a grandchild that holds the result pipe's write end.
	spawn := func() {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envGrandchild+"=1")
		cmd.Stdout = os.Stdout
		cmd.ExtraFiles = []*os.File{pipe}
		if err := cmd.Start(); err != nil {
			con.Logf("spawn: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // until it has said its pid
	}
	switch role {
	case "saved":
		con.Logf("child says hello")
	case "panic":
		cfg := config.Default()
		res = collect.Capture(&collect.Env{Console: con, Hooks: collect.Hooks{Start: func() { panic("boom in the capture goroutine") }}}, &cfg)
	case "goroutine":
		go func() { panic("boom in another goroutine") }()
		time.Sleep(time.Minute)
	case "hang":
		var p [2]int
		unix.Pipe(p[:])
		var b [1]byte
		unix.Read(p[0], b[:])
	case "exit":
		os.Exit(0)
	case "oom":
		unix.Kill(os.Getpid(), unix.SIGKILL)
	case "cloexec":
		flags, err := unix.FcntlInt(ResultFD, unix.F_GETFD, 0)
		res.Reason = fmt.Sprintf("close-on-exec=%v (%v)", flags&unix.FD_CLOEXEC != 0, err)
	case "leak-exit":
		// A descendant keeps the pipe open; the capture dies unreported.
		spawn()
		os.Exit(0)
	case "leak-report":
		// A descendant keeps the pipe open; the capture reports, then
		// never exits.
		spawn()
		Report(pipe, res)
		for {
			time.Sleep(time.Hour)
		}
	case "lease":
		// Asks for more time twice, past the first deadline, then reports.
		for i := 0; i < 2; i++ {
			Lease(pipe, 2*time.Second)
			time.Sleep(1500 * time.Millisecond)
		}
	case "lease-hang":
		Lease(pipe, 500*time.Millisecond)
		time.Sleep(time.Minute)
	case "garbage":
		pipe.Write([]byte("{\"status\": \"saved\", "))
		pipe.Close()
		time.Sleep(time.Minute)
	}
	if err := Report(pipe, res); err != nil {
		con.Logf("report: %v", err)
	}
	os.Exit(0)
}

// consoleFile is a console the capture process writes as it would
// /dev/console: a file (a pipe), drained into a buffer.
type consoleFile struct {
	w    *os.File
	mu   sync.Mutex
	b    bytes.Buffer
	done chan struct{}
}

func newConsoleFile(t *testing.T) *consoleFile {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &consoleFile{w: w, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			c.mu.Lock()
			c.b.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				r.Close()
				return
			}
		}
	}()
	t.Cleanup(func() { w.Close() })
	return c
}

// Write goes through the pipe too, as PID 1's console writes and the
// capture process's share /dev/console: one order for both.
func (c *consoleFile) Write(p []byte) (int, error) { return c.w.Write(p) }

// drained returns everything written, once every writer is gone (or
// after a few seconds).
func (c *consoleFile) drained() string {
	c.w.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// supervisedRun is PID 1 of the tests: the capture process supervised,
// then the result line and the action, which is recorded.
type supervisedRun struct {
	res     collect.Result
	took    time.Duration // from the start to the action
	actions []config.Action
	console string
}

func runChild(t *testing.T, child string, budget, grace time.Duration) supervisedRun {
	t.Helper()
	return runChildLease(t, child, budget, grace, false)
}

func runChildLease(t *testing.T, child string, budget, grace time.Duration, lease bool) supervisedRun {
	t.Helper()
	t.Setenv(envTestChild, child)
	con := newConsoleFile(t)
	start := time.Now()
	var r supervisedRun
	env := &collect.Env{Console: collect.NewConsole(con, start, time.Now), Clock: collect.RealClock{},
		Act: func(a config.Action) { r.actions = append(r.actions, a) }}
	cfg := config.Default()
	cfg.TimeBudget, cfg.FailureAction, cfg.FinalAction = budget, config.ActionPoweroff, config.ActionHalt
	r.res = Run(Options{
		Path: os.Args[0], Env: os.Environ(), Out: con.w, Console: env.Console, Clock: env.Clock,
		Start: start, Deadline: start.Add(budget), Budget: budget, Grace: grace, Lease: lease,
		InProcess: func(why error) collect.Result { t.Fatalf("no capture process: %v", why); return collect.Result{} },
	})
	collect.Finish(env, &cfg, r.res)
	r.took = time.Since(start)
	r.console = con.drained()
	if t.Failed() {
		t.Logf("console:\n%s", r.console)
	}
	return r
}

func TestSupervise(t *testing.T) {
	const minute = time.Minute
	for _, tc := range []struct {
		child  string
		budget time.Duration
		status collect.Status
		reason string
		within time.Duration
	}{
		{"saved", minute, collect.StatusSaved, "", 20 * time.Second},
		{"panic", minute, collect.StatusFailed, "panic in capture: boom in the capture goroutine", 20 * time.Second},
		{"goroutine", minute, collect.StatusFailed, "the capture process died (exit status 2: a Go panic or fatal error, see above)", 20 * time.Second},
		{"exit", minute, collect.StatusFailed, "the capture process died (exit status 0) before it could report", 20 * time.Second},
		{"oom", minute, collect.StatusFailed, "killed by signal killed", 20 * time.Second},
		{"garbage", minute, collect.StatusFailed, "the capture process closed its result pipe without a result and did not exit within 500ms", 20 * time.Second},
		{"cloexec", minute, collect.StatusSaved, "close-on-exec=true (<nil>)", 20 * time.Second},
	} {
		t.Run(tc.child, func(t *testing.T) {
			r := runChild(t, tc.child, tc.budget, 500*time.Millisecond)
			if r.res.Status != tc.status || !strings.Contains(r.res.Reason, tc.reason) {
				t.Errorf("result %+v, want %s %q", r.res, tc.status, tc.reason)
			}
			if r.took > tc.within {
				t.Errorf("took %v, want at most %v", r.took, tc.within)
			}
			want := config.ActionPoweroff
			if tc.status == collect.StatusSaved {
				want = config.ActionHalt
			}
			if len(r.actions) != 1 || r.actions[0] != want || !strings.HasSuffix(r.console, "gokdump: ACTION "+string(want)+"\n") {
				t.Errorf("actions %v, want %s", r.actions, want)
			}
			if tc.child == "saved" && (r.res.Bytes != 42 || r.res.Path != "/var/crash/x/vmcore" || !strings.Contains(r.console, "child says hello")) {
				t.Errorf("result or console output of the capture process lost: %+v", r.res)
			}
			if tc.child == "goroutine" && !strings.Contains(r.console, "panic: boom in another goroutine") {
				t.Error("the panic is not on the console")
			}
		})
	}
}

// TestSuperviseStuck: a capture process stuck in a system call cannot
// hang PID 1: at the deadline it is killed, FAILED is printed and the
// failure action taken.
func TestSuperviseStuck(t *testing.T) {
	r := runChild(t, "hang", 2*time.Second, 500*time.Millisecond)
	if r.res.Status != collect.StatusFailed || r.res.Reason != "time budget 2s exceeded; the capture was stopped" {
		t.Errorf("result %+v", r.res)
	}
	if r.took < 2*time.Second || r.took > 4*time.Second {
		t.Errorf("the action came after %v, want at the budget (2s)", r.took)
	}
	if len(r.actions) != 1 || r.actions[0] != config.ActionPoweroff ||
		!strings.Contains(r.console, "gokdump: FAILED time budget 2s exceeded; the capture was stopped status=1\ngokdump: ACTION poweroff\n") {
		t.Errorf("actions %v", r.actions)
	}
}

// TestSuperviseLeakedPipe: a descendant of the capture process that keeps
// the result pipe open holds up nothing: a capture that died unreported
// fails within the grace, one that reported and does not exit gives its
// result within the grace; the descendant is killed either way.
func TestSuperviseLeakedPipe(t *testing.T) {
	for _, tc := range []struct {
		child  string
		status collect.Status
		reason string
	}{
		{"leak-exit", collect.StatusFailed, "the capture process died (exit status 0) before it could report"},
		{"leak-report", collect.StatusSaved, ""},
	} {
		t.Run(tc.child, func(t *testing.T) {
			const grace = 500 * time.Millisecond
			r := runChild(t, tc.child, time.Minute, grace)
			if r.res.Status != tc.status || r.res.Reason != tc.reason {
				t.Errorf("result %+v, want %s %q", r.res, tc.status, tc.reason)
			}
			if r.took > 5*time.Second {
				t.Errorf("took %v: the leaked pipe held PID 1 up", r.took)
			}
			i := strings.Index(r.console, "grandchild pid=")
			if i < 0 {
				t.Fatal("no grandchild")
			}
			var pid int
			fmt.Sscanf(r.console[i:], "grandchild pid=%d", &pid)
			for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(pid) {
				unix.Kill(pid, unix.SIGKILL)
				t.Errorf("the grandchild %d outlived the capture", pid)
			}
		})
	}
}

// TestSuperviseLease: a child that asks for more time (the console) gets
// it, lease after lease; one that outlives its lease is stopped then;
// leases do not move the deadline of a capture.
func TestSuperviseLease(t *testing.T) {
	r := runChildLease(t, "lease", time.Second, 500*time.Millisecond, true)
	if r.res.Status != collect.StatusSaved || r.took < 3*time.Second {
		t.Errorf("leased child: result %+v after %v, want its report after 3s", r.res, r.took)
	}
	r = runChildLease(t, "lease-hang", time.Minute, 500*time.Millisecond, true)
	if r.res.Status != collect.StatusFailed || !strings.Contains(r.res.Reason, "outlived the time it asked for") || r.took > 3*time.Second {
		t.Errorf("child past its lease: result %+v after %v", r.res, r.took)
	}
	r = runChildLease(t, "lease", time.Second, 500*time.Millisecond, false)
	if r.res.Status != collect.StatusFailed || !strings.Contains(r.res.Reason, "time budget 1s exceeded") || r.took > 3*time.Second {
		t.Errorf("capture that sends leases: result %+v after %v", r.res, r.took)
	}
}

// alive reports whether pid runs (a zombie is dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestSuperviseInProcess: when no capture process can be started, the
// capture runs in process, by the same deadline.
func TestSuperviseInProcess(t *testing.T) {
	var why error
	res := Run(Options{Path: "/nonexistent/init", Out: io.Discard, Clock: collect.RealClock{}, Deadline: time.Now().Add(time.Minute),
		InProcess: func(err error) collect.Result { why = err; return collect.Failedf("in process") }})
	if res.Reason != "in process" || !errors.Is(why, os.ErrNotExist) {
		t.Errorf("result %+v, why %v", res, why)
	}
}

// TestResultPipeRefusesOthers: a process told it is the capture process
// whose fd 3 is not a pipe does not write its result there.
func TestResultPipeRefusesOthers(t *testing.T) {
	var st unix.Stat_t
	if unix.Fstat(ResultFD, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
		t.Skip("fd 3 of the test process is a pipe")
	}
	if _, err := ResultPipe(); err == nil {
		t.Error("ResultPipe accepted an fd 3 that is not a pipe")
	}
}
