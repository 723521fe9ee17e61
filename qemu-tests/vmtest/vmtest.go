package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/internal/vm"
)

// Options say what to test. Only Kernel is required; zero fields take the
// defaults noted.
type Options struct {
	// Kernel is the boot image under test: an x86-64 bzImage (vmlinuz)
	// or an arm64 Image (raw or gzipped). It is both the kernel that
	// crashes and the capture kernel, as on a machine that kdumps into
	// its own kernel.
	Kernel string
	// Modules is its /lib/modules/RELEASE directory; "" when every
	// driver the run needs is built in.
	Modules string
	// VMLinux is its vmlinux with debug info: drgn must open the dump
	// with it. "" skips that check.
	VMLinux string
	// Drgn is the drgn command ("drgn"); it may carry arguments
	// ("python3 -m drgn").
	Drgn string
	// KConfig is the kernel's .config; "" looks beside the kernel and
	// in Modules (FindKConfig). NoKConfig skips the configuration check.
	KConfig   string
	NoKConfig bool
	Arch      string // GOARCH of the kernel (default: what the image is); amd64 or arm64
	MemMiB    int    // guest memory (1024)
	CPUs      int    // guest CPUs (1)
	Disk      string // the dump disk's bus: nvme (default) or virtio
	// Crash is how the first kernel dies: sysrq (default), panic, oops,
	// bug or softlockup (guest.Crashes; README says what each needs).
	Crash string
	// DumpLevel is the capture's dump level; nil is 31, gokdump's default.
	DumpLevel *filter.Level
	// CrashKernel is the crashkernel= reservation; "" is
	// DefaultCrashKernel.
	CrashKernel string
	// Accel is auto (default: KVM when a probe boots the kernel under it,
	// else TCG), kvm or tcg.
	Accel string
	// Timeout bounds the guest's whole boot, crash and capture (5m).
	Timeout time.Duration
	// Keep is a directory to keep the serial logs, the dump,
	// vmcore-dmesg.txt and report.json in; "" keeps nothing.
	Keep string
	// Stage1Init and CaptureInit are the inits to use; "" finds installed
	// ones (Stage1Paths, builder.InstalledInitPaths) or compiles them from
	// the checkout at or above the working directory, else from the
	// gokdump module the Go module there requires.
	Stage1Init, CaptureInit string
	// Dir is the work directory (images, disk); "" makes a temporary one
	// and removes it at the end.
	Dir string
	// Log, if set, receives progress lines.
	Log func(format string, args ...any)
}

// Defaults of Options.
const (
	DefaultMemMiB = 1024
	// DefaultCrashKernel is the reservation for either architecture:
	// Debian's arm64 capture kernels had 76-84 MiB available in it (6.12,
	// 7.3; 34 MiB at 80M, which worked too), as much as the x86 ones.
	DefaultCrashKernel = "128M"
	DefaultTimeout     = 5 * time.Minute
	DefaultDumpLevel   = filter.Level(31)
)

// Workload sizes: user memory with one marker per MiB, zero-filled
// memory, and a page-cache file with one marker per MiB.
const (
	anonMiB  = 64
	zeroMiB  = 32
	cacheMiB = 32
)

// ErrSetup is wrapped by Run's error when the test could not run: a tool,
// file or build missing, a bad option. Nothing is known of the kernel then.
var ErrSetup = errors.New("vmtest: setup")

// ErrUnsupportedArch is wrapped by Run's error (with ErrSetup) for an
// Options.Arch that Run has no QEMU machine for (all but amd64 and arm64).
var ErrUnsupportedArch = errors.New("architecture not supported")

// Level returns a pointer to l, for Options.DumpLevel.
func Level(l filter.Level) *filter.Level { return &l }

