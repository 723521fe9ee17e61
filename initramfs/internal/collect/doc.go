// Package collect is the capture the initramfs /init runs: it reads the
// crashed kernel's log, finds the dump target, saves /proc/vmcore there
// (filtered, compressed, or as a raw copy when it cannot be parsed), and
// says how it went in one machine-readable result line.
//
// Every side effect goes through an Env: mounting, block devices, the
// console, the clock, the final action, module loading, syncing, free
// space, the vmcore and read-only detection. System returns the real one
// (system_linux.go); tests drive the whole failure matrix with their own,
// without a capture kernel.
//
// A run has three steps, each bounded in time:
//
//	res := collect.Capture(env, cfg)              // or RunWithin, with a deadline
//	collect.Finish(env, cfg, res)                 // result line, ACTION line, the action
//
// Capture never panics (a panic in its goroutine is a FAILED result) and
// reads the kernel log under a budget of its own, so that a corrupt log
// costs the log and never the dump.
package collect
