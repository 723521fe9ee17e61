package qemutests

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
	"testing"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/qemu-tests/guest"
)

// repoRoot is the checkout this package lives in.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run scripts/install-deps (or make test, which does)", tool)
		}
	}
}

// kernel is an unpacked Debian kernel package.
type kernel struct {
	Line, KVer, Root, VMLinuz, Modules, VMLinux string
}

var (
	kernelMu sync.Mutex
	kernels  = map[string]kernel{}
)

// getKernel fetches (or finds in the cache) the current Debian 12 cloud
// kernel of line, with its debug vmlinux when dbg is set.
func getKernel(t *testing.T, line string, dbg bool) kernel {
	t.Helper()
	kernelMu.Lock()
	defer kernelMu.Unlock()
	key := fmt.Sprintf("%s/%v", line, dbg)
	if k, ok := kernels[key]; ok {
		return k
	}
	args := []string{line}
	if dbg {
		args = append(args, "--dbg")
	}
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "fetch-kernel"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fetch-kernel %s: %v\n%s", line, err, stderr.String())
	}
	k := kernel{Line: line}
	for _, l := range strings.Split(string(out), "\n") {
		key, val, _ := strings.Cut(l, "=")
		switch key {
		case "KVER":
			k.KVer = val
		case "ROOT":
			k.Root = val
		case "VMLINUZ":
			k.VMLinuz = val
		case "MODULES":
			k.Modules = val
		case "VMLINUX":
			k.VMLinux = val
		}
	}
	if k.KVer == "" || k.VMLinuz == "" {
		t.Fatalf("fetch-kernel %s printed no kernel:\n%s", line, out)
	}
	kernels[key] = k
	return k
}

var (
	binOnce  sync.Once
	binDir   string
	binErr   error
	stage1   string
	initBin  string
	buildDir = filepath.Join(repoRoot, ".cache", "qemu-tests")
)

