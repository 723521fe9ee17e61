package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/sys/unix"
)

// The supervisor runs the test binary itself as the capture process:
// TestMain turns it into one that misbehaves as $TEST_CHILD says.
const envTestChild = "GOKDUMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envRole) == roleChild {
		ConfigPath = "/nonexistent/gokdump.toml"
		runCapture = func(*config.Config) Result {
			switch os.Getenv(envTestChild) {
			case "saved":
				logf("child says hello")
				return Result{Status: StatusSaved, Path: "/var/crash/x/vmcore", Bytes: 42, Level: 31, Format: "kdump"}
			case "panic":
				panic("boom in the capture goroutine")
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
			}
			return Result{Status: StatusFailed, Reason: "unexpected"}
		}
		captureMain()
		return
	}
	os.Exit(m.Run())
}

func TestSupervise(t *testing.T) {
	for _, tc := range []struct {
		child  string
		budget time.Duration
		status Status
		reason string
		within time.Duration
	}{
		{"saved", time.Minute, StatusSaved, "", 20 * time.Second},
		{"panic", time.Minute, StatusFailed, "panic in capture: boom in the capture goroutine", 20 * time.Second},
		{"goroutine", time.Minute, StatusFailed, "the capture process died (exit status 2: a Go panic or fatal error, see above)", 20 * time.Second},
		{"exit", time.Minute, StatusFailed, "the capture process died (exit status 0)", 20 * time.Second},
		{"oom", time.Minute, StatusFailed, "killed by signal killed", 20 * time.Second},
		{"hang", 2 * time.Second, StatusFailed, "time budget 2s exceeded", 4 * time.Second},
	} {
		t.Run(tc.child, func(t *testing.T) {
			t.Setenv(envTestChild, tc.child)
			con := captureConsole(t)
			cfg := testConfig(t, func(c *config.Config) { c.TimeBudget = tc.budget })
			old := start
			start = time.Now()
			defer func() { start = old }()
			res := supervise(cfg)
			took := time.Since(start)
			if res.Status != tc.status || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("result %+v, want %s %q", res, tc.status, tc.reason)
			}
			if took > tc.within {
				t.Errorf("took %v, want at most %v", took, tc.within)
			}
			if tc.child == "saved" && (res.Bytes != 42 || res.Path != "/var/crash/x/vmcore") {
				t.Errorf("result not passed through: %+v", res)
			}
			if tc.child == "saved" && !strings.Contains(con.String(), "child says hello") {
				t.Errorf("the capture process's console output is lost: %q", con.String())
			}
			if tc.child == "goroutine" && !strings.Contains(con.String(), "panic: boom in another goroutine") {
				t.Errorf("the panic is not on the console: %q", con.String())
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	c := &config.Config{DumpLevel: []filter.Level{99, -1}, FailureAction: "explode", Format: "zip", Compress: "rar"}
	c.Sanitize()
	d := config.Default()
	if c.TimeBudget != d.TimeBudget || c.DeviceTimeout != d.DeviceTimeout || len(c.DumpLevel) != 1 || c.DumpLevel[0] != 31 ||
		c.FailureAction != d.FailureAction || c.FinalAction != d.FinalAction || c.Format != d.Format ||
		c.Compress != d.Compress || c.Path != d.Path {
		t.Errorf("Sanitize left %+v", c)
	}
}
