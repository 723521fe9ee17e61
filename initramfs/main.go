// Command init is the /init of gokdump's capture initramfs. The capture
// kernel runs it after the crashed kernel kexec'd into it: it saves
// /proc/vmcore to the configured target and then reboots.
//
// Whatever happens — a missing disk, a full disk, corrupt memory, a bug of
// ours — it ends in the configured action. PID 1 is a small supervisor
// (internal/supervise): it runs the capture (internal/collect) as a child
// process, the same binary, and waits for its result within the time
// budget, then prints the result line and takes the action that follows.
// The operator's console (internal/shell), with failure_action = "shell"
// or gokdump.shell=1, is another child of PID 1, which keeps it to the
// time it asks for. This file only wires them to the capture kernel.
package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gokdump/gokdump/initramfs/boot"
	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"github.com/gokdump/gokdump/initramfs/internal/faults"
	"github.com/gokdump/gokdump/initramfs/internal/shell"
	"github.com/gokdump/gokdump/initramfs/internal/supervise"
	"github.com/gokdump/gokdump/internal/config"
)

// ConfigPath is the config inside the image.
const ConfigPath = config.DefaultPath

// envWhy tells the console process why it was opened.
const envWhy = "GOKDUMP_CONSOLE_WHY"

func main() {
	switch supervise.Role() {
	case supervise.RoleCapture:
		captureMain()
	case supervise.RoleShell:
		shellMain()
	default:
		supervisorMain()
	}
}