// binaries builds the stage-1 init and the capture init once per run.
func binaries(t *testing.T) (stage1Bin, captureInit string) {
	t.Helper()
	binOnce.Do(func() {
		binDir = filepath.Join(buildDir, "bin")
		if binErr = os.MkdirAll(binDir, 0o755); binErr != nil {
			return
		}
		stage1 = filepath.Join(binDir, "stage1")
		initBin = filepath.Join(binDir, "init")
		for _, b := range []struct{ pkg, out string }{
			{"./qemu-tests/stage1", stage1},
			{"./initramfs", initBin},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", b.out, b.pkg)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return stage1, initBin
}

// crashSpec describes one crash cycle.
type crashSpec struct {
	Line           string // kernel line: 6.1 or 6.12
	Disk           string // nvme or virtio
	MemMiB         int    // guest memory (default 1024)
	CrashKernel    string // crashkernel= (default 128M)
	Config         string // capture /etc/gokdump.toml (default: target LABEL=GOKDUMP)
	CaptureAppend  string // extra capture kernel arguments
	FirstAppend    string // extra first-kernel arguments
	AnonMiB        int    // user-marker memory (default 64)
	ZeroMiB        int    // zero-filled memory (default 32)
	CacheMiB       int    // page-cache file (default 32)
	DiskMiB        int    // target disk size (default MemMiB + 512)
	Timeout        time.Duration
	Dbg            bool // fetch the -dbg vmlinux too
	CaptureModules []string
}

// crashRun is what one crash cycle left behind.
type crashRun struct {
	Spec    crashSpec
	Kernel  kernel
	ID      string
	Dir     string // work directory
	Disk    string // target disk image
	Log     []logLine
	Elapsed time.Duration
	Err     error // QEMU's exit status
}

type logLine struct {
	At   time.Duration // since QEMU started
	Text string
}

func (s *crashSpec) defaults() {
	if s.MemMiB == 0 {
		s.MemMiB = 1024
	}
	if s.CrashKernel == "" {
		s.CrashKernel = "128M"
	}
	if s.Config == "" {
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
	if s.DiskMiB == 0 {
		s.DiskMiB = s.MemMiB + 512
	}
	if s.Timeout == 0 {
		s.Timeout = 240 * time.Second
	}
	if s.Disk == "" {
		s.Disk = "nvme"
	}
	if s.Disk == "virtio" && s.CaptureModules == nil {
		// virtio_blk depends on virtio and virtio_ring only; the PCI
		// transport is a separate driver that must be named.
		s.CaptureModules = []string{"virtio_blk", "virtio_pci"}
	}
}

func newID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// runCrash builds both images and the disk, boots QEMU and waits for it to
// exit. It fails the test only for harness errors; what the capture did is
// for the caller to check.
func runCrash(t *testing.T, spec crashSpec) *crashRun {
	t.Helper()
	needTools(t, "qemu-system-x86_64", "mkfs.ext4", "debugfs", "timeout")
	spec.defaults()
	k := getKernel(t, spec.Line, spec.Dbg)
	stage1Bin, initBin := binaries(t)
	r := &crashRun{Spec: spec, Kernel: k, ID: newID(), Dir: t.TempDir()}

	// The capture initramfs, built as users build it.
	captureImg := filepath.Join(r.Dir, "capture.cpio.zst")
	writeImage(t, captureImg, builder.Options{
		Init:       initBin,
		Config:     []byte(spec.Config),
		ModulesDir: k.Modules,
		Modules:    spec.CaptureModules,
	})

	// The target disk: ext4 labelled GOKDUMP with the page-cache file.
	stage := filepath.Join(r.Dir, "disk-root")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCacheFile(t, filepath.Join(stage, "cachefile"), r.ID, spec.CacheMiB)
	r.Disk = filepath.Join(r.Dir, "disk.img")
	run(t, "mkfs.ext4", "-q", "-F", "-L", "GOKDUMP", "-d", stage, r.Disk, fmt.Sprintf("%dM", spec.DiskMiB))

	dev := "/dev/nvme0n1"
	if spec.Disk == "virtio" {
		dev = "/dev/vda"
	}
	params := guest.Params{
		ID:          r.ID,
		Kernel:      "/capture/vmlinuz",
		Initrd:      "/capture/initrd.img",
		Append:      spec.CaptureAppend,
		AnonMiB:     spec.AnonMiB,
		ZeroMiB:     spec.ZeroMiB,
		CacheDevice: dev,
		CacheFSType: "ext4",
		CacheFile:   "cachefile",
	}
	pj, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	vmlinuz, err := os.ReadFile(k.VMLinuz)
	if err != nil {
		t.Fatal(err)
	}
	capture, err := os.ReadFile(captureImg)
	if err != nil {
		t.Fatal(err)
	}
	stage1Img := filepath.Join(r.Dir, "stage1.cpio")
	writeImage(t, stage1Img, builder.Options{
		Init:       stage1Bin,
		ModulesDir: k.Modules,
		Modules:    spec.CaptureModules, // stage 1 reads the same disk
		Compress:   builder.CompressNone,
		Extra: []builder.File{
			{Path: guest.ParamsPath, Data: pj, Mode: 0o644},
			{Path: "/capture/vmlinuz", Data: vmlinuz, Mode: 0o644},
			{Path: "/capture/initrd.img", Data: capture, Mode: 0o644},
		},
	})

	args := []string{"--kill-after=5", fmt.Sprint(int(spec.Timeout.Seconds())),
		"qemu-system-x86_64", "-accel", "tcg", "-m", fmt.Sprintf("%dM", spec.MemMiB), "-smp", "1",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", k.VMLinuz, "-initrd", stage1Img,
		"-append", strings.TrimSpace("console=ttyS0 crashkernel=" + spec.CrashKernel + " panic=5 " + spec.FirstAppend),
	}
	switch spec.Disk {
	case "nvme":
		args = append(args, "-drive", "file="+r.Disk+",if=none,id=d0,format=raw", "-device", "nvme,drive=d0,serial=d0")
	case "virtio":
		args = append(args, "-drive", "file="+r.Disk+",if=virtio,format=raw")
	default:
		t.Fatalf("unknown disk %q", spec.Disk)
	}
	r.boot(t, args)
	return r
}

// boot runs QEMU, timestamping each serial line as it arrives.
func (r *crashRun) boot(t *testing.T, args []string) {
	t.Helper()
	cmd := exec.Command("timeout", args...)
	cmd.Stdin = nil
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.Log = append(r.Log, logLine{time.Since(start), strings.TrimRight(sc.Text(), "\r")})
		}
	}()
	r.Err = cmd.Wait()
	pw.Close()
	<-done
	r.Elapsed = time.Since(start)
	if err := os.WriteFile(filepath.Join(r.Dir, "serial.log"), []byte(r.serial()), 0o644); err != nil {
		t.Log(err)
	}
}

func (r *crashRun) serial() string {
	var b strings.Builder
	for _, l := range r.Log {
		fmt.Fprintf(&b, "[%7.2f] %s\n", l.At.Seconds(), l.Text)
	}
	return b.String()
}

// failf reports a failed run with the tail of the serial log.
func (r *crashRun) failf(t *testing.T, format string, args ...any) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.serial(), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	t.Fatalf("%s\nQEMU: %v after %v\n--- serial log (tail) ---\n%s",
		fmt.Sprintf(format, args...), r.Err, r.Elapsed.Round(time.Millisecond), strings.Join(lines, "\n"))
}

// find returns the first log line matching re, and its submatches.
func (r *crashRun) find(re *regexp.Regexp) (logLine, []string, bool) {
	for _, l := range r.Log {
		if m := re.FindStringSubmatch(l.Text); m != nil {
			return l, m, true
		}
	}
	return logLine{}, nil, false
}

var savedRE = regexp.MustCompile(`gokdump: saved (\S+) bytes=(\d+) seconds=([0-9.]+)`)

// savedPath returns the dump path the capture reported, or fails.
func (r *crashRun) savedPath(t *testing.T) string {
	t.Helper()
	if _, m, ok := r.find(savedRE); ok {
		return m[1]
	}
	if l, _, ok := r.find(regexp.MustCompile(`gokdump: FAILED`)); ok {
		r.failf(t, "capture failed: %s", l.Text)
	}
	r.failf(t, "no 'gokdump: saved' line")
	return ""
}

// phases extracts the timing of each phase of the cycle from the log.
func (r *crashRun) phases() map[string]time.Duration {
	marks := []struct{ name, re string }{
		{"stage1 init", `stage1: \[.*\] start`},
		{"capture kernel loaded", `capture kernel loaded`},
		{"crash", `stage1: \[.*\] crashing now`},
		{"capture init", `gokdump: \[`},
		{"dump saved", `gokdump: saved`},
	}
	out := map[string]time.Duration{}
	for _, m := range marks {
		if l, _, ok := r.find(regexp.MustCompile(m.re)); ok {
			out[m.name] = l.At
		}
	}
	out["qemu exit"] = r.Elapsed
	return out
}

func (r *crashRun) logPhases(t *testing.T) {
	p := r.phases()
	order := []string{"stage1 init", "capture kernel loaded", "crash", "capture init", "dump saved", "qemu exit"}
	var b strings.Builder
	prev := time.Duration(0)
	for _, n := range order {
		at, ok := p[n]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "  %-22s at %6.2fs (+%5.2fs)\n", n, at.Seconds(), (at - prev).Seconds())
		prev = at
	}
	if c, ok := p["crash"]; ok {
		fmt.Fprintf(&b, "  panic → QEMU exit: %.2fs\n", (r.Elapsed - c).Seconds())
	}
	t.Logf("%s %s phases:\n%s", r.Kernel.KVer, r.Spec.Disk, b.String())
}

