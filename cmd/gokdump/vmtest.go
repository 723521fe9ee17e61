package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/size"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

func init() {
	register(&command{
		name:  "vmtest",
		args:  "--kernel IMAGE | --check-config CONFIG",
		short: "crash-test a kernel's kdump in QEMU: boot it, crash it, check the dump it saves",
		long: `Boots IMAGE under QEMU (KVM when a probe boots it there, else TCG) with a
first-stage init that loads IMAGE again as the capture kernel through
gokdump's loader (kexec_file_load, else kexec_load: Debian's arm64
kernels), with a capture initramfs built by gokdump's builder;
crashes it (--crash), and checks what the capture saved: the dump (complete,
0600), VMCOREINFO's release, the run's kmsg marker and the crash in the
dump's kernel log, user and page-cache pages as the dump level says,
vmcore-dmesg.txt, and drgn reading the dump when --vmlinux is given. The
kernel's configuration is checked first when it is at hand (beside IMAGE,
in --modules, or --kconfig); --check-config checks one and boots nothing.
IMAGE is an x86-64 bzImage (QEMU's pc machine) or an arm64 Image (its virt
board, -cpu max; TCG on an x86-64 host: a cycle takes a minute or two).

--crash: sysrq (CONFIG_MAGIC_SYSRQ), panic (PID 1 exits: needs nothing),
oops, bug, softlockup (LKDTM: CONFIG_LKDTM, built in or a module in
--modules, and CONFIG_DEBUG_FS; bug CONFIG_BUG, softlockup
CONFIG_SOFTLOCKUP_DETECTOR).

exit codes: 0 kdump works; 1 kdump failed (the report names the phase; for
--check-config: an option is missing); 2 the command line is wrong; 5 the
test could not run (a tool, file or build missing): nothing is known of
the kernel.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var f vmtestFlags
			fs.StringVar(&f.kernel, "kernel", "", "the kernel boot image to test (`IMAGE`: an x86-64 bzImage or an arm64 Image, Debian's vmlinuz of either)")
			fs.StringVar(&f.modules, "modules", "", "its modules (`DIR`, /lib/modules/RELEASE); none when everything is built in")
			fs.StringVar(&f.vmlinux, "vmlinux", "", "its vmlinux with debug info (`FILE`): drgn must open the dump with it")
			fs.StringVar(&f.drgn, "drgn", "drgn", "the drgn `COMMAND` for --vmlinux")
			fs.StringVar(&f.kconfig, "kconfig", "", "its .config (`FILE`; default: found beside IMAGE or in --modules)")
			fs.BoolVar(&f.noKConfig, "no-kconfig", false, "do not check the kernel's configuration")
			fs.StringVar(&f.checkConfig, "check-config", "", "only check the kernel configuration `FILE` for kdump (with --arch, --disk, --crash, --modules), boot nothing")
			fs.StringVar(&f.arch, "arch", "", "the kernel's architecture: amd64 (x86_64) or arm64 (aarch64); default: what IMAGE (or the configuration) is")
			fs.Var(&f.mem, "mem", "guest memory, a `SIZE` (default 1G)")
			fs.IntVar(&f.cpus, "cpus", 1, "guest CPUs")
			fs.StringVar(&f.disk, "disk", "nvme", "the dump disk's bus: nvme or virtio")
			fs.StringVar(&f.crash, "crash", guest.CrashSysrq, "how the kernel dies: "+strings.Join(guest.Crashes, ", "))
			fs.IntVar(&f.level, "dump-level", int(vmtest.DefaultDumpLevel), "the capture's dump `LEVEL` (0-31)")
			fs.StringVar(&f.crashkernel, "crashkernel", "", "the crashkernel= reservation (default "+vmtest.DefaultCrashKernel+")")
			fs.StringVar(&f.accel, "accel", "auto", "auto (KVM when a probe boots the kernel under it, else TCG), kvm or tcg")
			fs.DurationVar(&f.timeout, "timeout", vmtest.DefaultTimeout, "bound on the guest's boot, crash and capture")
			fs.StringVar(&f.keep, "keep", "", "keep serial.log, the dump, vmcore-dmesg.txt and report.json in `DIR`")
			fs.BoolVar(&f.json, "json", false, "print the report as JSON")
			fs.StringVar(&f.junit, "junit", "", "also write the report as JUnit XML to `FILE`")
			fs.StringVar(&f.stage1Init, "stage1-init", "", "the first kernel's init `BINARY` (default: installed, or compiled in a checkout)")
			fs.StringVar(&f.captureInit, "init", "", "the capture init `BINARY` (default: as gokdump build finds it)")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				return runVMTest(f, s)
			}
		},
	})
}

type vmtestFlags struct {
	kernel, modules, vmlinux, drgn, kconfig, checkConfig string
	noKConfig                                            bool
	arch, disk, crash, crashkernel, accel, keep, junit   string
	mem                                                  size.Flag
	cpus, level                                          int
	timeout                                              time.Duration
	json                                                 bool
	stage1Init, captureInit                              string
}

// errSetup is wrapped by vmtest when the test could not run: exit 5.
var errSetup = vmtest.ErrSetup

// archNames maps what --arch takes to GOARCH.
var archNames = map[string]string{"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}

func (f *vmtestFlags) options(s streams) (vmtest.Options, error) {
	o := vmtest.Options{Kernel: f.kernel, Modules: f.modules, VMLinux: f.vmlinux, Drgn: f.drgn,
		KConfig: f.kconfig, NoKConfig: f.noKConfig, CPUs: f.cpus, Disk: f.disk, Crash: f.crash,
		CrashKernel: f.crashkernel, Accel: f.accel, Timeout: f.timeout, Keep: f.keep,
		Stage1Init: f.stage1Init, CaptureInit: f.captureInit}
	if f.arch != "" {
		a, ok := archNames[f.arch]
		if !ok {
			return o, usagef("--arch %q: want amd64 (x86_64) or arm64 (aarch64)", f.arch)
		}
		o.Arch = a
	}
	if f.mem.Text != "" {
		if n := size.Note(f.mem.Text, f.mem.Size); n != "" {
			fmt.Fprintf(s.err, "gokdump vmtest: note: --mem %s\n", n)
		}
		if f.mem.Size%(1<<20) != 0 || f.mem.Size < 256<<20 || f.mem.Size > 1<<40 {
			return o, usagef("--mem %s: want whole MiB, 256M to 1T", f.mem.Text)
		}
		o.MemMiB = int(f.mem.Size >> 20)
	}
	if f.cpus < 1 || f.cpus > 64 {
		return o, usagef("--cpus %d: want 1 to 64", f.cpus)
	}
	if f.disk != "nvme" && f.disk != "virtio" {
		return o, usagef("--disk %q: want nvme or virtio", f.disk)
	}
	if !slices.Contains(guest.Crashes, f.crash) {
		return o, usagef("--crash %q: want one of %s", f.crash, strings.Join(guest.Crashes, ", "))
	}
	l, err := filter.CheckLevel(f.level)
	if err != nil {
		return o, usagef("--dump-level %d: want 0 to %d", f.level, filter.MaxLevel)
	}
	o.DumpLevel = vmtest.Level(l)
	switch f.accel {
	case "auto", "kvm", "tcg":
	default:
		return o, usagef("--accel %q: want auto, kvm or tcg", f.accel)
	}
	if f.timeout <= 0 {
		return o, usagef("--timeout %v: want a positive duration such as 10m", f.timeout)
	}
	if strings.ContainsAny(f.crashkernel, " \t\n") {
		return o, usagef("--crashkernel %q: want a reservation such as 128M", f.crashkernel)
	}
	for name, v := range map[string]string{"--drgn": f.drgn} {
		if strings.TrimSpace(v) == "" {
			return o, usagef("%s is empty", name)
		}
	}
	return o, nil
}

func runVMTest(f vmtestFlags, s streams) error {
	if f.checkConfig != "" {
		if f.kernel != "" {
			return usagef("--check-config checks a configuration and boots nothing: give it without --kernel (or use --kconfig FILE with --kernel)")
		}
		return runCheckConfig(f, s)
	}
	if f.kernel == "" {
		return usagef("missing --kernel IMAGE (or --check-config CONFIG)")
	}
	if f.noKConfig && f.kconfig != "" {
		return usagef("--kconfig and --no-kconfig contradict each other")
	}
	o, err := f.options(s)
	if err != nil {
		return err
	}
	if f.junit != "" {
		// Refused before a run of minutes, not after it.
		if err := canCreate(f.junit); err != nil {
			return explain(fmt.Errorf("%w: %w", errSetup, err), "--junit %s cannot be written", f.junit)
		}
	}
	o.Log = func(format string, args ...any) {
		fmt.Fprintf(s.err, "gokdump vmtest: "+format+"\n", args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := vmtest.Run(ctx, o)
	if f.junit != "" {
		if err := writeJUnit(f.junit, rep); err != nil {
			return explain(fmt.Errorf("%w: %w", errSetup, err), "--junit %s cannot be written", f.junit)
		}
	}
	var werr error
	if f.json {
		werr = rep.WriteJSON(s.out)
	} else {
		werr = rep.WriteText(s.out)
	}
	switch {
	case runErr != nil:
		return explain(runErr, "the test could not run")
	case werr != nil:
		return werr
	case rep.Result == vmtest.Fail:
		return fmt.Errorf("kdump failed in phase %s: %s", rep.FailedPhase, rep.Error)
	}
	return nil
}

// runCheckConfig checks a configuration file and boots nothing.
func runCheckConfig(f vmtestFlags, s streams) error {
	c, err := vmtest.ReadKConfig(f.checkConfig)
	if err != nil {
		return explain(fmt.Errorf("%w: %w", errSetup, err), "%s cannot be read as a kernel configuration", f.checkConfig)
	}
	o, err := f.options(s)
	if err != nil {
		return err
	}
	arch := o.Arch
	if arch == "" {
		arch = c.Arch()
	}
	if arch == "" {
		arch = "amd64"
	}
	r := vmtest.CheckConfig(c, vmtest.ConfigFor{Arch: arch, Disk: o.Disk, Crash: o.Crash, Modules: o.Modules != ""})
	r.Source = f.checkConfig
	if f.json {
		err = r.WriteJSON(s.out)
	} else {
		err = r.WriteText(s.out)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("%s lacks what kdump needs: %s", f.checkConfig, strings.Join(r.Missing, ", "))
	}
	return nil
}

// canCreate makes sure path can be created (and leaves nothing).
func canCreate(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".gokdump-junit-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeJUnit writes the report's JUnit XML under a temporary name beside
// path and renames it into place.
func writeJUnit(path string, rep *vmtest.Report) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".gokdump-junit-")
	if err != nil {
		return err
	}
	err = rep.WriteJUnit(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
