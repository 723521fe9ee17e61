// Package harness runs gokdump's QEMU crash cycles: it fetches a Debian
// kernel, builds the first-stage and capture images, makes the target disk,
// boots QEMU under TCG and reads back what the capture kernel saved. The
// crash tests and `make demo` share it.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/internal/vm"
)

// RepoRoot finds the checkout: the nearest parent of the working directory
// holding scripts/fetch-kernel.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "scripts", "fetch-kernel")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("harness: no gokdump checkout above %s", wd)
		}
	}
}

// NeedTools reports the first missing program.
func NeedTools(tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run scripts/install-deps (make test and make demo do)", tool)
		}
	}
	return nil
}

// runKeyValues runs one of our scripts that report their results as
// KEY=VALUE lines on standard output, and returns those and the output.
func runKeyValues(cmd *exec.Cmd) (map[string]string, []byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, out, fmt.Errorf("%v\n%s", err, stderr.String())
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if key, val, ok := strings.Cut(l, "="); ok {
			kv[key] = val
		}
	}
	return kv, append(out, stderr.Bytes()...), nil
}

// Kernel is an unpacked Debian kernel package.
type Kernel struct {
	// Name is the line as asked for (6.1, latest); Line the kernel's own
	// line (major.minor of its release: 7.3 for latest).
	Name, Line                            string
	KVer, Root, VMLinuz, Modules, VMLinux string
	Version, Suite                        string // Debian package version, a suite serving it
	Unverified                            string // packages fetched from the pool, unverified
}

var (
	kernelMu sync.Mutex
	kernels  = map[string]Kernel{}
)

// GetKernel fetches (or finds in the cache) the current Debian cloud
// kernel of a line (see Line; "latest" is the newest Debian serves), with
// its debug vmlinux when dbg is set: required on lines of the matrix that
// have one, else when there is one (VMLinux is "" then).
func GetKernel(root, line string, dbg bool) (Kernel, error) {
	return GetKernelArch(root, line, "amd64", dbg)
}

// GetKernelArch is GetKernel for a Debian architecture (amd64, arm64).
func GetKernelArch(root, line, arch string, dbg bool) (Kernel, error) {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	key := fmt.Sprintf("%s/%s/%v", line, arch, dbg)
	if k, ok := kernels[key]; ok {
		return k, nil
	}
	args := LineNamed(line).fetchArgs(dbg)
	if arch != "amd64" {
		args = append(args, "--arch", arch)
	}
	kv, stdout, err := runKeyValues(exec.Command(filepath.Join(root, "scripts", "fetch-kernel"), args...))
	if err != nil {
		return Kernel{}, fmt.Errorf("fetch-kernel %s: %w", strings.Join(args, " "), err)
	}
	k := Kernel{Name: line, Line: kv["LINE"], KVer: kv["KVER"], Root: kv["ROOT"], VMLinuz: kv["VMLINUZ"],
		Modules: kv["MODULES"], VMLinux: kv["VMLINUX"], Version: kv["VERSION"], Suite: kv["SUITE"],
		Unverified: kv["UNVERIFIED"]}
	if k.KVer == "" || k.VMLinuz == "" {
		return Kernel{}, fmt.Errorf("fetch-kernel %s printed no kernel:\n%s", line, stdout)
	}
	if k.Line == "" {
		k.Line = line
	}
	kernels[key] = k
	return k, nil
}

var (
	binMu sync.Mutex
	bins  = map[string][2]string{} // by GOARCH: stage 1, capture init
)

// binDir is where the harness builds its binaries: in the checkout's own
// out/, not in .cache, which may be shared by several checkouts, each
// building its own code.
func binDir(root string) string { return filepath.Join(root, "out", "qemu-tests", "bin") }

// Binaries builds the stage-1 init and the capture init once per process,
// static, into binDir(root), named as make names them in bin/: a gokdump
// built there (Gokdump) finds them as an installed one does.
func Binaries(root string) (stage1, captureInit string, err error) {
	return BinariesFor(root, "amd64")
}

