package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Prompt is the console's prompt.
const Prompt = "gokdump# "

// LeaseGrace is added to every lease the console asks of its supervisor:
// the console's own deadlines come first, the supervisor's kill after.
const LeaseGrace = 30 * time.Second

// stopGrace is how long a command has, once stopped (^C, time_budget),
// to return before the console gives up on it.
const stopGrace = 10 * time.Second

// Options make a console session.
type Options struct {
	// Env is the capture's world: its console for notes and result
	// lines, its clock.
	Env    *collect.Env
	Config *config.Config
	// Crash is the crashed kernel, to save and to look at.
	Crash *collect.Crash
	// In is the console's keyboard; a terminal is put in the mode the
	// console needs (keyMode) for the session. Out is the console.
	In  io.Reader
	Out io.Writer
	// Why says why the console opened, on its first line.
	Why string
	// Lease, if set, is told how much longer the session may take from
	// now: at every prompt, keystroke and command. The supervisor ends
	// a session that outlives its lease.
	Lease func(d time.Duration)
}

// Run runs a console session until it is left and returns the action to
// take then: final_action after exit, ^D, the input's end or
// shell_timeout without a keystroke; reboot, poweroff or halt after the
// command of that name.
func Run(o Options) config.Action {
	s := &session{o: o, cfg: o.Config}
	return s.run()
}

type session struct {
	o        Options
	cfg      *config.Config
	in       *input
	ed       *editor
	r        *interp.Runner
	lastSent atomic.Int64 // Unix nanoseconds of the last lease sent for a keystroke
	// sys is where devices and mount find block devices.
	sys blockdev.Sys
}

// leaveError is how reboot, poweroff and halt leave the console.
type leaveError struct{ action config.Action }

func (e *leaveError) Error() string { return "leaving the console: " + string(e.action) }

func (s *session) lease(d time.Duration) {
	if s.o.Lease != nil {
		s.o.Lease(d + LeaseGrace)
	}
}

func (s *session) run() config.Action {
	final := s.cfg.FinalAction
	echo := false
	if f, ok := s.o.In.(*os.File); ok {
		var restore func()
		echo, restore = keyMode(f)
		defer restore()
	}
	s.in = newInput(s.o.In, s.o.Env.Clock, func() {
		// A keystroke moves the lease on, once a second at most.
		now := s.o.Env.Clock.Now().UnixNano()
		if last := s.lastSent.Load(); now-last > int64(time.Second) && s.lastSent.CompareAndSwap(last, now) {
			s.lease(s.cfg.ShellTimeout)
		}
	})
	s.ed = &editor{in: s.in, out: s.o.Out, echo: echo, idle: s.cfg.ShellTimeout}
	r, err := interp.New(
		interp.StdIO(nil, s.o.Out, s.o.Out),
		interp.Env(expand.ListEnviron("PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "TERM=linux")),
		interp.Dir("/"),
		interp.ExecHandlers(s.commands),
		// help is the interpreter's too: ours wins.
		interp.CallHandler(func(ctx context.Context, args []string) ([]string, error) {
			if len(args) > 0 && args[0] == "help" {
				args[0] = helpName
			}
			return args, nil
		}),
	)
	if err != nil {
		s.o.Env.Console.Logf("console: %v; leaving it", err)
		return final
	}
	s.r = r
	fmt.Fprintf(s.o.Out, "\ngokdump: the operator's console%s\n", why(s.o.Why))
	fmt.Fprintf(s.o.Out, "gokdump: type help for the commands; exit (or ^D) takes final_action (%s), as does %v without a keystroke\n",
		final, s.cfg.ShellTimeout)
	for {
		s.lease(s.cfg.ShellTimeout)
		line, err := s.ed.readLine(Prompt)
		switch {
		case errors.Is(err, errIdle):
			s.o.Env.Console.Logf("console: no keystroke for %v: leaving it", s.cfg.ShellTimeout)
			return final
		case errors.Is(err, errInterrupted):
			continue
		case err != nil:
			s.o.Env.Console.Logf("console: the input ended (%v): leaving it", err)
			return final
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if a, leave := s.runLine(line); leave {
			s.o.Env.Console.Logf("console: left, %s", a)
			return a
		}
	}
}

func why(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// runLine runs one command line within time_budget; ^C stops it. It
// reports whether the console is to be left, and for what.
func (s *session) runLine(line string) (config.Action, bool) {
	f, err := syntax.NewParser().Parse(strings.NewReader(line), "")
	if err != nil {
		fmt.Fprintf(s.o.Out, "%v\n", err)
		return "", false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.in.stop.Store(&cancel)
	defer s.in.stop.Store(nil)
	limit := s.cfg.TimeBudget
	s.lease(limit + stopGrace)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- s.r.Run(ctx, f)
	}()
	var runErr error
	select {
	case runErr = <-done:
	case <-s.o.Env.Clock.After(limit):
		fmt.Fprintf(s.o.Out, "\ngokdump: the command ran for time_budget (%v): stopping it\n", limit)
		cancel()
	case <-ctx.Done():
		fmt.Fprintf(s.o.Out, "^C\n")
	}
	if runErr == nil && ctx.Err() != nil {
		select {
		case runErr = <-done:
		case <-s.o.Env.Clock.After(stopGrace):
			s.o.Env.Console.Logf("console: the command does not stop: leaving the console")
			return s.cfg.FinalAction, true
		}
	}
	var lv *leaveError
	var status interp.ExitStatus
	isExit := errors.As(runErr, &status)
	switch {
	case errors.As(runErr, &lv):
		return lv.action, true
	case s.r.Exited() && (runErr == nil || isExit):
		return s.cfg.FinalAction, true
	case runErr != nil && !isExit:
		fmt.Fprintf(s.o.Out, "%v\n", runErr)
	}
	return "", false
}
