package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/kexec"
	"golang.org/x/sys/unix"
)

// Where the kexec commands (load, unload, status) find sysfs and procfs;
// tests point them at fixtures.
var (
	kexecSysfsRoot = "/sys"
	kexecProcRoot  = "/proc"
)

// tightHeadroom is reservation left after loading below which a capture
// kernel with a Go init is known to run short (REFERENCE.md §4: ~20 MiB
// left boots, ~13 MiB dies without overcommit).
const tightHeadroom = 24 << 20

type loadFlags struct {
	kernel, initrd string
	appends        multiFlag
	cmdline        string
	cmdlineSet     bool
	dryRun         bool
	noInitrd       bool
}

func init() {
	register(&command{
		name:  "load",
		short: "load the capture kernel that a panic boots into",
		setup: func(fs *flag.FlagSet) func([]string) error {
			var f loadFlags
			fs.StringVar(&f.kernel, "kernel", "", "kernel image `PATH` (default the running kernel's: /boot/vmlinuz-$(uname -r), else\n"+
				"/usr/lib/modules/$(uname -r)/vmlinuz)")
			fs.StringVar(&f.initrd, "initrd", "", "capture initramfs `PATH` made by gokdump build (default /boot/gokdump-$(uname -r).img beside a\n"+
				"kernel in /boot, else "+builder.VarInitrdDir+"/gokdump-$(uname -r).img)")
			fs.Var(&f.appends, "append", "add `ARGS` to the command line derived from /proc/cmdline; they replace parameters\n"+
				"of the same name (repeatable)")
			fs.StringVar(&f.cmdline, "cmdline", "", "use `ARGS` as the whole capture kernel command line instead of deriving one")
			fs.BoolVar(&f.dryRun, "dry-run", false, "print the command line and sizes and check them, but load nothing")
			fs.BoolVar(&f.noInitrd, "no-initrd", false, "load the kernel alone: a dedicated capture kernel with its initramfs built in")
			return func(args []string) error {
				if len(args) != 0 {
					return errUsage
				}
				fs.Visit(func(fl *flag.Flag) { f.cmdlineSet = f.cmdlineSet || fl.Name == "cmdline" })
				return runLoad(&f, os.Stdout)
			}
		},
	})
}

func runLoad(f *loadFlags, w io.Writer) error {
	if f.cmdlineSet && len(f.appends) > 0 {
		return fmt.Errorf("--cmdline replaces the derived command line and --append adds to it: give one")
	}
	if f.noInitrd && f.initrd != "" {
		return fmt.Errorf("--no-initrd and --initrd: give one")
	}
	kernel, initrd := f.kernel, f.initrd
	if kernel == "" || (initrd == "" && !f.noInitrd) {
		rel, err := loadKernelRelease()
		if err != nil {
			return err
		}
		k, err := hostKernel(rel)
		if err != nil {
			return err
		}
		if kernel == "" {
			if kernel, err = k.ImagePath(); err != nil {
				return err
			}
		}
		if initrd == "" && !f.noInitrd {
			initrd = k.Initrd
		}
	}
	cmdline := f.cmdline
	if !f.cmdlineSet {
		proc, err := os.ReadFile(filepath.Join(kexecProcRoot, "cmdline"))
		if err != nil {
			return fmt.Errorf("derive the command line: %w", err)
		}
		extra := strings.Join(f.appends, " ")
		// The config's kernel_args come first so --append can still
		// override them.
		if cfg, err := config.Load(statusConfigPath); err == nil && cfg.KernelArgs != "" {
			extra = strings.TrimSpace(cfg.KernelArgs + " " + extra)
		}
		cmdline = kexec.CaptureCmdline(string(proc), extra)
	}
	p, err := kexec.NewPlan(kernel, initrd, cmdline, kexecSysfsRoot)
	if err != nil {
		return err
	}
	if f.dryRun {
		printLoadPlan(w, p)
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
	printLoadPlan(w, p)
	fmt.Fprintln(w, "loaded: a crash now boots this kernel")
	return nil
}

// printLoadPlan shows what a load puts where.
func printLoadPlan(w io.Writer, p *kexec.Plan) {
	fmt.Fprintf(w, "kernel:   %s\n", p.Kernel)
	if p.Image != nil {
		fmt.Fprintf(w, "          %s file, %s in memory (init_size), boot protocol %s\n",
			kexec.MiB(uint64(p.KernelSize)), kexec.MiB(p.KernelMemory()), p.Image.ProtocolString())
		if p.Image.Version != "" {
			fmt.Fprintf(w, "          %s\n", p.Image.Version)
		}
	} else {
		fmt.Fprintf(w, "          %s\n", kexec.MiB(uint64(p.KernelSize)))
	}
	if p.Initrd != "" {
		fmt.Fprintf(w, "initrd:   %s\n          %s (%d bytes)\n", p.Initrd, kexec.MiB(uint64(p.InitrdSize)), p.InitrdSize)
	}
	fmt.Fprintf(w, "cmdline:  %s\n", p.Cmdline)
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

// loadKernelRelease is uname -r, for the default paths.
func loadKernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
