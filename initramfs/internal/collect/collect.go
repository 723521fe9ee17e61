package collect

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/config"
)

// LoadConfig is the capture's configuration: the file at path, then the
// gokdump.* overrides of cmdline. It always returns a usable config: a
// bad value costs its default (config.Sanitize), never the dump, and the
// error, if any, says what was wrong and which defaults were used.
func LoadConfig(path, cmdline string) (*config.Config, error) {
	cfg, err := config.LoadPartial(path)
	if cerr := cfg.ApplyCmdline(cmdline); cerr != nil && err == nil {
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

// Capture saves the dump to the first target that takes it. A panic in
// its goroutine is a failed Result; it does not bound its own time (see
// RunWithin, and the supervisor).
func Capture(env *Env, cfg *config.Config) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			env.logf("panic: %v\n%s", r, debug.Stack())
			res = Failedf("panic in capture: %v", r)
		}
	}()
	return capture(env, cfg)
}

// BudgetExceeded is the failure of a capture that time_budget ended.
func BudgetExceeded(budget time.Duration) Result {
	return Failedf("time budget %v exceeded; the capture was stopped", budget)
}

// RunWithin runs Capture and waits for it until deadline at most: PID 1
// runs the capture this way when it cannot start a capture process. A
// capture still running at the deadline is left behind (the action that
// follows ends it) and the result is BudgetExceeded.
func RunWithin(env *Env, cfg *config.Config, deadline time.Time) Result {
	done := make(chan Result, 1)
	go func() { done <- Capture(env, cfg) }()
	select {
	case r := <-done:
		return r
	case <-env.Clock.After(deadline.Sub(env.Clock.Now())):
		return BudgetExceeded(cfg.TimeBudget)
	}
}

func capture(env *Env, cfg *config.Config) Result {
	if env.Hooks.Start != nil {
		env.Hooks.Start()
	}
	var src *source
	res := captureAll(env, cfg, &src)
	if res.Status == StatusFailed && cfg.FailureHook != "" {
		runHook(env, cfg, HookFailure, cfg.FailureHook, hookVars(cfg, src, HookFailure, nil, &res, ""))
	}
	return res
}

// captureAll saves the dump to the first target that takes it, after
// the pre hooks; *srcp is set once /proc/vmcore is open.
func captureAll(env *Env, cfg *config.Config, srcp **source) Result {
	if _, err := os.Stat(env.Vmcore); err != nil {
		return Failedf("no %s: this kernel was not booted by a crash (%v)", env.Vmcore, err)
	}
	if err := env.LoadModules(env.logf); err != nil {
		env.logf("some modules failed to load; going on: %v", err)
	}
	targets, err := cfg.Targets()
	if err != nil {
		return Failedf("%v", err)
	}
	src := openSource(env, cfg)
	defer src.close()
	*srcp = src
	if len(cfg.PreHooks) > 0 {
		stop := cfg.HookFailure == config.HookFail
		if err := runHooks(env, cfg, HookPre, cfg.PreHooks, hookVars(cfg, src, HookPre, nil, nil, ""), stop); err != nil {
			if stop {
				return Failedf("%v; hook_failure = %q: nothing was saved", err, cfg.HookFailure)
			}
			env.logf("going on with the dump (hook_failure = %q)", cfg.HookFailure)
		}
	}
	return saveAll(env, cfg, targets, src, &netState{})
}

// saveAll saves the dump to the first of targets that takes it whole;
// else the result is the first incomplete dump, or a failure naming why
// each target failed.
func saveAll(env *Env, cfg *config.Config, targets []config.Target, src *source, nw *netState) Result {
	var best *Result
	var reasons []string
	for i, t := range targets {
		if i > 0 {
			env.logf("trying the fallback target %s", t)
		}
		res := captureTo(env, cfg, t, src, nw)
		switch res.Status {
		case StatusSaved:
			return res
		case StatusIncomplete:
			env.logf("target %s: the dump is incomplete: %s", t, res.Reason)
			if best == nil {
				best = &res
			}
		default:
			env.logf("target %s: %s", t, res.Reason)
		}
		reasons = append(reasons, fmt.Sprintf("target %s: %s", t, res.Reason))
	}
	if best != nil {
		return *best
	}
	return Result{Status: StatusFailed, Reason: strings.Join(reasons, "; ")}
}

// source is /proc/vmcore as the capture sees it: parsed, or, when it
// cannot be parsed, to be saved as a raw copy.
type source struct {
	path      string
	f         *vmcore.File // nil when it cannot be parsed
	parseErr  error
	crashTime time.Time
	dmesg     []byte // the kernel log, nil when it cannot be read
	// release is the crashed kernel's (VMCOREINFO OSRELEASE), panic the
	// panic line of its log; "" when unknown.
	release, panic string
	// logBusy is set while a kernel log reader left behind at its
	// deadline may still read f: f then stays open.
	logBusy *atomic.Bool
	// ctx, when set, stops a dump being written once it is done (the
	// console's ^C).
	ctx context.Context
}

func openSource(env *Env, cfg *config.Config) *source {
	s := &source{path: env.Vmcore, crashTime: env.Clock.Now()}
	var err error
	s.f, err = env.OpenVmcore(env.Vmcore)
	if err != nil {
		s.f, s.parseErr = nil, err
		env.logf("cannot parse %s: %v; it will be saved as a raw copy (nothing lost, nothing filtered)", env.Vmcore, err)
		return s
	}
	if s.f.NoteErr != nil {
		env.logf("%s: damaged notes: %v; the %d notes before the damage (and VMCOREINFO, if found past it) are kept", env.Vmcore, s.f.NoteErr, len(s.f.Notes))
	}
	info := s.f.VMCOREINFO
	if info == nil {
		env.logf("%s has no VMCOREINFO: pages cannot be filtered and the kernel log cannot be found; every page is kept", env.Vmcore)
		return s
	}
	if t, ok := info.CrashTime(); ok {
		s.crashTime = time.Unix(t, 0)
	}
	s.release = info.OSRelease()
	env.logf("crashed kernel %s, %d MiB of memory", s.release, s.f.MaxPFN()*uint64(s.f.PageSize)>>20)
	if cfg.Dmesg || cfg.HasHooks() {
		// The log first: it is small and tells the story even if the dump
		// does not fit. It is read under a budget of its own, so a
		// corrupt ring costs the log and never the dump. Hooks get the
		// panic line from it.
		var text []byte
		text, s.panic, s.logBusy = readDmesg(env, cfg, s.f)
		if cfg.Dmesg {
			s.dmesg = text
		}
	}
	return s
}

func (s *source) close() {
	if s.f != nil && (s.logBusy == nil || !s.logBusy.Load()) {
		s.f.Close()
	}
}
