package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/internal/sshdump"
)

// errNotCaught makes status exit 1.
var errNotCaught = errors.New("a crash now would not be caught")

func init() {
	register(&command{
		name:  "status",
		short: "tell whether a crash now would be caught (exit 0) or not (exit 1)",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			asJSON := fs.Bool("json", false, "print the status as JSON")
			var cf configFlag
			cf.define(fs, statusConfigPath, "configuration `FILE` to check")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				return runStatus(s.out, *asJSON, &cf)
			}
		},
	})
}

// statusJSON is Status with its verdict, as --json prints it.
type statusJSON struct {
	kexec.Status
	Setup    setupStatus `json:"setup"`
	Ready    bool        `json:"ready"`
	Problems []string    `json:"problems"`
	Warnings []string    `json:"warnings"`
	Notes    []string    `json:"notes"`
}

// statusConfigPath is the config status checks, and statusFindTarget
// how it finds the target's device; tests repoint them.
var (
	statusConfigPath = config.DefaultPath
	statusFindTarget = func(spec string) (string, error) {
		dev, err := blockdev.Find(spec, blockdev.Sys{})
		if err != nil {
			return "", err
		}
		return dev.Path, nil
	}
)

// setupStatus is what status checks beyond the kernel: the config, the
// dump target, and whether the loaded image is older than what it was
// built from.
type setupStatus struct {
	Config        string     `json:"config"`
	ConfigMissing bool       `json:"config_missing,omitempty"`
	ConfigError   string     `json:"config_error,omitempty"`
	Target        string     `json:"target,omitempty"`
	TargetDevice  string     `json:"target_device,omitempty"`
	TargetError   string     `json:"target_error,omitempty"`
	Loaded        *loadState `json:"loaded,omitempty"`
	// CaptureCPUs is the nr_cpus= of the loaded capture command line.
	CaptureCPUs int `json:"capture_cpus,omitempty"`
	// DumpDir is where the target's dumps are when it is mounted here,
	// LastDump the newest of them; Leftovers are cut-short dumps.
	DumpDir   string         `json:"dump_dir,omitempty"`
	LastDump  *crashdir.Dump `json:"last_dump,omitempty"`
	Leftovers []string       `json:"leftovers,omitempty"`
	DumpsNote string         `json:"dumps_note,omitempty"`
	Problems  []string       `json:"-"`
	Warnings  []string       `json:"-"`
}

func checkSetup(cf *configFlag) setupStatus {
	st := setupStatus{Config: cf.path}
	cfg, err := cf.load()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		st.ConfigError = err.Error()
		st.Problems = append(st.Problems, err.Error()) // config errors say "config:"
	} else if _, err := os.Stat(cf.path); errors.Is(err, os.ErrNotExist) {
		st.ConfigMissing = true
		st.Problems = append(st.Problems, fmt.Sprintf("there is no config file %s, so no dump target: write one with at least "+
			"target = \"LABEL=…\" (configs/gokdump.toml documents every key)", cf.path))
	} else if cfg.Target == "" {
		st.Problems = append(st.Problems, fmt.Sprintf("no dump target in %s (target = \"LABEL=…\")", cf.path))
	} else if t, _ := config.ParseTarget(cfg.Target); t.Network() {
		st.Target = cfg.Target
		st.Problems = append(st.Problems, netTargetProblems(cfg)...)
	} else {
		st.Target = cfg.Target
		if dev, err := statusFindTarget(strings.TrimPrefix(cfg.Target, config.RawPrefix)); err != nil {
			st.TargetError = err.Error()
			st.Problems = append(st.Problems, fmt.Sprintf("dump target %s not found on this machine: %v", cfg.Target, err))
		} else {
			st.TargetDevice = dev
			st.scanDumps(dev, cfg.Path)
		}
	}
	if ls, err := readLoadState(); err == nil {
		st.Loaded = ls
		inputs := []string{ls.Kernel, cf.path}
		if fi, err := os.Stat(ls.Initrd); err != nil {
			st.Warnings = append(st.Warnings, fmt.Sprintf("the loaded image %s is gone", ls.Initrd))
		} else if !fi.ModTime().UTC().Equal(ls.InitrdTime) {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s changed since it was loaded: run gokdump rebuild", ls.Initrd))
		} else if stale(ls.Initrd, inputs) {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s is older than the kernel or %s: run gokdump rebuild", ls.Initrd, cf.path))
		}
		st.CaptureCPUs, _ = kexec.CmdlineCPUs(ls.Cmdline)
		if cfg != nil && st.CaptureCPUs > 0 {
			ram, err := memTotal(kexecProcRoot + "/meminfo")
			if n, why := captureCPUs(cfg, cfg.KernelArgs, ram, err); err == nil && n != st.CaptureCPUs {
				st.Warnings = append(st.Warnings, fmt.Sprintf("the capture kernel is loaded with nr_cpus=%d, but %s gives %d now: run gokdump load",
					st.CaptureCPUs, why, n))
			}
		}
	}
	return st
}

