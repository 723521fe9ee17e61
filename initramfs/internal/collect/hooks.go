package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/internal/config"
)

// Hooks are the user's programs the capture runs: pre_hooks before the
// dump is saved, post_hooks after a dump is saved (whole or incomplete)
// with its target still mounted, failure_hook when nothing could be
// saved. Each runs with the environment below (README: "Hooks"), its
// standard input /dev/null, its output on the console, no other
// descriptor, and hook_timeout to finish.
const (
	HookPre     = "pre"
	HookPost    = "post"
	HookFailure = "failure"
)

// hookOutputMax bounds what the console shows of one hook's output: a
// chatty hook must not hold the capture up on a slow serial console.
const hookOutputMax = 64 << 10

// hookGrace is how long a hook that was killed has to be gone before the
// capture stops waiting for it.
const hookGrace = 5 * time.Second

// hookVars is the environment of a hook: the crash (src; nil when
// /proc/vmcore could not be opened), and, after the dump, how it went
// (res). t is the target (nil: the configured one); dumpDir the dump's
// directory as the capture kernel sees it ("" when it is not mounted).
func hookVars(cfg *config.Config, src *source, phase string, t *config.Target, res *Result, dumpDir string) []string {
	vars := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/",
		"GOKDUMP_PHASE=" + phase,
	}
	if src != nil {
		vars = append(vars,
			"GOKDUMP_VMCORE="+src.path,
			"GOKDUMP_KERNEL_RELEASE="+src.release,
			"GOKDUMP_PANIC="+oneLine(printk.Printable(src.panic)),
			"GOKDUMP_CRASH_TIME="+src.crashTime.UTC().Format(time.RFC3339))
	}
	target := cfg.Target
	if t != nil {
		target = t.String()
	}
	vars = append(vars, "GOKDUMP_TARGET="+config.MaskSecrets(target))
	if res != nil {
		vars = append(vars,
			"GOKDUMP_STATUS="+string(res.Status),
			"GOKDUMP_STATUS_CODE="+strconv.Itoa(res.Status.Code()),
			"GOKDUMP_REASON="+oneLine(res.Reason),
			"GOKDUMP_DUMP="+res.Path,
			"GOKDUMP_DUMP_DIR="+dumpDir,
			"GOKDUMP_LEVEL="+strconv.Itoa(int(res.Level)),
			"GOKDUMP_FORMAT="+res.Format,
			"GOKDUMP_BYTES="+strconv.FormatInt(res.Bytes, 10))
	}
	return vars
}

// runHooks runs paths in order and returns the first failure; with stop
// set it runs no more after one fails.
func runHooks(env *Env, cfg *config.Config, phase string, paths []string, vars []string, stop bool) error {
	var first error
	for _, p := range paths {
		err := runHook(env, cfg, phase, p, vars)
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if stop {
			break
		}
	}
	return first
}

// runHook runs one hook within hook_timeout and says how it went.
func runHook(env *Env, cfg *config.Config, phase, path string, vars []string) error {
	name := filepath.Base(path)
	env.logf("%s hook %s: running (within %v)", phase, path, cfg.HookTimeout)
	out := &hookOutput{env: env, prefix: fmt.Sprintf("hook %s: ", name)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := env.Clock.Now()
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic running it: %v", r)
			}
		}()
		done <- env.Exec(ctx, path, vars, out)
	}()
	var err error
	select {
	case err = <-done:
	case <-env.Clock.After(cfg.HookTimeout):
		cancel()
		select {
		case <-done:
		case <-env.Clock.After(hookGrace):
		}
		err = fmt.Errorf("killed after hook_timeout %v", cfg.HookTimeout)
	}
	out.flush()
	took := env.since(start).Seconds()
	if err != nil {
		err = fmt.Errorf("%s hook %s: %w", phase, path, describeExit(err))
		env.logf("%v (%.2fs)", err, took)
		return err
	}
	env.logf("%s hook %s: done in %.2fs", phase, path, took)
	return nil
}

// describeExit says how a program ended in a user's words.
func describeExit(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("it failed (%s)", ee)
	}
	return err
}

// hookOutput shows a hook's output on the console, a line at a time,
// prefixed with the hook's name, up to hookOutputMax bytes.
type hookOutput struct {
	env    *Env
	prefix string
	mu     sync.Mutex
	line   []byte
	total  int
	cut    bool
}

func (h *hookOutput) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(p)
	if h.total >= hookOutputMax {
		if !h.cut {
			h.cut = true
			h.env.logf("%s(more output not shown)", h.prefix)
		}
		return n, nil
	}
	p = p[:min(len(p), hookOutputMax-h.total)]
	h.total += len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			h.line = append(h.line, p...)
			if len(h.line) >= 4096 {
				h.emit()
			}
			break
		}
		h.line = append(h.line, p[:i]...)
		h.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (h *hookOutput) emit() {
	h.env.logf("%s%s", h.prefix, printk.Printable(strings.TrimRight(string(h.line), "\r")))
	h.line = h.line[:0]
}

// flush shows a last line that did not end.
func (h *hookOutput) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.line) > 0 {
		h.emit()
	}
}