// BinariesFor is Binaries for guests of another GOARCH (arm64), built
// into an arm64/ directory beside them.
func BinariesFor(root, arch string) (stage1, captureInit string, err error) {
	binMu.Lock()
	defer binMu.Unlock()
	if b, ok := bins[arch]; ok {
		return b[0], b[1], nil
	}
	dir := binDir(root)
	if arch != "amd64" {
		dir = filepath.Join(dir, arch)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	b := [2]string{filepath.Join(dir, "gokdump-vmtest-init"), filepath.Join(dir, "gokdump-init")}
	// As make builds them: the init without the S3 client, and
	// gokdump-init-s3 with it for the s3 target (see captureInitFor).
	for _, c := range []struct{ pkg, out, tags string }{
		{"./qemu-tests/stage1", b[0], ""},
		{"./initramfs", b[1], "nos3"},
		{"./initramfs", b[1] + "-s3", ""},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-tags="+c.tags, "-o", c.out, c.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s (GOARCH=%s): %v\n%s", c.pkg, arch, err, out)
		}
	}
	bins[arch] = b
	return b[0], b[1], nil
}

var (
	cliOnce sync.Once
	cliBin  string
	cliErr  error
)

// Gokdump builds the gokdump command once per process, for tests that use
// it on the host as a user would.
func Gokdump(root string) (string, error) {
	cliOnce.Do(func() {
		dir := binDir(root)
		if cliErr = os.MkdirAll(dir, 0o755); cliErr != nil {
			return
		}
		cliBin = filepath.Join(dir, "gokdump")
		cmd := exec.Command("go", "build", "-o", cliBin, "./cmd/gokdump")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build ./cmd/gokdump: %v\n%s", err, out)
		}
	})
	return cliBin, cliErr
}

// Spec describes one crash cycle. Zero fields take the defaults noted.
type Spec struct {
	Line        string // kernel line (a Line's Name): 6.1, 6.19, latest
	Arch        string // the guest's GOARCH: amd64 (default) or arm64 (QEMU's virt machine, TCG)
	Disk        string // bus of the default disk: nvme (default) or virtio
	MemMiB      int    // guest memory (1024)
	CPUs        int    // guest CPUs, -smp (1); TCG runs them in parallel (MTTCG)
	CrashKernel string // crashkernel= (128M)
	// Config is the capture /etc/gokdump.toml (target LABEL=GOKDUMP);
	// NoConfig packs none.
	Config        string
	NoConfig      bool
	CaptureAppend string // extra capture kernel arguments
	// CaptureCmdline replaces the derived capture command line entirely.
	CaptureCmdline string
	// CaptureSyscall forces the stage-1 loader's system call
	// (kexec.SyscallFile, kexec.SyscallClassic); "" lets it choose.
	CaptureSyscall string
	FirstAppend    string // extra first-kernel arguments
	AnonMiB        int    // user-marker memory (64)
	ZeroMiB        int    // zero-filled memory (32)
	CacheMiB       int    // page-cache file on the cache disk (32; -1: none)
	DiskMiB        int    // size of the default disk (MemMiB + 512)
	// Disks replaces the default disk (one ext4 disk labelled GOKDUMP on
	// Disk's bus, holding the page-cache file).
	Disks   []Disk
	Timeout time.Duration
	Dbg     bool // fetch the -dbg vmlinux too
	// CaptureModules are packed into the capture image (default for a
	// virtio disk: virtio_blk, virtio_pci); Stage1Modules into the first
	// stage's (default: the same).
	CaptureModules []string
	Stage1Modules  []string
	// CaptureKernel replaces the Debian kernel as the capture kernel (a
	// dedicated kernel); CaptureImage replaces the capture initramfs
	// built from Config; NoCaptureInitrd loads the capture kernel alone
	// (its initramfs is built in).
	CaptureKernel   string
	CaptureImage    string
	NoCaptureInitrd bool
	// Stage1Extra are more files for the first-stage image; Commands run
	// there after the capture kernel is loaded, before the crash.
	Stage1Extra []builder.File
	Commands    [][]string
	// Net gives the guest a NIC on QEMU's restricted user-mode network
	// (net.go); CaptureExtra are more files for the capture image (an
	// ssh key, known_hosts).
	Net          *Net
	CaptureExtra []builder.File
	// KillOn ends QEMU (a power cut) when a console line matches it.
	KillOn *regexp.Regexp
	// Typing is typed on the serial console, step by step: each step's
	// Keys once a console line matches its After (and the previous step
	// was typed), as an operator would.
	Typing []Keys
	// Dir is the work directory (images, disks, serial log); it must exist.
	Dir string
}