// scanDumps looks at the dumps already on the target, when it is mounted.
func (st *setupStatus) scanDumps(dev, path string) {
	where, dumps, err := dumpsOn(dev, path)
	if err != nil {
		st.DumpsNote = err.Error()
		return
	}
	st.DumpDir = where
	for i := range dumps {
		d := dumps[i]
		switch d.State {
		case crashdir.Incomplete, crashdir.InProgress:
			st.Leftovers = append(st.Leftovers, d.String())
		}
		if d.State != crashdir.NoDump {
			st.LastDump = &d
		}
	}
	for _, l := range st.Leftovers {
		st.Warnings = append(st.Warnings, "a dump that did not finish: "+l)
	}
}

func runStatus(w io.Writer, asJSON bool, cf *configFlag) error {
	s, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot)
	if err != nil {
		return err
	}
	setup := checkSetup(cf)
	problems := append(append([]string{}, s.Problems()...), setup.Problems...)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(statusJSON{Status: s, Setup: setup, Ready: len(problems) == 0,
			Problems: problems, Warnings: append([]string{}, setup.Warnings...), Notes: append([]string{}, s.Notes()...)}); err != nil {
			return err
		}
	} else {
		printStatus(w, s)
		printSetup(w, setup, len(problems) == 0)
	}
	if len(problems) > 0 {
		return errNotCaught
	}
	return nil
}

func printSetup(w io.Writer, st setupStatus, ready bool) {
	fmt.Fprintf(w, "config:         %s", st.Config)
	switch {
	case st.ConfigError != "":
		fmt.Fprintf(w, " (INVALID)")
	case st.ConfigMissing:
		fmt.Fprintf(w, " (does not exist: the defaults, no target)")
	}
	fmt.Fprintln(w)
	if st.Target != "" {
		dev := st.TargetDevice
		if dev == "" {
			dev = "NOT FOUND"
		}
		fmt.Fprintf(w, "dump target:    %s → %s\n", st.Target, dev)
	}
	if st.Loaded != nil {
		via := ""
		if st.Loaded.Syscall != "" {
			via = " with " + kexec.SyscallName(st.Loaded.Syscall)
		}
		fmt.Fprintf(w, "loaded image:   %s (loaded %s%s)\n", st.Loaded.Initrd, st.Loaded.LoadedAt.Format(time.RFC3339), via)
	}
	if st.CaptureCPUs > 0 {
		fmt.Fprintf(w, "capture CPUs:   %d (nr_cpus= of the loaded command line; the save runs a worker on each)\n", st.CaptureCPUs)
	}
	switch {
	case st.LastDump != nil:
		fmt.Fprintf(w, "last dump:      %s\n", st.LastDump)
	case st.DumpDir != "":
		fmt.Fprintf(w, "last dump:      none in %s\n", st.DumpDir)
	case st.DumpsNote != "":
		fmt.Fprintf(w, "last dump:      unknown (%s)\n", st.DumpsNote)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem:        %s\n", p)
	}
	for _, p := range st.Warnings {
		fmt.Fprintf(w, "warning:        %s\n", p)
	}
	if ready {
		fmt.Fprintln(w, "verdict:        a crash now would be caught")
	} else {
		fmt.Fprintln(w, "verdict:        a crash now would NOT be caught")
	}
}

