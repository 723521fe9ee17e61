// Command qmpdump makes a real vmcore of a Debian kernel without any
// loader: it boots the kernel in QEMU with the QEMU tests' stage-1 init,
// which fills memory with the same markers as before a crash test and
// panics the kernel with no capture kernel loaded, and then has QEMU write
// the guest's memory as an ELF core (QMP dump-guest-memory). The guest's
// qemu_fw_cfg driver hands VMCOREINFO to QEMU's vmcoreinfo device, so the
// core carries the note every dump tool needs.
//
// It exists for machines our loader cannot crash yet (arm64), and works
// for amd64 too. The dump is kept in the cache's vmcores directory as
// <KVER>-nvme-<MEM>M.qmp.elf with its run id, and recorded in the index
// (fixture.AddToIndex, source "qmp"), where the unit tests find it by
// kernel line and architecture.
//
// QEMU's ELF differs from the kernel's /proc/vmcore: the program headers
// follow the section headers (e_phoff 192), and the PT_LOADs carry
// physical addresses only: no kernel-image PT_LOAD, and p_vaddr is the
// physical address on arm64, 0 on x86_64.
//
//	go run ./qemu-tests/qmpdump -arch arm64 -line 6.12
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/internal/vm"
)

// tcgCPU is the -cpu each architecture runs with unless -cpu says;
// pauth-impdef: QEMU's own pointer-authentication hash, as the
// architected one (QARMA) is several times slower under TCG.
var tcgCPU = map[string]string{"arm64": "max,pauth-impdef=on"}

type options struct {
	arch, line    string
	cpu           string
	memMiB        int
	anonMiB       int
	cacheMiB      int
	dir           string
	timeout       time.Duration
	work          string
	verbose, dbg  bool
	appendCmdline string
}

