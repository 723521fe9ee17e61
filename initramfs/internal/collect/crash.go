package collect

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gokdump/gokdump/internal/config"
)

// Crash is the crashed kernel as the operator's console sees it:
// /proc/vmcore parsed once (and its log read, under the usual limits),
// saved on demand through the capture's own path to any target.
type Crash struct {
	env *Env
	src *source
	log []byte // the crashed kernel's log, read whatever dmesg says
	nw  *netState
	err error
}

// OpenCrash loads the image's modules (the console's devices need them)
// and opens the crashed kernel's memory. A Crash is always returned; Err
// says when there is no crash to save.
func OpenCrash(env *Env, cfg *config.Config) *Crash {
	c := &Crash{env: env, nw: &netState{}}
	if err := env.LoadModules(env.logf); err != nil {
		env.logf("some modules failed to load; going on: %v", err)
	}
	if _, err := os.Stat(env.Vmcore); err != nil {
		c.err = fmt.Errorf("no %s: this kernel was not booted by a crash (%v)", env.Vmcore, err)
		return c
	}
	// The console reads the log whatever dmesg says, for its dmesg.
	withLog := cfg.Clone()
	withLog.Dmesg = true
	c.src = openSource(env, withLog)
	if !cfg.Dmesg {
		c.src.dmesg, c.log = nil, c.src.dmesg
	} else {
		c.log = c.src.dmesg
	}
	return c
}

// Err is why there is nothing to save, nil when there is a crash.
func (c *Crash) Err() error { return c.err }

// Log is the crashed kernel's log as vmcore-dmesg.txt holds it; nil when
// it could not be read.
func (c *Crash) Log() []byte {
	if c.src == nil {
		return nil
	}
	return c.log
}

// Release and Panic are the crashed kernel's release and panic line, ""
// when unknown.
func (c *Crash) Release() string {
	if c.src == nil {
		return ""
	}
	return c.src.release
}

func (c *Crash) Panic() string {
	if c.src == nil {
		return ""
	}
	return c.src.panic
}

// CrashInfo is what the console's info says of the crash, from what the
// capture has read anyway (no second pass over the memory).
type CrashInfo struct {
	Release   string
	Machine   elf.Machine
	CrashTime time.Time // zero when VMCOREINFO has no CRASHTIME
	Panic     string
	CPUs      int    // PRSTATUS notes
	PageSize  int64  // 0 when /proc/vmcore could not be parsed
	MaxPFN    uint64 // the highest page frame plus one
	Size      int64  // of /proc/vmcore
	ParseErr  error  // why /proc/vmcore could not be parsed (it is saved as a raw copy)
}

// Info summarises the crash.
func (c *Crash) Info() (CrashInfo, error) {
	if c.err != nil {
		return CrashInfo{}, c.err
	}
	in := CrashInfo{Release: c.src.release, Panic: c.src.panic, ParseErr: c.src.parseErr}
	if st, err := os.Stat(c.src.path); err == nil {
		in.Size = st.Size()
	}
	if f := c.src.f; f != nil {
		in.Machine, in.CPUs, in.PageSize, in.MaxPFN = f.Machine, len(f.PRStatus), f.PageSize, f.MaxPFN()
		if f.VMCOREINFO != nil {
			if t, ok := f.VMCOREINFO.CrashTime(); ok {
				in.CrashTime = time.Unix(t, 0)
			}
		}
	}
	return in, nil
}

// Vmcore is the path of the crashed kernel's memory.
func (c *Crash) Vmcore() string { return c.env.Vmcore }

// Save saves the dump with cfg to dest: a target as the target key
// takes it (LABEL=…, UUID=…, /dev/…, raw:…, ssh://…, nfs://…), a
// directory of a filesystem already mounted (the dump goes in a dated
// directory under it), or, when dest is "", the configured targets in
// turn, as the capture does. Post hooks and kexec-dmesg.log follow as
// in the capture; the result line is the caller's to print.
// Once ctx is done, a dump being written stops there, readable and
// flagged incomplete.
func (c *Crash) Save(ctx context.Context, cfg *config.Config, dest string) Result {
	if c.err != nil {
		return Failedf("%v", c.err)
	}
	c.src.ctx = ctx
	defer func() { c.src.ctx = nil }()
	if dest == "" {
		targets, err := cfg.Targets()
		if err != nil {
			return Failedf("%v", err)
		}
		return saveAll(c.env, cfg, targets, c.src, c.nw)
	}
	if st, err := os.Stat(dest); err == nil && st.IsDir() && !strings.HasPrefix(dest, "/dev/") {
		at := cfg.Clone()
		at.Path = "/"
		c.env.logf("saving under %s", dest)
		return saveToAs(c.env, at, nil, dest, c.src, nil)
	}
	t, err := config.ParseTarget(dest)
	if err != nil {
		return Failedf("%s is neither a directory nor a target: %v", dest, err)
	}
	return captureTo(c.env, cfg, t, c.src, c.nw)
}

// Close closes the crashed kernel's memory.
func (c *Crash) Close() {
	if c.src != nil {
		c.src.close()
	}
}
