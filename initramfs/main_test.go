package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"github.com/gokdump/gokdump/initramfs/internal/supervise"
	"github.com/gokdump/gokdump/internal/config"
)

// The test binary is also the capture process, as /init is.
func TestMain(m *testing.M) {
	switch supervise.Role() {
	case supervise.RoleCapture:
		captureMain()
	case supervise.RoleShell:
		shellMain()
	}
	os.Exit(m.Run())
}

// TestWiring runs the supervisor as PID 1 does, with the real capture
// process, on a machine that did not crash: the capture process starts,
// finds no /proc/vmcore, and its report comes back through the pipe.
func TestWiring(t *testing.T) {
	if _, err := os.Stat(collect.VmcorePath); err == nil {
		t.Skipf("%s exists here", collect.VmcorePath)
	}
	var out bytes.Buffer
	start := time.Now()
	env := collect.System(collect.NewConsole(&out, start, time.Now))
	cfg := config.Default()
	cfg.TimeBudget = time.Minute
	res := superviseCapture(env, &cfg, start)
	if res.Status != collect.StatusFailed || !strings.Contains(res.Reason, "no /proc/vmcore: this kernel was not booted by a crash") {
		t.Errorf("result %+v; console:\n%s", res, out.String())
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestShellWiring runs the console as PID 1 does, in its own process: it
// finds no keyboard (the test's standard input ends at once), is left,
// and the action it was left for (its final_action, read from the config
// as PID 1's is not) comes back through the result pipe.
func TestShellWiring(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	env := collect.System(collect.NewConsole(&out, start, time.Now))
	childCfg, _ := collect.LoadConfig(ConfigPath, "")
	cfg := config.Default()
	cfg.FinalAction = config.ActionHalt // not the child's: had the child died, PID 1 would take this
	if childCfg.FinalAction == cfg.FinalAction {
		t.Skipf("%s sets final_action %s", ConfigPath, cfg.FinalAction)
	}
	if a := superviseShell(env, &cfg, start, "a test"); a != childCfg.FinalAction {
		t.Errorf("left for %q, want the console's final_action %s; console:\n%s", a, childCfg.FinalAction, out.String())
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v", took)
	}
}