func main() {
	var o options
	flag.StringVar(&o.arch, "arch", "arm64", "architecture, as Debian names it: arm64 or amd64")
	flag.StringVar(&o.line, "line", "6.12", "kernel line (6.1, 6.12, …) or latest, as scripts/fetch-kernel takes it")
	flag.StringVar(&o.cpu, "cpu", "", "QEMU's -cpu, when not the default; `max,lpa2=off` runs Debian's 52-bit arm64 kernels with 48-bit addresses (kept under its own name)")
	flag.IntVar(&o.memMiB, "mem", 1024, "guest memory in MiB")
	flag.IntVar(&o.anonMiB, "anon", 64, "MiB of random anonymous memory with a USER marker per MiB")
	flag.IntVar(&o.cacheMiB, "cache", 32, "MiB of a file read into the page cache, a CACHE marker per MiB")
	flag.StringVar(&o.dir, "dir", "", "where to keep the dump (default: the cache's vmcores directory)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "the whole QEMU run, dump included")
	flag.StringVar(&o.work, "work", "", "working directory (default: a temporary one, removed after)")
	flag.StringVar(&o.appendCmdline, "append", "", "more kernel arguments")
	flag.BoolVar(&o.dbg, "dbg", true, "fetch the kernel's debug vmlinux too, when Debian has one")
	flag.BoolVar(&o.verbose, "v", false, "print the guest's console")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "qmpdump:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "qmpdump: "+format+"\n", args...)
}

func run(o options) error {
	arch, err := vm.ArchOf(o.arch)
	if err != nil {
		return err
	}
	if cpu := cmp.Or(o.cpu, tcgCPU[o.arch]); cpu != "" {
		arch.TCGCPU = cpu
	}
	if err := harness.NeedTools(arch.QEMU, "mkfs.ext4", "timeout"); err != nil {
		return err
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	if o.dir == "" {
		cache := os.Getenv("GOKDUMP_CACHE")
		if cache == "" {
			cache = filepath.Join(root, ".cache")
		}
		o.dir = filepath.Join(cache, "vmcores")
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "qmpdump"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}

	k, err := fetchKernel(root, o)
	if err != nil {
		return err
	}
	logf("kernel %s (%s)", k["KVER"], k["VMLINUZ"])
	stage1 := filepath.Join(work, "stage1")
	if err := goBuild(root, o.arch, "./qemu-tests/stage1", stage1); err != nil {
		return err
	}

	id := vm.NewID()
	params := guest.Params{ID: id, AnonMiB: o.anonMiB}
	disk := filepath.Join(work, "cache.img")
	if err := cacheDisk(disk, filepath.Join(work, "cache-root"), id, o.cacheMiB); err != nil {
		return fmt.Errorf("page-cache disk: %w", err)
	}
	if o.cacheMiB > 0 {
		// NVMe is built into Debian's kernels on both architectures.
		params.CacheDevice, params.CacheFSType, params.CacheFile = "/dev/nvme0n1", "ext4", "cachefile"
	}
	pj, err := json.Marshal(params)
	if err != nil {
		return err
	}
	img := filepath.Join(work, "stage1.cpio")
	if _, err := vm.WriteImage(context.Background(), img, builder.Options{
		Init: stage1, Arch: o.arch, ModulesDir: k["MODULES"],
		// It hands VMCOREINFO to QEMU's vmcoreinfo device when it probes.
		Modules:  []string{"qemu_fw_cfg"},
		Compress: builder.CompressNone,
		Extra:    []builder.File{{Path: guest.ParamsPath, Data: pj, Mode: 0o644}},
	}); err != nil {
		return err
	}

	core := filepath.Join(work, "vmcore.elf")
	times, err := boot(o, arch, k["VMLINUZ"], img, disk, filepath.Join(work, "qmp.sock"), core, filepath.Join(work, "serial.log"))
	if err != nil {
		if o.work == "" {
			// Keep what tells why.
			if b, rerr := os.ReadFile(filepath.Join(work, "serial.log")); rerr == nil {
				os.Stderr.Write(tail(b, 40))
			}
		}
		return err
	}
	logf("boot to stage-1 init %.1fs, to the panic %.1fs, dump-guest-memory %.1fs",
		times.init.Seconds(), times.panic.Seconds(), times.dump.Seconds())

	if err := check(core, k["KVER"], o, id); err != nil {
		return err
	}
	return keep(core, o, k, id)
}

// fetchKernel runs scripts/fetch-kernel and returns what it printed.
func fetchKernel(root string, o options) (map[string]string, error) {
	args := []string{o.line, "--arch", o.arch}
	if o.dbg {
		args = append(args, "--dbg-optional")
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "fetch-kernel"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fetch-kernel %s: %w", strings.Join(args, " "), err)
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	if kv["KVER"] == "" || kv["VMLINUZ"] == "" || kv["MODULES"] == "" {
		return nil, fmt.Errorf("fetch-kernel %s printed no kernel:\n%s", strings.Join(args, " "), out)
	}
	return kv, nil
}

func goBuild(root, arch, pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (GOARCH=%s): %v\n%s", pkg, arch, err, b)
	}
	return nil
}

// cacheDisk makes an ext4 image holding cachefile: mib MiB of random data
// with a CACHE marker per MiB, as the crash tests' page-cache workload.
func cacheDisk(img, stage, id string, mib int) error {
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	if err := vm.WriteCacheFile(filepath.Join(stage, "cachefile"), id, mib); err != nil {
		return err
	}
	return vm.MakeDisk(vm.Disk{Bus: "nvme", FS: "ext4", SizeMiB: mib + 32}, img, stage)
}

type phaseTimes struct{ init, panic, dump time.Duration }

// boot runs the guest until its kernel has panicked, then dumps it through
// QMP and quits QEMU. Everything is bounded by o.timeout.
func boot(o options, arch vm.Arch, kernel, initrd, disk, sock, core, serialLog string) (phaseTimes, error) {
	var times phaseTimes
	m := vm.Machine{Arch: arch, MemMiB: o.memMiB, Kernel: kernel, Initrd: initrd,
		Append: fmt.Sprintf("console=%s panic=0 %s", arch.Console, o.appendCmdline),
		Disks:  []vm.DiskDev{{Bus: "nvme", Image: disk}},
		// The vmcoreinfo device takes VMCOREINFO from the guest's
		// qemu_fw_cfg; QMP asks for the dump.
		Extra: []string{"-device", "vmcoreinfo", "-qmp", "unix:" + sock + ",server=on,wait=off"}}
	qargs, err := m.Args()
	if err != nil {
		return times, err
	}
	args := append([]string{"--kill-after=5", fmt.Sprint(int(o.timeout.Seconds())), arch.QEMU}, qargs...)
	cmd := exec.Command("timeout", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return times, err
	}
	cmd.Stderr = os.Stderr
	logFile, err := os.Create(serialLog)
	if err != nil {
		return times, err
	}
	defer logFile.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return times, err
	}
	exited := make(chan error, 1)
	panicked := make(chan struct{})
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(logFile, "[%7.3f] %s\n", time.Since(start).Seconds(), line)
			if o.verbose {
				fmt.Fprintln(os.Stderr, line)
			}
			switch {
			case strings.HasPrefix(line, "stage1: ") && strings.Contains(line, "] start"):
				times.init = time.Since(start)
			case strings.Contains(line, "---[ end Kernel panic"):
				// The last line panic() prints: the guest is dead.
				once.Do(func() { close(panicked) })
			case strings.Contains(line, "Kernel panic - not syncing"):
				times.panic = time.Since(start)
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		return times, fmt.Errorf("QEMU exited before the guest panicked: %v (console: %s)", err, serialLog)
	case <-panicked:
	}
	if times.init == 0 {
		cmd.Process.Kill()
		<-exited
		return times, fmt.Errorf("the kernel panicked before the stage-1 init ran (console: %s)", serialLog)
	}
	t := time.Now()
	err = dumpGuest(sock, core, o.timeout)
	times.dump = time.Since(t)
	if err != nil {
		cmd.Process.Kill()
		<-exited
		return times, err
	}
	select {
	case err := <-exited:
		if err != nil {
			return times, fmt.Errorf("QEMU: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		return times, errors.New("QEMU did not quit after the dump")
	}
	return times, nil
}

// dumpGuest has QEMU write the guest's memory to core as ELF, then quit.
func dumpGuest(sock, core string, timeout time.Duration) error {
	conn, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return fmt.Errorf("QMP: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	q := &qmp{conn: conn, dec: json.NewDecoder(conn)}
	var greeting map[string]json.RawMessage
	if err := q.dec.Decode(&greeting); err != nil {
		return fmt.Errorf("QMP greeting: %w", err)
	}
	if err := q.do("qmp_capabilities", nil); err != nil {
		return err
	}
	// paging off: QEMU copies physical memory; the page tables are ours
	// to walk.
	if err := q.do("dump-guest-memory", map[string]any{"paging": false, "protocol": "file:" + core}); err != nil {
		return err
	}
	return q.do("quit", nil)
}

type qmp struct {
	conn net.Conn
	dec  *json.Decoder
}

// do runs one QMP command and waits for its answer, passing over events.
func (q *qmp) do(command string, args map[string]any) error {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", command, err)
	}
	for {
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := q.dec.Decode(&resp); err != nil {
			if command == "quit" && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("QMP %s: %w", command, err)
		}
		switch {
		case resp.Error != nil:
			return fmt.Errorf("QMP %s: %s: %s", command, resp.Error.Class, resp.Error.Desc)
		case resp.Return != nil:
			return nil
		}
	}
}

// check opens the core as every test will, and counts the run's markers.
func check(core, kver string, o options, id string) error {
	f, err := vmcore.Open(core)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.VMCOREINFO == nil {
		return fmt.Errorf("%s has no VMCOREINFO note: did qemu_fw_cfg load in the guest?", core)
	}
	if r := f.VMCOREINFO.OSRelease(); r != kver {
		return fmt.Errorf("VMCOREINFO says OSRELEASE=%s, the guest ran %s", r, kver)
	}
	logf("core: %s, e_phoff %d, %d PT_LOADs, %d CPUs, page size %d", f.Machine, f.PhOff, len(f.Segments), len(f.PRStatus), f.PageSize)
	c, err := harness.TakeCensus(core, id)
	if err != nil {
		return err
	}
	logf("markers: %v in %d pages", c.Markers, c.Pages)
	if c.Markers["USER"] != o.anonMiB || c.Markers["CACHE"] != o.cacheMiB || c.Markers["KMSG"] != 1 {
		return fmt.Errorf("markers %v, want USER %d, CACHE %d, KMSG 1", c.Markers, o.anonMiB, o.cacheMiB)
	}
	return nil
}

// keep moves the core into o.dir and records it in the index.
func keep(core string, o options, k map[string]string, id string) error {
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-nvme-%dM%s.qmp.elf", k["KVER"], o.memMiB, cpuSuffix(o.cpu))
	dst := filepath.Join(o.dir, name)
	// 0600: a dump holds the guest's secrets, as any would. Copied
	// beside dst first: a reader of the old dump never sees half of it.
	if err := vm.MoveFile(core, dst+".tmp"); err != nil {
		return err
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		return err
	}
	if err := os.WriteFile(dst+".id", []byte(id+"\n"), 0o600); err != nil {
		return err
	}
	e := fixture.IndexEntry{File: name, KVer: k["KVER"], Line: k["LINE"], Arch: o.arch, Source: fixture.SourceQMP,
		Disk: "nvme", MemMiB: o.memMiB, ID: id, CPU: o.cpu}
	if o.line == "latest" {
		e.Matrix = "latest"
	}
	if err := fixture.AddToIndex(o.dir, e); err != nil {
		return err
	}
	logf("kept %s", dst)
	return nil
}

// cpuSuffix names a dump made with another -cpu: "max,lpa2=off" is
// "-max-lpa2-off".
func cpuSuffix(cpu string) string {
	if cpu == "" {
		return ""
	}
	return "-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, cpu)
}

func tail(b []byte, n int) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return []byte(strings.Join(lines, ""))
}
