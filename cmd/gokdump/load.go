package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/internal/size"
	"golang.org/x/sys/unix"
)

// Where the kexec commands (load, unload, status) find sysfs and procfs;
// tests point them at fixtures.
var (
	kexecSysfsRoot = "/sys"
	kexecProcRoot  = "/proc"
)

// tightHeadroom is reservation left after loading below which a capture
// kernel with a Go init is known to run short (measured in QEMU on Debian's
// 6.1 and 6.12 kernels: ~20 MiB left boots, ~13 MiB dies without
// sysctl.vm.overcommit_memory=1).
const tightHeadroom = 24 << 20

type loadFlags struct {
	config         configFlag
	kernel, initrd string
	appends        multiFlag
	cmdline        string
	cmdlineSet     bool
	dryRun         bool
	syscall        string
	noInitrd       bool
	initrdSet      bool // --initrd given, even empty
}

func init() {
	register(&command{
		name:  "load",
		short: "load the capture kernel that a panic boots into",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var f loadFlags
			fs.StringVar(&f.kernel, "kernel", "", "kernel image `PATH` (default the running kernel's: /boot/vmlinuz-$(uname -r), else\n"+
				"/usr/lib/modules/$(uname -r)/vmlinuz)")
			fs.StringVar(&f.initrd, "initrd", "", "capture initramfs `PATH` made by gokdump build (default /boot/gokdump-$(uname -r).img beside a\n"+
				"kernel in /boot, else "+builder.VarInitrdDir+"/gokdump-$(uname -r).img)")
			fs.Var(&f.appends, "append", "add `ARGS` to the command line derived from /proc/cmdline; they replace parameters\n"+
				"of the same name (repeatable)")
			fs.StringVar(&f.cmdline, "cmdline", "", "use `ARGS` as the whole capture kernel command line instead of deriving one")
			fs.StringVar(&f.syscall, "syscall", "", "load with `CALL`: file (kexec_file_load: signatures, lockdown) or classic (kexec_load,\n"+
				"which gokdump lays out itself); default file where the kernel has it, else classic")
			fs.BoolVar(&f.dryRun, "dry-run", false, "print the command line and sizes and check them, but load nothing")
			fs.BoolVar(&f.noInitrd, "no-initrd", false, "load the kernel alone: a dedicated capture kernel with its initramfs built in")
			f.config.define(fs, statusConfigPath, "configuration `FILE` whose kernel_args go on the command line, checked with the\n"+
				"line's gokdump.KEY=VALUE overrides before anything is loaded")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				fs.Visit(func(fl *flag.Flag) {
					f.cmdlineSet = f.cmdlineSet || fl.Name == "cmdline"
					f.initrdSet = f.initrdSet || fl.Name == "initrd"
				})
				return runLoad(&f, s.out)
			}
		},
	})
}