// extract copies a file out of the disk image with debugfs.
func (r *crashRun) extract(t *testing.T, path string) string {
	t.Helper()
	out := filepath.Join(r.Dir, strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_"))
	cmd := exec.Command("debugfs", "-R", fmt.Sprintf("dump %s %s", path, out), r.Disk)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debugfs dump %s: %v\n%s", path, err, b)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Fatalf("debugfs could not extract %s from %s (%v)", path, r.Disk, err)
	}
	return out
}

// ls lists a directory in the disk image with debugfs: name → mode.
func (r *crashRun) ls(t *testing.T, dir string) map[string]uint32 {
	t.Helper()
	b, err := exec.Command("debugfs", "-R", "ls -p "+dir, r.Disk).Output()
	if err != nil {
		t.Fatalf("debugfs ls %s: %v", dir, err)
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
	return out
}

func writeImage(t *testing.T, path string, opts builder.Options) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := builder.Build(context.Background(), f, opts); err != nil {
		f.Close()
		t.Fatalf("build %s: %v", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeCacheFile writes mib MiB of random data with a CACHE marker per MiB.
func writeCacheFile(t *testing.T, path, id string, mib int) {
	t.Helper()
	b := make([]byte, mib<<20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < mib; i++ {
		copy(b[i<<20+200:], guest.Marker("CACHE", id, i))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// countMarkers scans a file for every marker with prefix and returns how
// many distinct ones it found.
func countMarkers(t *testing.T, path, prefix string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	p := []byte(prefix)
	const chunk = 8 << 20
	buf := make([]byte, chunk+len(p)+16)
	var carry int
	for {
		n, err := io.ReadFull(f, buf[carry:carry+chunk])
		data := buf[:carry+n]
		for i := 0; ; {
			j := bytes.Index(data[i:], p)
			if j < 0 {
				break
			}
			at := i + j
			// Only whole markers count: the guest's heap also holds the
			// bare prefix it built them from.
			if at+len(p)+6 <= len(data) && allDigits(data[at+len(p):at+len(p)+6]) {
				seen[string(data[at:at+len(p)+6])] = true
			}
			i = at + 1
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Keep the tail so a marker across chunks is found whole.
		keep := len(p) + 16
		copy(buf, data[len(data)-keep:])
		carry = keep
	}
	return len(seen)
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// keep copies a dump into $GOKDUMP_KEEP_VMCORES, when set, as
// <kver>-<disk>-<mem>M.<kind>, for benchmarks and for developing readers
// against real dumps.
func (r *crashRun) keep(t *testing.T, file, kind string) {
	t.Helper()
	dir := os.Getenv("GOKDUMP_KEEP_VMCORES")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s-%s-%dM.%s", r.Kernel.KVer, r.Spec.Disk, r.Spec.MemMiB, kind))
	if err := os.Rename(file, dst); err != nil {
		t.Fatalf("keep %s: %v", dst, err)
	}
	// The run's id lets later tests look for its markers.
	if err := os.WriteFile(dst+".id", []byte(r.ID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("kept %s", dst)
}