// Disk is a disk of the guest.
type Disk struct {
	Bus     string // nvme (default) or virtio
	FS      string // ext4 (default), xfs, vfat, btrfs, or raw (no filesystem)
	Label   string
	UUID    string // for mkfs; empty lets mkfs choose
	SizeMiB int    // default: Spec.DiskMiB
	// Cache puts the page-cache file on this disk (ext4 and btrfs only).
	Cache    bool
	ReadOnly bool
	// Image is an existing image to attach instead of making one (a
	// second crash onto the same disk).
	Image string
}

// Keys is a step of Spec.Typing.
type Keys = vm.Keys

// Run is what one crash cycle left behind.
type Run struct {
	Spec    Spec
	Kernel  Kernel
	ID      string   // run id in every marker
	Disk    string   // the first disk's image
	Disks   []string // every disk's image, in Spec.Disks order
	Log     vm.Log
	Elapsed time.Duration
	Err     error // QEMU's exit status
	Killed  bool  // KillOn matched and QEMU was killed
	// Rebooted holds the panic line of a first boot that died before
	// the stage-1 init ran, when the run was booted again; "" otherwise.
	Rebooted string
}

// LogLine is a serial console line, timestamped on arrival.
type LogLine = vm.Line

func (s *Spec) defaults() {
	if s.Arch == "" {
		s.Arch = "amd64"
	}
	if s.MemMiB == 0 {
		s.MemMiB = 1024
	}
	if s.CrashKernel == "" {
		s.CrashKernel = "128M"
	}
	if s.Config == "" && !s.NoConfig {
		s.Config = "target = \"LABEL=GOKDUMP\"\n"
	}
	if s.AnonMiB == 0 {
		s.AnonMiB = 64
	}
	if s.ZeroMiB == 0 {
		s.ZeroMiB = 32
	}
	if s.CacheMiB == 0 {
		s.CacheMiB = 32
	}
	if s.CacheMiB < 0 {
		s.CacheMiB = 0
	}
	if s.DiskMiB == 0 {
		s.DiskMiB = s.MemMiB + 512
	}
	if s.Timeout == 0 {
		s.Timeout = 240 * time.Second
	}
	if s.Disk == "" {
		s.Disk = "nvme"
	}
	if s.Disks == nil {
		s.Disks = []Disk{{Bus: s.Disk, FS: "ext4", Label: "GOKDUMP", Cache: true}}
	}
	virtio := false
	for i := range s.Disks {
		d := &s.Disks[i]
		if d.Bus == "" {
			d.Bus = "nvme"
		}
		if d.FS == "" {
			d.FS = "ext4"
		}
		if d.SizeMiB == 0 {
			d.SizeMiB = s.DiskMiB
		}
		virtio = virtio || d.Bus == "virtio"
	}
	if virtio && s.CaptureModules == nil {
		// virtio_blk depends on virtio and virtio_ring only; the PCI
		// transport is a separate driver that must be named.
		s.CaptureModules = []string{"virtio_blk", "virtio_pci"}
	}
	if s.Stage1Modules == nil {
		s.Stage1Modules = s.CaptureModules
	}
}

// BuildCaptureImage builds at path the capture initramfs Crash would build
// for spec, so a test can inspect or size it first (and pass it back as
// Spec.CaptureImage).
func BuildCaptureImage(root string, spec Spec, path string) error {
	spec.defaults()
	k, err := GetKernelArch(root, spec.Line, spec.Arch, spec.Dbg)
	if err != nil {
		return err
	}
	_, captureInit, err := BinariesFor(root, spec.Arch)
	if err != nil {
		return err
	}
	return buildCapture(path, captureInit, k, spec)
}

// captureInitFor is the init a spec's capture image gets: the one with
// the S3 client (init-s3) when its config names an s3 target, as gokdump
// build chooses.
func captureInitFor(captureInit string, spec Spec) string {
	if strings.Contains(spec.Config, config.S3Prefix) {
		return captureInit + "-s3"
	}
	return captureInit
}

func buildCapture(path, captureInit string, k Kernel, spec Spec) error {
	opts := builder.Options{
		Init:       captureInitFor(captureInit, spec),
		Arch:       spec.Arch,
		ModulesDir: k.Modules,
		Modules:    spec.CaptureModules,
		Extra:      spec.CaptureExtra,
	}
	if !spec.NoConfig {
		opts.Config = []byte(spec.Config)
		// The hooks the config names are packed as gokdump build packs
		// them (static only, 0700), from the host paths it names. A
		// config a test breaks on purpose packs none.
		if cfg, err := config.Parse(opts.Config, "test config"); err == nil {
			opts.Hooks = cfg.HookPaths()
		}
	}
	_, err := vm.WriteImage(context.Background(), path, opts)
	return err
}

