// Command init is the /init of gokdump's capture initramfs. The capture
// kernel runs it after the crashed kernel kexec'd into it: it saves
// /proc/vmcore to the configured target and then reboots.
//
// Whatever happens — a missing disk, a full disk, corrupt memory, a bug of
// ours — it ends in the configured action. PID 1 is a small supervisor:
// it runs the capture as a child process (the same binary) and waits for
// it within the time budget. A panic in any goroutine of the capture, a
// capture stuck in a system call, or one killed by the kernel for want of
// memory ends the child, never PID 1 (whose death would panic the
// kernel); the supervisor reports it and takes the failure action.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/initramfs/boot"
	"github.com/gokdump/gokdump/internal/config"
)

// ConfigPath is the config inside the image.
var ConfigPath = "/etc/gokdump.toml"

// runCapture is the capture the capture process runs (tests replace it).
var runCapture = capture

// Environment of the capture process: its role, and the supervisor's
// start time (Unix nanoseconds) so both print one clock.
const (
	envRole   = "GOKDUMP_ROLE"
	roleChild = "capture"
	envStart  = "GOKDUMP_START"
)

// resultFD is the capture process's end of the pipe its Result goes
// through (its first ExtraFiles entry).
const resultFD = 3

func main() {
	if os.Getenv(envRole) == roleChild {
		captureMain()
		return
	}
	superviseMain()
}

// Status is how a capture ended.
type Status string

const (
	StatusSaved      Status = "saved"
	StatusIncomplete Status = "incomplete"
	StatusFailed     Status = "failed"
)

// Result is what the capture process reports to the supervisor.
type Result struct {
	Status Status `json:"status"`
	// Path is the dump as seen on the target filesystem, or raw:DEVICE.
	Path   string       `json:"path,omitempty"`
	Bytes  int64        `json:"bytes,omitempty"`
	Level  filter.Level `json:"level"`
	Format string       `json:"format,omitempty"`
	// Reason says why the dump is incomplete or the capture failed.
	Reason string `json:"reason,omitempty"`
}

// superviseMain is PID 1.
func superviseMain() {
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(8 << 20)
	failure := boot.Reboot
	defer func() {
		// Nothing here should panic; if it does, still end in an action
		// rather than let PID 1 die.
		if r := recover(); r != nil {
			result("FAILED supervisor panic: %v", r)
			logf("%s", debug.Stack())
			act(failure)
		}
	}()
	if err := boot.MountPseudo(); err != nil {
		logf("%v", err)
	}
	cfg, err := loadConfig()
	if err != nil {
		// A bad config must not cost the dump: defaults still save it
		// if the command line names a target.
		logf("config: %v; using defaults", err)
	}
	failure = failureAction(cfg)
	res := supervise(cfg)
	// One line each: a reason may hold several (joined errors, the list
	// of devices seen).
	res.Reason = oneLine(res.Reason)
	switch res.Status {
	case StatusSaved:
		result("saved %s bytes=%d seconds=%.2f level=%d format=%s", res.Path, res.Bytes, time.Since(start).Seconds(), res.Level, res.Format)
		act(boot.Action(cfg.FinalAction))
	case StatusIncomplete:
		result("INCOMPLETE %s bytes=%d seconds=%.2f level=%d format=%s: %s; the dump is readable, flagged incomplete",
			res.Path, res.Bytes, time.Since(start).Seconds(), res.Level, res.Format, res.Reason)
		act(boot.Action(cfg.FinalAction))
	default:
		result("FAILED %s", res.Reason)
		act(failure)
	}
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n\t", "; ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// failureAction is the action for a failed capture. With "fallback" the
// fallback target was already tried; the final action follows, as
// configs/gokdump.toml documents.
func failureAction(cfg *config.Config) boot.Action {
	if cfg.FailureAction == config.ActionFallback {
		return boot.Action(cfg.FinalAction)
	}
	return boot.Action(cfg.FailureAction)
}

// act announces and takes the final action; it does not return.
func act(a boot.Action) {
	result("ACTION %s", a)
	boot.Finish(a)
}

// supervise runs the capture process and waits for it within the time
// budget. If the process cannot be started (no memory for a second Go
// runtime), the capture runs in this process, with a watchdog.
func supervise(cfg *config.Config) Result {
	deadline := start.Add(cfg.TimeBudget)
	pr, pw, err := os.Pipe()
	if err != nil {
		return inProcess(cfg, deadline, err)
	}
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envRole+"="+roleChild, envStart+"="+strconv.FormatInt(start.UnixNano(), 10))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, conOut, conOut
	cmd.ExtraFiles = []*os.File{pw}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return inProcess(cfg, deadline, err)
	}
	pw.Close()

	got := make(chan Result, 1)
	go func() {
		var r Result
		b, err := io.ReadAll(io.LimitReader(pr, 1<<16))
		pr.Close()
		if err == nil && len(b) > 0 && json.Unmarshal(b, &r) == nil && r.Status != "" {
			got <- r
		}
		close(got)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case werr := <-exited:
		if r, ok := <-got; ok {
			return r
		}
		endConsoleLine()
		return Result{Status: StatusFailed, Reason: fmt.Sprintf("the capture process died (%s) before it could report", exitReason(werr))}
	case <-timer.C:
		// Whatever it is stuck in, it cannot stop a reboot. Kill it so
		// it writes no more; do not wait for it.
		cmd.Process.Kill()
		endConsoleLine()
		return Result{Status: StatusFailed, Reason: fmt.Sprintf("time budget %v exceeded; the capture was stopped", cfg.TimeBudget)}
	}
}