// Run boots the kernel under QEMU with a stage-1 init that loads the
// same kernel as the capture kernel through gokdump's loader (with a
// capture initramfs made by gokdump's builder), crashes it, and checks
// what the capture saved. The report is never nil; the error is non-nil,
// wrapping ErrSetup, exactly when the report's Result is Error. A kdump
// failure is a report with Result Fail, not an error.
func Run(ctx context.Context, o Options) (*Report, error) {
	r := &Report{Started: time.Now().UTC(), Checks: []Check{}, Phases: []Phase{}}
	err := run(ctx, &o, r)
	r.Seconds = time.Since(r.Started).Seconds()
	if err != nil {
		r.Result, r.FailedPhase, r.Error = Error, "", err.Error()
		err = fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if o.Keep != "" && r.Kernel.Path != "" {
		if kerr := keepReport(o.Keep, r); kerr != nil && err == nil {
			r.Result, r.Error = Error, kerr.Error()
			err = fmt.Errorf("%w: %w", ErrSetup, kerr)
		}
	}
	return r, err
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// defaults fills in o's zero fields and checks its values.
func (o *Options) defaults() error {
	if o.Kernel == "" {
		return errors.New("no kernel: Options.Kernel (--kernel) is required")
	}
	if o.MemMiB == 0 {
		o.MemMiB = DefaultMemMiB
	}
	if o.MemMiB < 256 {
		return fmt.Errorf("memory %d MiB: the guest needs at least 256", o.MemMiB)
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.CPUs < 1 || o.CPUs > 64 {
		return fmt.Errorf("%d CPUs: want 1 to 64", o.CPUs)
	}
	if o.Disk == "" {
		o.Disk = "nvme"
	}
	if o.Disk != "nvme" && o.Disk != "virtio" {
		return fmt.Errorf("disk %q: want nvme or virtio", o.Disk)
	}
	if o.CrashKernel == "" {
		o.CrashKernel = DefaultCrashKernel
	}
	if o.Crash == "" {
		o.Crash = guest.CrashSysrq
	}
	if !slices.Contains(guest.Crashes, o.Crash) {
		return fmt.Errorf("crash %q: want one of %s", o.Crash, strings.Join(guest.Crashes, ", "))
	}
	if o.DumpLevel == nil {
		o.DumpLevel = Level(DefaultDumpLevel)
	}
	if !o.DumpLevel.Valid() {
		return fmt.Errorf("dump level %d: want 0 to %d", *o.DumpLevel, filter.MaxLevel)
	}
	if strings.ContainsAny(o.CrashKernel, " \t\n") {
		return fmt.Errorf("crashkernel %q has a space", o.CrashKernel)
	}
	switch o.Accel {
	case "":
		o.Accel = "auto"
	case "auto", vm.KVM, vm.TCG:
	default:
		return fmt.Errorf("accel %q: want auto, kvm or tcg", o.Accel)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Drgn == "" {
		o.Drgn = "drgn"
	}
	if o.Arch != "" {
		if _, err := vm.ArchOf(o.Arch); err != nil {
			return fmt.Errorf("--arch %s: %w: gokdump vmtest boots amd64 and arm64 kernels", o.Arch, ErrUnsupportedArch)
		}
	}
	return nil
}

// work is one run's state.
type work struct {
	o      *Options
	r      *Report
	arch   vm.Arch
	dir    string
	id     string
	disk   string // the dump disk's image
	log    vm.Log
	result *vm.Result
}

// timed runs f as the phase name and records how long it took.
func (w *work) timed(name string, f func() error) error {
	start := time.Now()
	err := f()
	w.r.Phases = append(w.r.Phases, Phase{name, time.Since(start).Seconds()})
	return err
}

// fail ends the run as a kdump failure in phase.
func (w *work) fail(phase, format string, args ...any) {
	w.r.Result, w.r.FailedPhase, w.r.Error = Fail, phase, fmt.Sprintf(format, args...)
	if len(w.log) > 0 && w.r.SerialTail == "" {
		w.r.SerialTail = w.log.Tail(40)
	}
}

func run(ctx context.Context, o *Options, r *Report) (err error) {
	if err := o.defaults(); err != nil {
		return err
	}
	r.Crash, r.DumpLevel, r.Disk, r.MemMiB, r.CPUs, r.CrashKernel = o.Crash, int(*o.DumpLevel), o.Disk, o.MemMiB, o.CPUs, o.CrashKernel
	k, kerr := IdentifyKernel(o.Kernel)
	r.Kernel = k
	if kerr != nil {
		return kerr
	}
	if o.Arch != "" && o.Arch != k.Arch {
		return fmt.Errorf("%s is an %s kernel, not %s (--arch)", o.Kernel, k.Arch, o.Arch)
	}
	// The guest is the kernel's machine: amd64 is QEMU's pc, arm64 its
	// virt board (vm.Arches), whatever the host is.
	arch, err := vm.ArchOf(k.Arch)
	if err != nil {
		return err
	}
	if o.Modules != "" {
		if fi, err := os.Stat(o.Modules); err != nil || !fi.IsDir() {
			return fmt.Errorf("modules directory %s: %v", o.Modules, orNotDir(err))
		}
		if k.Release != "" && filepath.Base(filepath.Clean(o.Modules)) != k.Release {
			return fmt.Errorf("modules directory %s is not the kernel's: the kernel is %s (give its /lib/modules/%s)", o.Modules, k.Release, k.Release)
		}
		r.Kernel.Modules = o.Modules
	}
	if o.VMLinux != "" {
		if _, err := os.Stat(o.VMLinux); err != nil {
			return fmt.Errorf("vmlinux: %w", err)
		}
		if _, err := exec.LookPath(strings.Fields(o.Drgn)[0]); err != nil {
			return fmt.Errorf("--vmlinux asks for the drgn check, and %q is not installed (apt-get install python3-drgn, or --drgn CMD)", o.Drgn)
		}
		r.Kernel.VMLinux = o.VMLinux
	}
	w := &work{o: o, r: r, arch: arch, id: vm.NewID()}
	r.RunID = w.id

	// The kernel's configuration: a kernel that cannot work is a kdump
	// failure found before anything boots (or needs QEMU).
	if !o.NoKConfig {
		path := o.KConfig
		if path == "" {
			path = FindKConfig(o.Kernel, k.Release, o.Modules)
		}
		if path == "" {
			r.check(CheckKConfig, Skip, "no configuration beside the kernel or in its modules: --kconfig FILE checks one")
		} else {
			var cr *ConfigReport
			err := w.timed(PhaseConfig, func() error {
				c, err := ReadKConfig(path)
				if err != nil {
					return err
				}
				cr = CheckConfig(c, ConfigFor{Arch: k.Arch, Disk: o.Disk, Crash: o.Crash, Modules: o.Modules != ""})
				cr.Source = path
				return nil
			})
			if err != nil {
				return err
			}
			r.Config, r.Kernel.Config = cr, path
			if !cr.OK() {
				r.check(CheckKConfig, Fail, "%s lacks %s", path, strings.Join(cr.Missing, ", "))
				w.fail(PhaseConfig, "the kernel's configuration lacks %s", strings.Join(cr.Missing, ", "))
				return nil
			}
			r.check(CheckKConfig, Pass, "%s has every option kdump needs", path)
		}
	}

	for _, tool := range []string{arch.QEMU, "mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (qemu-system-x86 or qemu-system-arm, e2fsprogs)", tool)
		}
	}
	if o.Dir != "" {
		w.dir = o.Dir
	} else {
		if w.dir, err = os.MkdirTemp("", "gokdump-vmtest-"); err != nil {
			return err
		}
		defer os.RemoveAll(w.dir)
	}
	if o.Keep != "" {
		// Runs before the work directory goes, whatever the outcome.
		defer func() {
			if kerr := w.keepFiles(); kerr != nil && err == nil {
				err = kerr
			}
		}()
	}
	var stage1 string
	if err := w.timed(PhaseSetup, func() (err error) {
		stage1, err = w.setup(ctx)
		return err
	}); err != nil {
		return err
	}

	m := vm.Machine{Arch: arch, Accel: vm.TCG, MemMiB: o.MemMiB, CPUs: o.CPUs, Kernel: o.Kernel, Initrd: stage1,
		Append: fmt.Sprintf("console=%s crashkernel=%s panic=5 %s", arch.Console, o.CrashKernel, guest.CrashArgs(o.Crash)),
		Disks:  []vm.DiskDev{{Bus: o.Disk, Image: w.disk}}, Timeout: o.Timeout}
	switch o.Accel {
	case vm.KVM:
		m.Accel, r.AccelReason = vm.KVM, "asked for (--accel kvm)"
	case vm.TCG:
		r.AccelReason = "asked for (--accel tcg)"
	default:
		o.logf("probing KVM (at most %v)", vm.ProbeTimeout)
		w.timed(PhaseProbe, func() error {
			var ok bool
			ok, r.AccelReason = vm.ProbeKVM(ctx, m)
			if ok {
				m.Accel = vm.KVM
			}
			return nil
		})
	}
	r.Accel = m.Accel
	o.logf("booting %s under %s (%s)", k.Release, strings.ToUpper(m.Accel), r.AccelReason)
	if err := w.boot(ctx, m); err != nil {
		return err
	}
	if line, died := vm.DiedBeforeStage1(w.log); died && !w.result.TimedOut {
		o.logf("the first kernel died before the stage-1 init (%s): booting again", line)
		r.Rebooted = line
		if err := os.Rename(filepath.Join(w.dir, "serial.log"), filepath.Join(w.dir, "serial-first-boot.log")); err != nil {
			return err
		}
		if err := w.boot(ctx, m); err != nil {
			return err
		}
	}
	w.consolePhases()
	if r.Result == Fail {
		return nil
	}
	start := time.Now()
	err = w.checks(ctx)
	r.Phases = append(r.Phases, Phase{PhaseChecks, time.Since(start).Seconds()})
	if err != nil {
		return err
	}
	if r.Result == "" {
		r.Result = Pass
	}
	return nil
}

func orNotDir(err error) error {
	if err == nil {
		return errors.New("not a directory")
	}
	return err
}

// setup makes the dump disk and both images; it returns the stage-1
// image.
func (w *work) setup(ctx context.Context) (string, error) {
	o := w.o
	w.disk = filepath.Join(w.dir, "disk.img")
	stage := filepath.Join(w.dir, "disk-root")
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return "", err
	}
	if err := vm.WriteCacheFile(filepath.Join(stage, "cachefile"), w.id, cacheMiB); err != nil {
		return "", err
	}
	if err := vm.MakeDisk(vm.Disk{Bus: o.Disk, FS: "ext4", Label: "GOKDUMP", SizeMiB: o.MemMiB + 512}, w.disk, stage); err != nil {
		return "", err
	}
	os.RemoveAll(stage)

	// The drivers of the dump disk and its filesystem, where they are
	// modules; built in, the builder skips them (modules.builtin), and
	// a tree without them leaves them to the kernel.
	var mods []string
	if o.Modules != "" {
		mods = []string{"ext4"}
		if o.Disk == "virtio" {
			mods = append(mods, "virtio_blk", "virtio_pci")
		} else {
			mods = append(mods, "nvme")
		}
	}
	src := "."
	if o.CaptureInit == "" || o.Stage1Init == "" {
		src = sourceDir(ctx, ".")
	}
	capture := filepath.Join(w.dir, "capture.cpio.zst")
	o.logf("building the capture initramfs")
	res, err := vm.WriteImage(ctx, capture, builder.Options{
		Init:            o.CaptureInit,
		Dir:             src,
		Arch:            w.arch.GOARCH,
		ModulesDir:      o.Modules,
		OptionalModules: mods,
		Config:          fmt.Appendf(nil, "target = \"LABEL=GOKDUMP\"\ndump_level = %d\n", *o.DumpLevel),
		Log:             o.Log,
	})
	if err != nil {
		return "", err
	}
	w.r.CaptureInit = res.Init.String()
	if o.CaptureInit != "" {
		w.r.CaptureInit = o.CaptureInit + " (given)"
	}

	init, how, err := findStage1(ctx, o.Stage1Init, executable(), src, w.arch.GOARCH, w.dir)
	if err != nil {
		return "", err
	}
	w.r.Stage1Init = how
	stage1Mods := mods
	if guest.LKDTMType(o.Crash) != "" && o.Modules != "" {
		stage1Mods = append(slices.Clone(mods), "lkdtm")
	}
	img := filepath.Join(w.dir, "stage1.cpio")
	o.logf("building the stage-1 initramfs")
	_, err = vm.WriteStage1(ctx, img, vm.Stage1{
		Init:            init,
		Arch:            w.arch.GOARCH,
		ModulesDir:      o.Modules,
		OptionalModules: stage1Mods,
		Params: guest.Params{ID: w.id, AnonMiB: anonMiB, ZeroMiB: zeroMiB,
			CacheDevice: vm.DevicePath([]string{o.Disk}, 0), CacheFSType: "ext4", CacheFile: "cachefile", Crash: o.Crash},
		CaptureKernel: o.Kernel,
		CaptureInitrd: capture,
	})
	return img, err
}

func executable() string {
	exe, _ := os.Executable()
	return exe
}

// boot runs the guest once.
func (w *work) boot(ctx context.Context, m vm.Machine) error {
	res, err := m.Boot(ctx, filepath.Join(w.dir, "serial.log"))
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.result, w.log = res, res.Log
	return nil
}

var (
	stage1FailedRE = regexp.MustCompile(`^stage1: \[[^]]*\] FAILED: (.*)$`)
	// What the stage-1 init says once the capture kernel is loaded.
	stage1LoadedRE = regexp.MustCompile(`^stage1: \[[^]]*\] capture kernel loaded with (\S+) .*, cmdline: (.*)$`)
)

// loaded returns the system call the stage-1 init loaded the capture
// kernel with, and the command line it gave it; "" when it did not say.
func loaded(l vm.Log) (syscall, cmdline string) {
	if _, m, ok := l.Find(stage1LoadedRE); ok {
		return m[1], m[2]
	}
	return "", ""
}

// consolePhases times the guest's phases from its console and finds the
// phase a failed run stopped in.
func (w *work) consolePhases() {
	points := map[string]time.Duration{}
	for _, p := range vm.Phases(w.log, w.result.Elapsed) {
		points[p.Name] = p.At
	}
	steps := []struct{ phase, from, to string }{
		{PhaseBoot, "", vm.PhaseStage1},
		{PhaseLoad, vm.PhaseStage1, vm.PhaseLoaded},
		{PhaseCrash, vm.PhaseLoaded, vm.PhaseCrash},
		{PhaseCaptureBoot, vm.PhaseCrash, vm.PhaseCapture},
		{PhaseSave, vm.PhaseCapture, vm.PhaseSaved},
		{PhaseReboot, vm.PhaseSaved, vm.PhaseExit},
	}
	w.r.Loader, w.r.CaptureCmdline = loaded(w.log)
	out := vm.ParseOutcome(w.log)
	if out.Status == "INCOMPLETE" {
		points[vm.PhaseSaved] = out.At
	}
	stopped := ""
	for _, s := range steps {
		to, ok := points[s.to]
		if !ok {
			stopped = s.phase
			break
		}
		w.r.Phases = append(w.r.Phases, Phase{s.phase, (to - points[s.from]).Seconds()})
	}
	if stopped == "" {
		return
	}
	how := fmt.Sprintf("QEMU exited after %.0fs (%v)", w.result.Elapsed.Seconds(), w.result.Err)
	if w.result.TimedOut {
		how = fmt.Sprintf("no progress: killed after the %v timeout", w.o.Timeout)
	}
	_, m, failed := w.log.Find(stage1FailedRE)
	switch {
	case stopped == PhaseBoot:
		w.fail(stopped, "the first kernel never ran the stage-1 init: %s", how)
	case failed && (stopped == PhaseLoad || stopped == PhaseCrash):
		w.fail(stopped, "stage-1 init: %s", m[1])
	case stopped == PhaseLoad || stopped == PhaseCrash:
		w.fail(stopped, "the stage-1 init stopped: %s", how)
	case stopped == PhaseCaptureBoot:
		w.fail(stopped, "the capture kernel did not run gokdump's init after the crash: %s", how)
	case stopped == PhaseSave && out.Status == "FAILED":
		w.fail(stopped, "the capture failed: %s", out.Reason)
	default:
		w.fail(stopped, "the capture saved no dump: %s", how)
	}
}

// reasons are what the crashed kernel's log says for each crash method
// (any one of them).
var reasons = map[string][]string{
	guest.CrashSysrq:      {"sysrq triggered crash", "Trigger a crash"},
	guest.CrashPanic:      {"Attempted to kill init"},
	guest.CrashOops:       {"NULL pointer dereference"},
	guest.CrashBUG:        {"kernel BUG at"},
	guest.CrashSoftlockup: {"soft lockup"},
}

// checks reads the dump back from the disk and checks it.
func (w *work) checks(ctx context.Context) error {
	r, o := w.r, w.o
	out := vm.ParseOutcome(w.log)
	dumpPath := out.Path
	dir := path.Dir(dumpPath)
	entries, err := vm.LsFrom(w.disk, dir)
	if err != nil {
		return err
	}
	dumpName := crashdir.VMCore
	if out.Status == "INCOMPLETE" {
		dumpName = crashdir.VMCoreIncomplete
	}
	e, ok := entries[path.Base(dumpPath)]
	if !ok {
		r.check(CheckSaved, Fail, "the capture reported %s, and %s holds no %s", dumpPath, dir, path.Base(dumpPath))
		w.fail(PhaseSave, "the dump the capture reported is not on the disk")
		return nil
	}
	dump := filepath.Join(w.dir, dumpName)
	if err := vm.ExtractFrom(w.disk, dumpPath, dump); err != nil {
		return err
	}
	d, err := anydump.Open(dump)
	if err != nil {
		r.check(CheckSaved, Fail, "%s does not open: %v", dumpPath, err)
		w.fail(PhaseSave, "the dump does not open: %v", err)
		return nil
	}
	info := d.Info()
	vmci := d.VMCOREINFO
	logText, logErr := dumpLog(d)
	d.Close()
	c, err := vm.TakeCensus(dump, w.id)
	if err != nil {
		return fmt.Errorf("reading the dump's pages: %w", err)
	}
	r.Dump = &DumpInfo{Path: dumpPath, Bytes: e.Size, Format: info.Format, Level: out.Level,
		Pages: c.Pages, MaxPFN: info.MaxPFN, Panic: info.Panic}

	// dump-saved: complete, private.
	dirMode := uint32(0)
	if parent, err := vm.LsFrom(w.disk, path.Dir(dir)); err == nil {
		dirMode = parent[path.Base(dir)].Mode & 0o777
	}
	switch {
	case out.Status == "INCOMPLETE":
		r.check(CheckSaved, Fail, "saved incomplete: %s", out.Reason)
	case !info.Complete:
		r.check(CheckSaved, Fail, "%s is not complete: %s", dumpPath, incompleteWhy(info))
	case e.Mode&0o777 != 0o600 || dirMode != 0o700:
		r.check(CheckSaved, Fail, "%s is mode %o in a directory of mode %o; want 600 in 700", dumpPath, e.Mode&0o777, dirMode)
	default:
		r.check(CheckSaved, Pass, "%s: %d bytes, %s, complete, 0600 in a 0700 directory", dumpPath, e.Size, info.Format)
	}

	// The release: the image's, or the booted kernel's own word for it.
	want, from := r.Kernel.Release, "the image's"
	if want == "" {
		if _, m, ok := w.log.Find(regexp.MustCompile(`stage1: \[[^]]*\] start, kernel (\S+)`)); ok {
			want, from, r.Kernel.Release = m[1], "the booted kernel's (uname)", m[1]
		}
	}
	switch got := ""; {
	case vmci == nil:
		r.check(CheckRelease, Fail, "the dump has no VMCOREINFO")
	case func() bool { got = vmci.OSRelease(); return got != want }():
		r.check(CheckRelease, Fail, "VMCOREINFO OSRELEASE is %q, %s release is %q", got, from, want)
	default:
		r.check(CheckRelease, Pass, "OSRELEASE=%s", got)
	}

	marker := guest.Marker("KMSG", w.id, 0)
	switch {
	case logErr != nil:
		r.check(CheckKmsg, Fail, "the dump's kernel log cannot be read: %v", logErr)
		r.check(CheckReason, Fail, "the dump's kernel log cannot be read")
	default:
		if strings.Contains(logText, marker) {
			r.check(CheckKmsg, Pass, "%s is in the dump's kernel log", marker)
		} else {
			r.check(CheckKmsg, Fail, "%s is not in the dump's kernel log (%d bytes of it)", marker, len(logText))
		}
		if s, ok := containsAny(logText, reasons[o.Crash]); ok {
			r.check(CheckReason, Pass, "the log says %q", s)
		} else {
			r.check(CheckReason, Fail, "the log says none of %q (--crash %s)", reasons[o.Crash], o.Crash)
		}
	}

	level := *o.DumpLevel
	markerCheck(r, CheckUser, "user", c.Markers["USER"], anonMiB, level.Has(filter.ExcludeUser), !level.Has(filter.ExcludeUser))
	dropCache := level.Has(filter.ExcludeCache | filter.ExcludeCachePrivate)
	keepCache := !level.Has(filter.ExcludeCache) && !level.Has(filter.ExcludeCachePrivate)
	markerCheck(r, CheckCache, "page-cache", c.Markers["CACHE"], cacheMiB, dropCache, keepCache)

	// vmcore-dmesg.txt beside the dump.
	if de, ok := entries[crashdir.DmesgFile]; !ok {
		r.check(CheckDmesgFile, Fail, "no %s in %s", crashdir.DmesgFile, dir)
	} else {
		dmesg := filepath.Join(w.dir, crashdir.DmesgFile)
		if err := vm.ExtractFrom(w.disk, dir+"/"+crashdir.DmesgFile, dmesg); err != nil {
			return err
		}
		b, err := os.ReadFile(dmesg)
		if err != nil {
			return err
		}
		switch {
		case de.Mode&0o777 != 0o600:
			r.check(CheckDmesgFile, Fail, "%s is mode %o, want 600", crashdir.DmesgFile, de.Mode&0o777)
		case !strings.Contains(string(b), marker):
			r.check(CheckDmesgFile, Fail, "%s lacks the kmsg marker", crashdir.DmesgFile)
		default:
			r.check(CheckDmesgFile, Pass, "%s: %d bytes, with the kmsg marker", crashdir.DmesgFile, len(b))
		}
	}

	if o.VMLinux == "" {
		r.check(CheckDrgn, Skip, "no --vmlinux")
	} else {
		o.logf("opening the dump with %s", o.Drgn)
		why, err := drgnCheck(ctx, o.Drgn, dump, o.VMLinux, w.dir, r.Kernel.Release, marker, reasons[o.Crash])
		switch {
		case err != nil:
			return err
		case why != "":
			r.check(CheckDrgn, Fail, "%s", why)
		default:
			r.check(CheckDrgn, Pass, "%s reads the release, the tasks and the log with %s", o.Drgn, filepath.Base(o.VMLinux))
		}
	}

	for _, c := range r.Checks {
		if c.Status == Fail {
			phase := PhaseChecks
			if c.Name == CheckSaved {
				phase = PhaseSave
			}
			w.fail(phase, "%s: %s", c.Name, c.Detail)
			break
		}
	}
	return nil
}

// markerCheck checks how many of n markers of a kind the dump holds:
// none when the level drops them, all when it keeps them, and anything
// when it drops some (the cache bits apart).
func markerCheck(r *Report, name, kind string, got, n int, drop, keep bool) {
	switch {
	case drop && got == 0:
		r.check(name, Pass, "no %s marker: dropped at this dump level", kind)
	case drop:
		r.check(name, Fail, "%d of %d %s markers are in the dump; this dump level drops them", got, n, kind)
	case keep && got == n:
		r.check(name, Pass, "all %d %s markers: kept at this dump level", n, kind)
	case keep:
		r.check(name, Fail, "%d of %d %s markers are in the dump; this dump level keeps them all", got, n, kind)
	default:
		r.check(name, Skip, "%d of %d %s markers: this dump level drops only some", got, n, kind)
	}
}

// dumpLog returns the crashed kernel's log as text.
func dumpLog(d *anydump.Dump) (string, error) {
	l, err := d.Log()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, rec := range l.Records {
		b.WriteString(rec.Text)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func incompleteWhy(in *anydump.Info) string {
	switch {
	case in.Incomplete:
		return "flagged incomplete by the capture"
	case in.Check != nil:
		return in.Check.Detail
	case in.Missing != nil:
		return fmt.Sprintf("%d pages the capture could not read", in.Missing.Pages)
	}
	return "unknown"
}

func containsAny(s string, subs []string) (string, bool) {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return x, true
		}
	}
	return "", false
}