// captureCPUs is how many CPUs gokdump load would give the capture
// kernel of spec's guest: capture_cpus of its config, "auto" for the
// guest's memory.
func captureCPUs(spec Spec) int {
	cfg := config.Default()
	if !spec.NoConfig {
		if c, err := config.Parse([]byte(spec.Config), "test config"); err == nil {
			cfg = *c
		}
	}
	return cfg.CaptureCPUsFor(uint64(spec.MemMiB) << 20)
}

// NewID returns a random run id.
func NewID() string { return vm.NewID() }

// devicePath is the guest's name for disk i.
func devicePath(disks []Disk, i int) string {
	buses := make([]string, len(disks))
	for j, d := range disks {
		buses[j] = d.Bus
	}
	return vm.DevicePath(buses, i)
}

// Crash builds both images and the disks, boots QEMU and waits for it to
// exit. The error is for harness failures only; what the capture did is
// for the caller to check in the Run.
func Crash(root string, spec Spec) (*Run, error) {
	spec.defaults()
	arch, err := vm.ArchOf(spec.Arch)
	if err != nil {
		return nil, err
	}
	if err := NeedTools(arch.QEMU, "mkfs.ext4", "debugfs"); err != nil {
		return nil, err
	}
	k, err := GetKernelArch(root, spec.Line, spec.Arch, spec.Dbg)
	if err != nil {
		return nil, err
	}
	stage1, captureInit, err := BinariesFor(root, spec.Arch)
	if err != nil {
		return nil, err
	}
	r := &Run{Spec: spec, Kernel: k, ID: NewID()}

	captureImg := spec.CaptureImage
	if captureImg == "" && !spec.NoCaptureInitrd {
		captureImg = filepath.Join(spec.Dir, "capture.cpio.zst")
		if err := buildCapture(captureImg, captureInit, k, spec); err != nil {
			return nil, err
		}
	}

	params := guest.Params{
		CaptureCPUs: captureCPUs(spec),
		ID:          r.ID,
		Append:      spec.CaptureAppend,
		Cmdline:     spec.CaptureCmdline,
		Syscall:     spec.CaptureSyscall,
		AnonMiB:     spec.AnonMiB,
		ZeroMiB:     spec.ZeroMiB,
	}
	for i, d := range spec.Disks {
		img := d.Image
		if img == "" {
			img = filepath.Join(spec.Dir, fmt.Sprintf("disk%d.img", i))
			stage := ""
			if d.Cache && spec.CacheMiB > 0 && (d.FS == "ext4" || d.FS == "btrfs") {
				stage = filepath.Join(spec.Dir, fmt.Sprintf("disk%d-root", i))
				if err := os.MkdirAll(stage, 0o755); err != nil {
					return nil, err
				}
				if err := vm.WriteCacheFile(filepath.Join(stage, "cachefile"), r.ID, spec.CacheMiB); err != nil {
					return nil, err
				}
				params.CacheDevice, params.CacheFSType, params.CacheFile = devicePath(spec.Disks, i), d.FS, "cachefile"
			}
			if err := vm.MakeDisk(vm.Disk{Bus: d.Bus, FS: d.FS, Label: d.Label, UUID: d.UUID, SizeMiB: d.SizeMiB}, img, stage); err != nil {
				return nil, err
			}
		}
		r.Disks = append(r.Disks, img)
	}
	if len(r.Disks) > 0 {
		r.Disk = r.Disks[0]
	}
	params.Commands = spec.Commands

	captureKernel := k.VMLinuz
	if spec.CaptureKernel != "" {
		captureKernel = spec.CaptureKernel
	}
	stage1Img := filepath.Join(spec.Dir, "stage1.cpio")
	if _, err := vm.WriteStage1(context.Background(), stage1Img, vm.Stage1{
		Init:          stage1,
		Arch:          spec.Arch,
		ModulesDir:    k.Modules,
		Modules:       spec.Stage1Modules,
		Params:        params,
		CaptureKernel: captureKernel,
		CaptureInitrd: captureImg,
		Extra:         spec.Stage1Extra,
	}); err != nil {
		return nil, err
	}

	m := vm.Machine{
		Arch:    arch,
		Accel:   vm.TCG,
		MemMiB:  spec.MemMiB,
		CPUs:    spec.CPUs,
		Kernel:  k.VMLinuz,
		Initrd:  stage1Img,
		Append:  "console=" + arch.Console + " crashkernel=" + spec.CrashKernel + " panic=5 " + spec.FirstAppend,
		Timeout: spec.Timeout,
		KillOn:  spec.KillOn,
		Typing:  spec.Typing,
	}
	for i, d := range spec.Disks {
		m.Disks = append(m.Disks, vm.DiskDev{Bus: d.Bus, Image: r.Disks[i], ReadOnly: d.ReadOnly})
	}
	if m.Extra, err = netArgs(root, spec.Net); err != nil {
		return nil, err
	}
	if err := r.boot(m); err != nil {
		return nil, err
	}
	// A first kernel that dies before the stage-1 init prints anything
	// has run nothing of ours, and its disks are as made: boot once more
	// rather than fail the test, keeping the first log beside the second.
	if panicLine, ok := vm.DiedBeforeStage1(r.Log); ok {
		if err := os.Rename(filepath.Join(spec.Dir, "serial.log"), filepath.Join(spec.Dir, "serial-first-boot.log")); err != nil {
			return nil, err
		}
		r.Rebooted = panicLine
		if err := r.boot(m); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// boot runs the guest and keeps what it left in r.
func (r *Run) boot(m vm.Machine) error {
	defer Guest()()
	res, err := m.Boot(context.Background(), filepath.Join(r.Spec.Dir, "serial.log"))
	if res != nil {
		r.Log, r.Err, r.Killed, r.Elapsed = res.Log, res.Err, res.Killed, res.Elapsed
	}
	return err
}

// Serial returns the whole console log with arrival times.
func (r *Run) Serial() string { return r.Log.String() }

// Tail returns the last n lines of the console log.
func (r *Run) Tail(n int) string { return r.Log.Tail(n) }

// Find returns the first log line matching re, and its submatches.
func (r *Run) Find(re *regexp.Regexp) (LogLine, []string, bool) { return r.Log.Find(re) }

var (
	savedRE  = regexp.MustCompile(`gokdump: saved (\S+) bytes=(\d+) seconds=([0-9.]+)`)
	failedRE = regexp.MustCompile(`gokdump: FAILED.*`)
)

// SavedPath returns the dump path the capture reported.
func (r *Run) SavedPath() (string, error) {
	if _, m, ok := r.Find(savedRE); ok {
		return m[1], nil
	}
	if l, _, ok := r.Find(failedRE); ok {
		return "", fmt.Errorf("capture failed: %s", l.Text)
	}
	return "", errors.New("no 'gokdump: saved' line on the console")
}

// Phase is a named point of the crash cycle.
type Phase = vm.Phase

// Phases extracts the timing of each phase of the cycle from the log.
func (r *Run) Phases() []Phase { return vm.Phases(r.Log, r.Elapsed) }

// PhaseReport formats Phases with the time each took.
func (r *Run) PhaseReport() string { return vm.PhaseReport(r.Log, r.Elapsed) }

// Extract copies a file out of the first disk's image with debugfs (no
// root needed) into dst.
func (r *Run) Extract(path, dst string) error { return vm.ExtractFrom(r.Disk, path, dst) }

// Ls lists a directory in the first disk's image with debugfs: name →
// mode.
func (r *Run) Ls(dir string) (map[string]uint32, error) {
	entries, err := vm.LsFrom(r.Disk, dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint32, len(entries))
	for name, e := range entries {
		out[name] = e.Mode
	}
	return out, nil
}

// run runs a program that must succeed within two minutes.
func run(name string, args ...string) error { return vm.Run(name, args...) }

// Census is what a dump holds of a run: its pages, and the distinct whole
// markers of each kind (USER, CACHE, KMSG) with the run's id.
type Census = vm.Census

// TakeCensus reads every page a dump (ELF or kdump-compressed) holds once
// and counts its pages and the run's markers by kind.
func TakeCensus(path, id string) (Census, error) { return vm.TakeCensus(path, id) }

// CountMarkers reads every page a dump (ELF or kdump-compressed) holds and
// returns how many distinct whole markers with prefix it contains.
func CountMarkers(path, prefix string) (int, error) { return vm.CountMarkers(path, prefix) }

// FindMarker returns the physical address of a whole marker in a dump.
func FindMarker(path, marker string) (uint64, error) { return vm.FindMarker(path, marker) }