// endConsoleLine ends whatever line the capture process left open (its
// progress line) before the supervisor prints.
func endConsoleLine() {
	conMu.Lock()
	progOpen = true
	endProgressLocked()
	conMu.Unlock()
}

func exitReason(err error) string {
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

// inProcess runs the capture in PID 1 itself, when no capture process
// could be started: a panic in the capture's own goroutine is still
// recovered, and a watchdog takes the failure action at the deadline.
func inProcess(cfg *config.Config, deadline time.Time, why error) Result {
	logf("cannot start the capture process (%v); capturing in process 1", why)
	failure := failureAction(cfg)
	time.AfterFunc(time.Until(deadline), func() {
		result("FAILED time budget %v exceeded", cfg.TimeBudget)
		act(failure)
	})
	return safeCapture(cfg)
}

// captureMain is the capture process.
func captureMain() {
	debug.SetGCPercent(50)
	// The capture kernel has tens of MiB: keep the heap small and let the
	// GC run early rather than grow.
	debug.SetMemoryLimit(24 << 20)
	if ns, err := strconv.ParseInt(os.Getenv(envStart), 10, 64); err == nil {
		start = time.Unix(0, ns)
	}
	cfg, _ := loadConfig() // the supervisor has reported any error
	res := safeCapture(cfg)
	out := os.NewFile(resultFD, "result")
	b, _ := json.Marshal(res)
	if _, err := out.Write(b); err != nil {
		logf("cannot report to the supervisor: %v", err)
	}
	out.Close()
	os.Exit(0)
}

// safeCapture runs capture and turns a panic in its goroutine into a
// failed Result.
func safeCapture(cfg *config.Config) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			logf("panic: %v\n%s", r, debug.Stack())
			res = Result{Status: StatusFailed, Reason: fmt.Sprintf("panic in capture: %v", r)}
		}
	}()
	return runCapture(cfg)
}

func loadConfig() (*config.Config, error) {
	cfg, err := config.Load(ConfigPath)
	if err != nil {
		d := config.Default()
		cfg = &d
	}
	if cerr := cfg.ApplyCmdline(boot.Cmdline()); cerr != nil && err == nil {
		err = cerr
	}
	if verr := cfg.Validate(); verr != nil && err == nil {
		err = verr
	}
	if err != nil {
		if keys := cfg.Sanitize(); len(keys) > 0 {
			err = fmt.Errorf("%w (defaults used for: %s)", err, strings.Join(keys, ", "))
		}
	}
	return cfg, err
}