// supervisorMain is PID 1.
func supervisorMain() {
	start := time.Now()
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(8 << 20)
	con := collect.NewConsole(os.Stdout, start, time.Now)
	env := collect.System(con)
	failure := config.ActionReboot
	defer func() {
		// Nothing here should panic; if it does, still end in an action
		// rather than let PID 1 die.
		if r := recover(); r != nil {
			con.Result("%s", collect.Failedf("supervisor panic: %v", r).Line(con.Elapsed().Seconds()))
			con.Logf("%s", debug.Stack())
			collect.Act(env, failure)
		}
	}()
	if err := boot.MountPseudo(); err != nil {
		con.Logf("%v", err)
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	con.Logf("%s", collect.KernelNote(meminfo, runtime.NumCPU()))
	cfg := loadConfig(con, true)
	failure = collect.FailureAction(cfg)
	if failure == config.ActionShell {
		failure = cfg.FinalAction
	}
	if cfg.Shell {
		con.Result("ACTION shell")
		collect.Act(env, superviseShell(env, cfg, start, "gokdump.shell=1: stopped before saving; save saves the dump"))
		return
	}
	res := superviseCapture(env, cfg, start)
	meminfo, _ = os.ReadFile("/proc/meminfo")
	con.Logf("%s", collect.MemoryNote(meminfo))
	if collect.Action(cfg, res) != config.ActionShell {
		collect.Finish(env, cfg, res)
		return
	}
	collect.PrintResult(env, res)
	con.Result("ACTION shell")
	collect.Act(env, superviseShell(env, cfg, start, "the capture failed ("+res.Reason+"); save tries again"))
}

// superviseShell runs the operator's console as a child process, for as
// long as it asks (a keystroke, a command), and returns the action it was
// left for: final_action, unless reboot, poweroff or halt said otherwise,
// or the console died.
func superviseShell(env *collect.Env, cfg *config.Config, start time.Time, why string) config.Action {
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	now := env.Clock.Now()
	res := supervise.Run(supervise.Options{
		Path:     self,
		Env:      append(os.Environ(), envWhy+"="+why),
		Role:     supervise.RoleShell,
		In:       os.Stdin,
		Out:      os.Stdout,
		Lease:    true,
		Console:  env.Console,
		Clock:    env.Clock,
		Start:    start,
		Deadline: now.Add(cfg.ShellTimeout + shell.LeaseGrace),
		InProcess: func(why2 error) collect.Result {
			env.Console.Logf("cannot start the console process (%v); running it in process 1", why2)
			return collect.Result{Status: collect.StatusLeft, Action: runShell(env, cfg, why, nil)}
		},
	})
	if res.Status != collect.StatusLeft || res.Action == "" {
		env.Console.Logf("console: %s", res.Reason)
		return cfg.FinalAction
	}
	return res.Action
}

// runShell opens the crashed kernel's memory and runs a console session.
func runShell(env *collect.Env, cfg *config.Config, why string, lease func(time.Duration)) config.Action {
	crash := collect.OpenCrash(env, cfg)
	defer crash.Close()
	if err := crash.Err(); err != nil {
		env.Console.Logf("%v", err)
	}
	return shell.Run(shell.Options{Env: env, Config: cfg, Crash: crash, In: os.Stdin, Out: os.Stdout, Why: why, Lease: lease})
}

// superviseCapture runs the capture process and returns its result by
// start + time_budget. When no capture process can be started (no memory
// for a second Go runtime), the capture runs in this process, under the
// same deadline.
func superviseCapture(env *collect.Env, cfg *config.Config, start time.Time) collect.Result {
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	deadline := start.Add(cfg.TimeBudget)
	return supervise.Run(supervise.Options{
		Path:     self,
		Env:      os.Environ(),
		Out:      os.Stdout,
		Console:  env.Console,
		Clock:    env.Clock,
		Start:    start,
		Deadline: deadline,
		Budget:   cfg.TimeBudget,
		InProcess: func(why error) collect.Result {
			env.Console.Logf("cannot start the capture process (%v); capturing in process 1", why)
			armFaults(env, cfg)
			return collect.RunWithin(env, cfg, deadline)
		},
	})
}

// loadConfig loads the config; a bad one costs the bad values, never the
// dump. The supervisor reports the error; the capture process, which
// loads the same, does not repeat it.
func loadConfig(con *collect.Console, report bool) *config.Config {
	cfg, err := collect.LoadConfig(ConfigPath, boot.Cmdline())
	if err != nil && report {
		con.Logf("config: %v; going on with the values that are good", err)
	}
	return cfg
}

// startChild is how a child of PID 1 (the capture, the console) starts:
// its result pipe (perr when it has none), a small heap, its console on
// the supervisor's clock, the config and the capture kernel's world.
func startChild() (pipe *os.File, con *collect.Console, cfg *config.Config, env *collect.Env, perr error) {
	// The result pipe first: close-on-exec before anything can inherit it.
	pipe, perr = supervise.ResultPipe()
	debug.SetGCPercent(50)
	// The capture kernel has tens of MiB: keep the heap small and let the
	// GC run early rather than grow.
	debug.SetMemoryLimit(24 << 20)
	start, ok := supervise.Start()
	if !ok {
		start = time.Now()
	}
	con = collect.NewConsole(os.Stdout, start, time.Now)
	if perr != nil {
		con.Logf("%v", perr)
	}
	cfg = loadConfig(con, false)
	return pipe, con, cfg, collect.System(con), perr
}

// captureMain is the capture process.
func captureMain() {
	pipe, con, cfg, env, perr := startChild()
	armFaults(env, cfg)
	res := collect.Capture(env, cfg)
	if perr == nil {
		if err := supervise.Report(pipe, res); err != nil {
			con.Logf("cannot report to the supervisor: %v", err)
		}
	}
	os.Exit(0)
}

// shellMain is the console process.
func shellMain() {
	pipe, con, cfg, env, perr := startChild()
	var mu sync.Mutex // leases come from the console's reader and its loop
	lease := func(d time.Duration) {
		if perr == nil {
			mu.Lock()
			supervise.Lease(pipe, d)
			mu.Unlock()
		}
	}
	a := runShell(env, cfg, os.Getenv(envWhy), lease)
	if perr == nil {
		mu.Lock()
		if err := supervise.Report(pipe, collect.Result{Status: collect.StatusLeft, Action: a}); err != nil {
			con.Logf("cannot report to the supervisor: %v", err)
		}
		mu.Unlock()
	}
	os.Exit(0)
}

// armFaults arms the fault test_panic names, for the QEMU fault tests;
// nothing when it is unset, as in production.
func armFaults(env *collect.Env, cfg *config.Config) {
	if cfg.TestPanic == "" {
		return
	}
	if err := faults.Apply(env, cfg.TestPanic); err != nil {
		env.Console.Logf("%v", err)
	}
}
