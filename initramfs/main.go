// Command init is the /init of gokdump's capture initramfs. The capture
// kernel runs it after the crashed kernel kexec'd into it: it saves
// /proc/vmcore to the configured target and then reboots.
//
// Whatever happens — a missing disk, a full disk, corrupt memory, a bug of
// ours — it ends in the configured action. It never waits without a
// timeout, and it recovers its own panics.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/gokdump/gokdump/capture/config"
	"github.com/gokdump/gokdump/initramfs/boot"
)

// ConfigPath is the config inside the image.
const ConfigPath = "/etc/gokdump.toml"

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "gokdump: [%7.3f] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// result prints the one machine-readable line tests and operators look for.
func result(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "gokdump: "+format+"\n", args...)
}

func main() {
	// The capture kernel has tens of MiB: keep the heap small and let the
	// GC run early rather than grow.
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(24 << 20)

	if err := boot.MountPseudo(); err != nil {
		logf("%v", err)
	}
	cfg, err := loadConfig()
	if err != nil {
		// A bad config must not cost the dump: defaults still save it
		// if the command line names a target.
		logf("config: %v; using defaults", err)
	}
	failure := boot.Action(cfg.FailureAction)
	if failure == "fallback" {
		failure = boot.Reboot
	}
	if cfg.TimeBudget > 0 {
		time.AfterFunc(cfg.TimeBudget, func() {
			result("FAILED time budget %v exceeded", cfg.TimeBudget)
			boot.Finish(failure)
		})
	}
	res, err := safeCapture(cfg)
	if err != nil {
		result("FAILED %v", err)
		boot.Finish(failure)
	}
	result("saved %s bytes=%d seconds=%.2f", res.Path, res.Bytes, res.Seconds)
	boot.Finish(boot.Action(cfg.FinalAction))
}

// safeCapture runs capture and turns a panic into an error.
func safeCapture(cfg *config.Config) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			logf("panic: %v\n%s", r, debug.Stack())
			err = fmt.Errorf("panic in capture: %v", r)
		}
	}()
	return capture(cfg)
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
	return cfg, err
}
