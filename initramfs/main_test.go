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
	if supervise.IsCapture() {
		captureMain()
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