func printStatus(w io.Writer, s kexec.Status) {
	if s.Supported {
		reserved := "none"
		if s.CrashSize > 0 {
			reserved = fmt.Sprintf("%s (%d bytes)", kexec.MiB(s.CrashSize), s.CrashSize)
		}
		fmt.Fprintf(w, "reserved:       %s\n", reserved)
		switch {
		case s.CMAReserved > 0:
			fmt.Fprintf(w, "cma part:       %s reserved as CMA of %s asked (crashkernel=…,cma), lent to the running system until a crash\n",
				kexec.MiB(s.CMAReserved), kexec.MiB(s.CMARequested))
			fmt.Fprintf(w, "capture memory: %s (the reservation and its CMA part)\n", kexec.MiB(s.CrashSize+s.CMAReserved))
		case s.CMARequested > 0:
			fmt.Fprintf(w, "cma part:       none reserved (%s asked with crashkernel=…,cma)\n", kexec.MiB(s.CMARequested))
		}
		if s.ElfcorehdrSize > 0 {
			fmt.Fprintf(w, "elfcorehdr:     %d bytes kept for the capture's ELF headers\n", s.ElfcorehdrSize)
		}
		if s.CrashHotplugCPU != nil || s.CrashHotplugMemory != nil {
			fmt.Fprintf(w, "crash hotplug:  cpu %s, memory %s (yes: the kernel updates the loaded capture on hotplug)\n",
				yesNo(s.CrashHotplugCPU), yesNo(s.CrashHotplugMemory))
		}
	}
	ck := "not on the kernel command line"
	if len(s.Crashkernel) > 0 {
		ck = "crashkernel=" + strings.Join(s.Crashkernel, " crashkernel=")
	}
	fmt.Fprintf(w, "boot parameter: %s\n", ck)
	if s.Supported {
		loaded := "not loaded"
		if s.Loaded {
			loaded = "loaded"
		}
		fmt.Fprintf(w, "capture kernel: %s\n", loaded)
	}
	if s.Lockdown != "" {
		fmt.Fprintf(w, "lockdown:       %s\n", s.Lockdown)
	}
	if s.KexecLoadDisabled {
		fmt.Fprintf(w, "kexec:          disabled until reboot (kernel.kexec_load_disabled)\n")
	}
	for _, p := range s.Problems() {
		fmt.Fprintf(w, "problem:        %s\n", p)
	}
	for _, n := range s.Notes() {
		fmt.Fprintf(w, "note:           %s\n", n)
	}
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "no"
}

// netTargetProblems checks what a network target needs on this machine
// for the image to be built: for ssh, the key and a pinned host key. The
// server itself is not contacted (gokdump propagate does that).
func netTargetProblems(cfg *config.Config) []string {
	var ps []string
	for _, t := range cfg.NetworkTargets() {
		if t.Kind == config.KindS3 {
			// What build packs: the same checks, the same messages.
			if _, err := s3Files(cfg, &builder.Options{}, hostRead, io.Discard); err != nil {
				ps = append(ps, fmt.Sprintf("s3 target %s: %v", t, err))
			}
			continue
		}
		if t.Kind != config.KindSSH {
			continue
		}
		if _, err := sshdump.LoadSigner(cfg.SSHKey); err != nil {
			ps = append(ps, fmt.Sprintf("ssh target %s: %v (gokdump propagate)", t, err))
		}
		hk, err := sshdump.LoadHostKeys(cfg.KnownHosts)
		if err != nil {
			ps = append(ps, fmt.Sprintf("ssh target %s: %v (gokdump propagate)", t, err))
		} else if len(hk.Algorithms(t.HostPort())) == 0 {
			ps = append(ps, fmt.Sprintf("ssh target %s: %s pins no host key for it (gokdump propagate)", t, cfg.KnownHosts))
		}
	}
	return ps
}
