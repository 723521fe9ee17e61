// Package harness runs gokdump's QEMU crash cycles: it fetches a Debian
// kernel, builds the first-stage and capture images, makes the target disk,
// boots QEMU under TCG and reads back what the capture kernel saved. The
// crash tests and `make demo` share it.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/qemu-tests/guest"
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
	kernelMu.Lock()
	defer kernelMu.Unlock()
	key := fmt.Sprintf("%s/%v", line, dbg)
	if k, ok := kernels[key]; ok {
		return k, nil
	}
	args := LineNamed(line).fetchArgs(dbg)
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
	binOnce            sync.Once
	binErr             error
	stage1Bin, initBin string
)

// binDir is where the harness builds its binaries: in the checkout's own
// out/, not in .cache, which may be shared by several checkouts, each
// building its own code.
func binDir(root string) string { return filepath.Join(root, "out", "qemu-tests", "bin") }

// Binaries builds the stage-1 init and the capture init once per process,
// static, into binDir(root).
func Binaries(root string) (stage1, captureInit string, err error) {
	binOnce.Do(func() {
		dir := binDir(root)
		if binErr = os.MkdirAll(dir, 0o755); binErr != nil {
			return
		}
		stage1Bin = filepath.Join(dir, "stage1")
		initBin = filepath.Join(dir, "init")
		// As make builds them: the init without the S3 client, and
		// init-s3 with it for the s3 target (see captureInitFor).
		for _, b := range []struct{ pkg, out, tags string }{
			{"./qemu-tests/stage1", stage1Bin, ""},
			{"./initramfs", initBin, "nos3"},
			{"./initramfs", initBin + "-s3", ""},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-tags="+b.tags, "-o", b.out, b.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	return stage1Bin, initBin, binErr
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
	Disk        string // bus of the default disk: nvme (default) or virtio
	MemMiB      int    // guest memory (1024)
	CrashKernel string // crashkernel= (128M)
	// Config is the capture /etc/gokdump.toml (target LABEL=GOKDUMP);
	// NoConfig packs none.
	Config        string
	NoConfig      bool
	CaptureAppend string // extra capture kernel arguments
	// CaptureCmdline replaces the derived capture command line entirely.
	CaptureCmdline string
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

// Run is what one crash cycle left behind.
type Run struct {
	Spec    Spec
	Kernel  Kernel
	ID      string   // run id in every marker
	Disk    string   // the first disk's image
	Disks   []string // every disk's image, in Spec.Disks order
	Log     []LogLine
	Elapsed time.Duration
	Err     error // QEMU's exit status
	Killed  bool  // KillOn matched and QEMU was killed
	// Rebooted holds the panic line of a first boot that died before
	// the stage-1 init ran, when the run was booted again; "" otherwise.
	Rebooted string
}

// LogLine is a serial console line, timestamped on arrival.
type LogLine struct {
	At   time.Duration // since QEMU started
	Text string
}

func (s *Spec) defaults() {
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
	k, err := GetKernel(root, spec.Line, spec.Dbg)
	if err != nil {
		return err
	}
	_, captureInit, err := Binaries(root)
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
		ModulesDir: k.Modules,
		Modules:    spec.CaptureModules,
		Extra:      spec.CaptureExtra,
	}
	if !spec.NoConfig {
		opts.Config = []byte(spec.Config)
	}
	return writeImage(path, opts)
}

// NewID returns a random run id.
func NewID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// devicePath is the guest's name for disk i: NVMe controllers and virtio
// disks are numbered in command-line order, each bus on its own.
func devicePath(disks []Disk, i int) string {
	n := 0
	for j := 0; j < i; j++ {
		if disks[j].Bus == disks[i].Bus {
			n++
		}
	}
	if disks[i].Bus == "virtio" {
		return "/dev/vd" + string(rune('a'+n))
	}
	return fmt.Sprintf("/dev/nvme%dn1", n)
}

// makeDisk creates the image of d at path, with the page-cache file in it
// when stage is not empty.
func makeDisk(d Disk, path, stage string) error {
	size := fmt.Sprintf("%dM", d.SizeMiB)
	var args []string
	switch d.FS {
	case "ext4":
		args = []string{"mkfs.ext4", "-q", "-F"}
		if d.Label != "" {
			args = append(args, "-L", d.Label)
		}
		if d.UUID != "" {
			args = append(args, "-U", d.UUID)
		}
		if stage != "" {
			args = append(args, "-d", stage)
		}
		args = append(args, path, size)
	case "btrfs", "xfs", "vfat", "raw":
		if err := os.Truncate(path, int64(d.SizeMiB)<<20); err != nil {
			if f, cerr := os.Create(path); cerr != nil {
				return cerr
			} else {
				f.Close()
			}
			if err := os.Truncate(path, int64(d.SizeMiB)<<20); err != nil {
				return err
			}
		}
		switch d.FS {
		case "btrfs":
			args = []string{"mkfs.btrfs", "-q", "-f"}
			if d.Label != "" {
				args = append(args, "-L", d.Label)
			}
			if d.UUID != "" {
				args = append(args, "-U", d.UUID)
			}
			if stage != "" {
				args = append(args, "--rootdir", stage)
			}
			args = append(args, path)
		case "xfs":
			args = []string{"mkfs.xfs", "-q", "-f"}
			if d.Label != "" {
				args = append(args, "-L", d.Label)
			}
			if d.UUID != "" {
				args = append(args, "-m", "uuid="+d.UUID)
			}
			args = append(args, path)
		case "vfat":
			args = []string{"mkfs.vfat"}
			if d.Label != "" {
				args = append(args, "-n", d.Label)
			}
			if d.UUID != "" {
				// blkid shows a FAT serial as XXXX-XXXX; mkfs takes it bare.
				args = append(args, "-i", strings.ReplaceAll(d.UUID, "-", ""))
			}
			args = append(args, path)
		case "raw":
			return nil
		}
	default:
		return fmt.Errorf("harness: unknown filesystem %q", d.FS)
	}
	return run(args[0], args[1:]...)
}

// Crash builds both images and the disks, boots QEMU and waits for it to
// exit. The error is for harness failures only; what the capture did is
// for the caller to check in the Run.
func Crash(root string, spec Spec) (*Run, error) {
	if err := NeedTools("qemu-system-x86_64", "mkfs.ext4", "debugfs", "timeout"); err != nil {
		return nil, err
	}
	spec.defaults()
	k, err := GetKernel(root, spec.Line, spec.Dbg)
	if err != nil {
		return nil, err
	}
	stage1, captureInit, err := Binaries(root)
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
		ID:      r.ID,
		Kernel:  "/capture/vmlinuz",
		Append:  spec.CaptureAppend,
		Cmdline: spec.CaptureCmdline,
		AnonMiB: spec.AnonMiB,
		ZeroMiB: spec.ZeroMiB,
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
				if err := writeCacheFile(filepath.Join(stage, "cachefile"), r.ID, spec.CacheMiB); err != nil {
					return nil, err
				}
				params.CacheDevice, params.CacheFSType, params.CacheFile = devicePath(spec.Disks, i), d.FS, "cachefile"
			}
			if err := makeDisk(d, img, stage); err != nil {
				return nil, err
			}
		}
		r.Disks = append(r.Disks, img)
	}
	if len(r.Disks) > 0 {
		r.Disk = r.Disks[0]
	}
	params.Commands = spec.Commands

	pj, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	kernelPath := k.VMLinuz
	if spec.CaptureKernel != "" {
		kernelPath = spec.CaptureKernel
	}
	vmlinuz, err := os.ReadFile(kernelPath)
	if err != nil {
		return nil, err
	}
	extra := append([]builder.File{
		{Path: guest.ParamsPath, Data: pj, Mode: 0o644},
		{Path: "/capture/vmlinuz", Data: vmlinuz, Mode: 0o644},
	}, spec.Stage1Extra...)
	if captureImg != "" {
		capture, err := os.ReadFile(captureImg)
		if err != nil {
			return nil, err
		}
		extra = append(extra, builder.File{Path: "/capture/initrd.img", Data: capture, Mode: 0o644})
		params.Initrd = "/capture/initrd.img"
		if pj, err = json.Marshal(params); err != nil {
			return nil, err
		}
		extra[0].Data = pj
	}
	stage1Img := filepath.Join(spec.Dir, "stage1.cpio")
	if err := writeImage(stage1Img, builder.Options{
		Init:       stage1,
		ModulesDir: k.Modules,
		Modules:    spec.Stage1Modules,
		Compress:   builder.CompressNone,
		Extra:      extra,
	}); err != nil {
		return nil, err
	}

	args := []string{"--kill-after=5", fmt.Sprint(int(spec.Timeout.Seconds())),
		"qemu-system-x86_64", "-accel", "tcg", "-m", fmt.Sprintf("%dM", spec.MemMiB), "-smp", "1",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", k.VMLinuz, "-initrd", stage1Img,
		"-append", strings.TrimSpace("console=ttyS0 crashkernel=" + spec.CrashKernel + " panic=5 " + spec.FirstAppend),
	}
	for i, d := range spec.Disks {
		ro := ""
		if d.ReadOnly {
			ro = ",readonly=on"
		}
		switch d.Bus {
		case "nvme":
			args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw%s", r.Disks[i], i, ro),
				"-device", fmt.Sprintf("nvme,drive=d%d,serial=d%d", i, i))
		case "virtio":
			args = append(args, "-drive", fmt.Sprintf("file=%s,if=virtio,format=raw%s", r.Disks[i], ro))
		default:
			return nil, fmt.Errorf("harness: unknown disk bus %q", d.Bus)
		}
	}
	nargs, err := netArgs(root, spec.Net)
	if err != nil {
		return nil, err
	}
	args = append(args, nargs...)
	if err := r.boot(args); err != nil {
		return nil, err
	}
	// A first kernel that dies before the stage-1 init prints anything
	// has run nothing of ours, and its disks are as made. TCG does this
	// now and then (an IRETQ in text_poke_early faulting with garbage
	// flags, seen on 6.12): boot once more rather than fail the test,
	// keeping the first log beside the second.
	if panicLine, ok := r.diedBeforeStage1(); ok {
		if err := os.Rename(filepath.Join(spec.Dir, "serial.log"), filepath.Join(spec.Dir, "serial-first-boot.log")); err != nil {
			return nil, err
		}
		r.Log, r.Err, r.Killed, r.Rebooted = nil, nil, false, panicLine
		if err := r.boot(args); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// diedBeforeStage1 reports whether the first kernel panicked before the
// stage-1 init printed its first line, and the panic line.
func (r *Run) diedBeforeStage1() (string, bool) {
	for _, l := range r.Log {
		if strings.HasPrefix(l.Text, "stage1: ") {
			return "", false
		}
		if strings.Contains(l.Text, "Kernel panic - not syncing") {
			return strings.TrimSpace(l.Text), true
		}
	}
	return "", false
}

// boot runs QEMU, timestamping each serial line as it arrives, and kills
// it when a line matches Spec.KillOn.
func (r *Run) boot(args []string) error {
	cmd := exec.Command("timeout", args...)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			r.Log = append(r.Log, LogLine{time.Since(start), line})
			if r.Spec.KillOn != nil && !r.Killed && r.Spec.KillOn.MatchString(line) {
				// timeout(1) runs QEMU as its child: kill the group we
				// started, QEMU included, as a power cut would.
				r.Killed = true
				cmd.Process.Signal(os.Kill)
				killChildren(cmd.Process.Pid)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	r.Err = cmd.Wait()
	pw.Close()
	<-done
	r.Elapsed = time.Since(start)
	return os.WriteFile(filepath.Join(r.Spec.Dir, "serial.log"), []byte(r.Serial()), 0o644)
}

// killChildren SIGKILLs the children of pid (QEMU under timeout).
func killChildren(pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		var c int
		if _, err := fmt.Sscan(f, &c); err == nil {
			if p, err := os.FindProcess(c); err == nil {
				p.Kill()
			}
		}
	}
}

// Serial returns the whole console log with arrival times.
func (r *Run) Serial() string {
	var b strings.Builder
	for _, l := range r.Log {
		fmt.Fprintf(&b, "[%7.2f] %s\n", l.At.Seconds(), l.Text)
	}
	return b.String()
}

// Tail returns the last n lines of the console log.
func (r *Run) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(r.Serial(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Find returns the first log line matching re, and its submatches.
func (r *Run) Find(re *regexp.Regexp) (LogLine, []string, bool) {
	for _, l := range r.Log {
		if m := re.FindStringSubmatch(l.Text); m != nil {
			return l, m, true
		}
	}
	return LogLine{}, nil, false
}

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
type Phase struct {
	Name string
	At   time.Duration
}

// Phases extracts the timing of each phase of the cycle from the log.
func (r *Run) Phases() []Phase {
	marks := []struct{ name, re string }{
		{"stage1 init", `stage1: \[.*\] start`},
		{"capture kernel loaded", `capture kernel loaded`},
		{"crash", `stage1: \[.*\] crashing now`},
		{"capture init", `gokdump: \[`},
		{"dump saved", `gokdump: saved`},
	}
	var out []Phase
	for _, m := range marks {
		if l, _, ok := r.Find(regexp.MustCompile(m.re)); ok {
			out = append(out, Phase{m.name, l.At})
		}
	}
	return append(out, Phase{"qemu exit", r.Elapsed})
}

// PhaseReport formats Phases with the time each took.
func (r *Run) PhaseReport() string {
	var b strings.Builder
	prev := time.Duration(0)
	var crash time.Duration
	for _, p := range r.Phases() {
		fmt.Fprintf(&b, "  %-22s at %6.2fs (+%5.2fs)\n", p.Name, p.At.Seconds(), (p.At - prev).Seconds())
		prev = p.At
		if p.Name == "crash" {
			crash = p.At
		}
	}
	if crash > 0 {
		fmt.Fprintf(&b, "  panic → QEMU exit: %.2fs\n", (r.Elapsed - crash).Seconds())
	}
	return b.String()
}

// Extract copies a file out of the disk image with debugfs (no root
// needed) into dst.
func (r *Run) Extract(path, dst string) error {
	cmd := exec.Command("debugfs", "-R", fmt.Sprintf("dump %s %s", path, dst), r.Disk)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs dump %s: %v\n%s", path, err, b)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() == 0 {
		return fmt.Errorf("debugfs could not extract %s from %s (%v)", path, r.Disk, err)
	}
	return nil
}

// Ls lists a directory in the disk image with debugfs: name → mode.
func (r *Run) Ls(dir string) (map[string]uint32, error) {
	b, err := exec.Command("debugfs", "-R", "ls -p "+dir, r.Disk).Output()
	if err != nil {
		return nil, fmt.Errorf("debugfs ls %s: %v", dir, err)
	}
	// Lines: /inode/mode/uid/gid/name/size/
	out := map[string]uint32{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." {
			continue
		}
		var mode uint32
		fmt.Sscanf(f[2], "%o", &mode)
		out[f[5]] = mode
	}
	return out, nil
}

func writeImage(path string, opts builder.Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := builder.Build(context.Background(), f, opts); err != nil {
		f.Close()
		return fmt.Errorf("build %s: %v", filepath.Base(path), err)
	}
	return f.Close()
}

// writeCacheFile writes mib MiB of random data with a CACHE marker per MiB.
func writeCacheFile(path, id string, mib int) error {
	b := make([]byte, mib<<20)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	for i := 0; i < mib; i++ {
		copy(b[i<<20+200:], guest.Marker("CACHE", id, i))
	}
	return os.WriteFile(path, b, 0o644)
}

func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Census is what a dump holds of a run: its pages, and the distinct whole
// markers of each kind (USER, CACHE, KMSG) with the run's id.
type Census struct {
	Pages   uint64
	Markers map[string]int
}

// TakeCensus reads every page a dump (ELF or kdump-compressed) holds once
// and counts its pages and the run's markers by kind.
func TakeCensus(path, id string) (Census, error) {
	c := Census{Markers: map[string]int{}}
	seen := map[string]bool{}
	kinds := []string{"USER", "CACHE", "KMSG"}
	// After "GOKDUMP-": KIND-ID-NNNNNN.
	whole := func(rest []byte) int {
		for _, k := range kinds {
			m := guest.Marker(k, id, 0)[len("GOKDUMP-"):]
			n := len(m) - 6
			if len(rest) >= len(m) && string(rest[:n]) == m[:n] && allDigits(rest[n:len(m)]) {
				return len(m)
			}
		}
		return 0
	}
	err := scanDump(path, "GOKDUMP-", whole, func(m string, _ uint64) bool {
		if !seen[m] {
			seen[m] = true
			kind, _, _ := strings.Cut(m[len("GOKDUMP-"):], "-")
			c.Markers[kind]++
		}
		return true
	}, func() { c.Pages++ })
	return c, err
}

// CountMarkers reads every page a dump (ELF or kdump-compressed) holds and
// returns how many distinct whole markers with prefix it contains.
func CountMarkers(path, prefix string) (int, error) {
	seen := map[string]bool{}
	err := scanMarkers(path, prefix, func(m string, _ uint64) bool { seen[m] = true; return true })
	return len(seen), err
}

// FindMarker returns the physical address of a whole marker in a dump.
func FindMarker(path, marker string) (uint64, error) {
	var at uint64
	found := false
	err := scanMarkers(path, marker[:len(marker)-6], func(m string, phys uint64) bool {
		if m == marker {
			at, found = phys, true
		}
		return !found
	})
	if err == nil && !found {
		err = fmt.Errorf("%s: no %s", path, marker)
	}
	return at, err
}

// scanMarkers calls f with each whole marker with prefix the dump holds
// and its physical address, until f returns false.
func scanMarkers(path, prefix string, f func(marker string, phys uint64) bool) error {
	whole := func(rest []byte) int {
		if len(rest) >= 6 && allDigits(rest[:6]) {
			return 6
		}
		return 0
	}
	return scanDump(path, prefix, whole, f, func() {})
}

// scanDump calls page for each page of a dump and f with each whole marker
// it holds: prefix followed by the whole(rest) bytes whole accepts.
func scanDump(path, prefix string, whole func(rest []byte) int, f func(marker string, phys uint64) bool, page func()) error {
	d, err := anydump.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	p := []byte(prefix)
	ps := d.PageSize
	keep := len(p) + 40 // a whole marker fits
	// The tail of the previous page, so a marker across two consecutive
	// pages is found whole.
	buf := make([]byte, keep+ps) // [tail of the previous page][this page]
	prev := ^uint64(0)
	for pfn, err := range d.Pages() {
		if err != nil {
			return err
		}
		page()
		data, base := buf[keep:], pfn*uint64(ps)
		if pfn == prev+1 {
			copy(buf[:keep], buf[ps:ps+keep])
			data, base = buf, base-uint64(keep)
		}
		if _, err := d.ReadPhys(buf[keep:], pfn*uint64(ps)); err != nil {
			return fmt.Errorf("%s: pfn %#x: %w", path, pfn, err)
		}
		for i := 0; ; {
			j := bytes.Index(data[i:], p)
			if j < 0 {
				break
			}
			at := i + j
			// Only whole markers count: the guest's heap also holds the
			// bare prefix it built them from.
			if n := whole(data[at+len(p):]); n > 0 {
				if !f(string(data[at:at+len(p)+n]), base+uint64(at)) {
					return nil
				}
			}
			i = at + 1
		}
		prev = pfn
	}
	return nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