func runLoad(f *loadFlags, w io.Writer) error {
	switch f.syscall {
	case "", kexec.SyscallFile, kexec.SyscallClassic:
	default:
		return usagef("--syscall %q: want %s or %s", f.syscall, kexec.SyscallFile, kexec.SyscallClassic)
	}
	if f.cmdlineSet && len(f.appends) > 0 {
		return fmt.Errorf("--cmdline replaces the derived command line and --append adds to it: give one")
	}
	kernel, initrd, err := captureFiles(f.kernel, f.initrd, f.initrdSet || f.initrd != "", f.noInitrd)
	if err != nil {
		return err
	}
	cf := f.config
	if cf.path == "" {
		cf.path = statusConfigPath
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cmdline := f.cmdline
	var drops []kexec.Dropped
	var cpus string
	if !f.cmdlineSet {
		proc, err := os.ReadFile(filepath.Join(kexecProcRoot, "cmdline"))
		if err != nil {
			return fmt.Errorf("derive the command line: %w", err)
		}
		extra := strings.Join(f.appends, " ")
		// The config's kernel_args come first so --append can still
		// override them.
		if cfg.KernelArgs != "" {
			extra = strings.TrimSpace(cfg.KernelArgs + " " + extra)
		}
		ram, ramErr := memTotal(kexecProcRoot + "/meminfo")
		n, why := captureCPUs(cfg, extra, ram, ramErr)
		cmdline, drops = kexec.DeriveCmdline(string(proc), extra, kexec.ReadCPUs(kexecProcRoot, n))
		cpus = fmt.Sprintf("%d (%s)", n, why)
	}
	// The capture applies the line's gokdump.KEY=VALUE over its config: a
	// typo there must fail now, not after a crash.
	if err := errors.Join(cfg.ApplyCmdline(cmdline), cfg.Validate()); err != nil {
		return fmt.Errorf("the capture would start with a bad configuration (%s and the command line):\n%w", cf.path, err)
	}
	p, err := kexec.NewPlan(kernel, initrd, cmdline, kexecSysfsRoot)
	if err != nil {
		return err
	}
	p.Syscall = f.syscall
	if f.dryRun {
		printLoadPlan(w, p, drops, cpus)
		if err := p.Check(); err != nil {
			return fmt.Errorf("dry run: loading would fail: %w", err)
		}
		fmt.Fprintln(w, "dry run: nothing loaded")
		return nil
	}
	if err := p.Load(); err != nil {
		return err
	}
	if err := saveLoadState(p); err != nil {
		// Loaded all the same; only status's staleness check is lost.
		fmt.Fprintf(w, "warning:  %v\n", err)
	}
	printLoadPlan(w, p, drops, cpus)
	fmt.Fprintf(w, "loaded with %s: a crash now boots this kernel\n", kexec.SyscallName(p.Used))
	return nil
}

// captureFiles returns the capture kernel and initramfs to load or size:
// those given, else the running kernel's image and the capture image
// gokdump rebuild makes for it; no initramfs with noInitrd (a dedicated
// capture kernel has its own built in). An initramfs given empty is
// refused rather than taken for the default.
func captureFiles(kernel, initrd string, initrdSet, noInitrd bool) (string, string, error) {
	switch {
	case noInitrd && initrdSet:
		return "", "", usagef("--no-initrd and --initrd: give one")
	case initrdSet && initrd == "":
		return "", "", usagef(`--initrd "": name the image, or --no-initrd for a kernel with its initramfs built in`)
	}
	if kernel != "" && (initrdSet || noInitrd) {
		return kernel, initrd, nil
	}
	rel, err := loadKernelRelease()
	if err != nil {
		return "", "", err
	}
	k, err := hostKernel(rel)
	if err != nil {
		return "", "", err
	}
	if kernel == "" {
		if kernel, err = k.ImagePath(); err != nil {
			return "", "", explain(err, "the running kernel's image (%s) is not on this machine: name one with --kernel PATH", rel)
		}
	}
	if !initrdSet && !noInitrd {
		initrd = k.Initrd
	}
	return kernel, initrd, nil
}

// captureCPUs is how many CPUs the capture kernel is to bring up: the
// config's capture_cpus, with extra's gokdump.capture_cpus= over it (as
// the capture applies its command line), "auto" for a machine with ram
// bytes of memory (err: unknown, then one); and why, in words.
func captureCPUs(cfg *config.Config, extra string, ram uint64, err error) (int, string) {
	c := cfg.Clone()
	_ = c.ApplyCmdline(extra) // a bad value is kept out here and reported by the caller's checks
	src := c.Source("capture_cpus")
	if c.CaptureCPUs != config.CaptureCPUsAuto {
		return c.CaptureCPUs, fmt.Sprintf("capture_cpus = %d, from %s", c.CaptureCPUs, src)
	}
	if err != nil {
		return 1, fmt.Sprintf(`capture_cpus = "auto", from %s; this machine's memory is unknown: %v`, src, err)
	}
	return config.CPUsForRAM(ram), fmt.Sprintf(`capture_cpus = "auto", from %s: one per %s of memory, 1 to %d; this machine has %s`,
		src, size.Size(config.CPUsPerRAM), config.MaxAutoCPUs, size.Size(ram))
}

// printLoadPlan shows what a load puts where, and what of the running
// kernel's command line was left out; cpus says how many CPUs the
// capture kernel brings up and why ("" when the command line was given
// whole).
func printLoadPlan(w io.Writer, p *kexec.Plan, drops []kexec.Dropped, cpus string) {
	fmt.Fprintf(w, "kernel:   %s\n", p.Kernel)
	if p.Image != nil {
		fmt.Fprintf(w, "          %s file, %s in memory (init_size), boot protocol %s\n",
			kexec.MiB(uint64(p.KernelSize)), kexec.MiB(p.KernelMemory()), p.Image.ProtocolString())
		if p.Image.Version != "" {
			fmt.Fprintf(w, "          %s\n", p.Image.Version)
		}
	} else if p.Arm64 != nil {
		fmt.Fprintf(w, "          %s file, %s in memory (image_size), %s\n",
			kexec.MiB(uint64(p.KernelSize)), kexec.MiB(p.KernelMemory()), kernelKind(p))
	} else {
		fmt.Fprintf(w, "          %s\n", kexec.MiB(uint64(p.KernelSize)))
	}
	if p.Initrd != "" {
		fmt.Fprintf(w, "initrd:   %s\n          %s (%d bytes)\n", p.Initrd, kexec.MiB(uint64(p.InitrdSize)), p.InitrdSize)
	}
	fmt.Fprintf(w, "cmdline:  %s\n", p.Cmdline)
	if p.Used != "" {
		fmt.Fprintf(w, "syscall:  %s\n", kexec.SyscallName(p.Used))
	} else {
		fmt.Fprintf(w, "syscall:  %s\n", kexec.SyscallName(p.Syscall))
	}
	printDropped(w, drops)
	if cpus != "" {
		fmt.Fprintf(w, "cpus:     %s\n", cpus)
	}
	need := p.Need()
	switch {
	case !p.ReservedKnown:
		fmt.Fprintf(w, "reserved: unknown (no kernel/kexec_crash_size in %s); the load takes about %s\n", kexecSysfsRoot, kexec.MiB(need))
	case p.Reserved < need:
		fmt.Fprintf(w, "reserved: %s; the load takes about %s, %s short\n", kexec.MiB(p.Reserved), kexec.MiB(need), kexec.MiB(need-p.Reserved))
	default:
		left := p.Reserved - need
		fmt.Fprintf(w, "reserved: %s; the load takes about %s, leaving %s for the capture kernel to run in\n",
			kexec.MiB(p.Reserved), kexec.MiB(need), kexec.MiB(left))
		if left < tightHeadroom {
			fmt.Fprintf(w, "warning:  that is tight; the capture kernel may run out of memory (crashkernel=%s is safer)\n",
				kexec.SuggestCrashkernel(need))
		}
	}
}

// printDropped lists the parameters of /proc/cmdline left out of the
// capture's, grouped by why.
func printDropped(w io.Writer, drops []kexec.Dropped) {
	var order []string
	args := map[string][]string{}
	for _, d := range drops {
		if _, ok := args[d.Reason]; !ok {
			order = append(order, d.Reason)
		}
		args[d.Reason] = append(args[d.Reason], d.Arg)
	}
	label := "dropped:"
	for _, why := range order {
		fmt.Fprintf(w, "%-9s %s (%s)\n", label, strings.Join(args[why], " "), why)
		label = ""
	}
}

// loadKernelRelease is uname -r, for the default paths.
func loadKernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
