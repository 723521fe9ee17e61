// Command stage1 is the init of the first (to-be-crashed) kernel in the
// QEMU crash tests and gokdump vmtest. It loads the capture kernel through
// gokdump's own loader, leaves recognisable markers in memory, and crashes
// the kernel the way its parameters say (guest.Crashes).
//
// Its parameters come from /stage1.json, written by the host into the
// stage-1 initramfs. make builds it as bin/gokdump-vmtest-init and make
// install puts it in PREFIX/lib/gokdump/vmtest-init, where an installed
// gokdump vmtest finds it. Every marker string is assembled at run time from
// the run id, so the full marker never appears in this binary's text.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/gokdump/gokdump/initramfs/boot"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"golang.org/x/sys/unix"
)

func logf(format string, args ...any) {
	fmt.Printf("stage1: [%s] %s\n", uptime(), fmt.Sprintf(format, args...))
}

func uptime() string {
	b, _ := os.ReadFile("/proc/uptime")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func main() {
	if err := boot.MountPseudo(); err != nil {
		logf("mount: %v", err)
	}
	// run returns only when something went wrong: success ends in a
	// kernel panic (or a power-off for NoCrash).
	logf("FAILED: %v", run())
	boot.Finish(boot.PowerOff)
}

func run() error {
	raw, err := os.ReadFile(guest.ParamsPath)
	if err != nil {
		return err
	}
	var p guest.Params
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("stage1.json: %w", err)
	}
	logf("start, kernel %s", release())
	if err := boot.LoadModules(boot.ModuleList, logf); err != nil {
		logf("modules: %v", err)
	}

	// No kernel: the guest is dumped by QEMU (dump-guest-memory), not by
	// a capture kernel (qemu-tests/qmpdump).
	if p.Kernel != "" {
		if err := loadCapture(p); err != nil {
			return err
		}
	}

	for _, c := range p.Commands {
		if err := runCommand(c); err != nil {
			return err
		}
	}
	if p.NoCrash {
		logf("done, not crashing")
		boot.Finish(boot.PowerOff)
	}

	var keep [][]byte
	if p.CacheFile != "" {
		n, err := readCache(p)
		if err != nil {
			return fmt.Errorf("page cache workload: %w", err)
		}
		logf("read %d MiB into the page cache", n>>20)
	}
	if p.AnonMiB > 0 {
		b, err := anon(p.AnonMiB)
		if err != nil {
			return err
		}
		var seed [32]byte
		copy(seed[:], p.ID)
		r := rand.New(rand.NewChaCha8(seed))
		for i := 0; i < len(b); i += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
		for i := 0; i < p.AnonMiB; i++ {
			copy(b[i<<20+100:], guest.Marker("USER", p.ID, i))
		}
		keep = append(keep, b)
		logf("filled %d MiB of anonymous memory with random data and user markers", p.AnonMiB)
	}
	if p.ZeroMiB > 0 {
		b, err := anon(p.ZeroMiB)
		if err != nil {
			return err
		}
		pg := os.Getpagesize()
		for i := 0; i < len(b); i += pg {
			b[i] = 1
			b[i] = 0
		}
		keep = append(keep, b)
		logf("touched %d MiB of zero-filled anonymous memory", p.ZeroMiB)
	}
	// Whether the user memory sits in transparent huge pages, which the
	// filter must recognise as user pages too: the tests check it.
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "AnonHugePages:") {
				logf("meminfo %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
	if err := os.WriteFile("/dev/kmsg", []byte(guest.Marker("KMSG", p.ID, 0)+"\n"), 0); err != nil {
		return fmt.Errorf("write kmsg marker: %w", err)
	}
	unix.Sync()
	err = crash(p.Crash)
	runtime.KeepAlive(keep)
	return err
}

// crash kills the kernel the way the method says; it returns only when
// that did not work.
func crash(method string) error {
	switch method {
	case "", guest.CrashSysrq:
		logf("crashing now (sysrq c)")
		if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0); err != nil {
			return fmt.Errorf("sysrq-trigger (CONFIG_MAGIC_SYSRQ): %w", err)
		}
		return fmt.Errorf("still alive after sysrq c")
	case guest.CrashPanic:
		// The kernel panics when PID 1 exits, before it takes the
		// process's memory down: the markers are still there.
		logf("crashing now (PID 1 exits)")
		os.Exit(1)
	}
	typ := guest.LKDTMType(method)
	if typ == "" {
		return fmt.Errorf("unknown crash method %q", method)
	}
	if err := os.MkdirAll("/sys/kernel/debug", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("debugfs", "/sys/kernel/debug", "debugfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount debugfs (CONFIG_DEBUG_FS): %w", err)
	}
	if _, err := os.Stat(guest.LKDTMDirect); err != nil {
		return fmt.Errorf("no LKDTM in this kernel (CONFIG_LKDTM, built in or the lkdtm module): %w", err)
	}
	logf("crashing now (LKDTM %s)", typ)
	if err := os.WriteFile(guest.LKDTMDirect, []byte(typ), 0); err != nil {
		return fmt.Errorf("LKDTM %s: %w", typ, err)
	}
	return fmt.Errorf("still alive after LKDTM %s", typ)
}

func loadCapture(p guest.Params) error {
	cmdline := p.Cmdline
	if cmdline == "" {
		cmdline = kexec.CaptureCmdline(boot.Cmdline(), p.Append, kexec.ReadCPUs("/proc", p.CaptureCPUs))
	}
	t := time.Now()
	plan, err := kexec.NewPlan(p.Kernel, p.Initrd, cmdline, "/sys")
	if err != nil {
		return fmt.Errorf("load capture kernel: %w", err)
	}
	plan.Syscall = p.Syscall
	if err := plan.Load(); err != nil {
		return fmt.Errorf("load capture kernel: %w", err)
	}
	crashSize, _ := os.ReadFile("/sys/kernel/kexec_crash_size")
	logf("capture kernel loaded with %s in %.3fs (crash size %s bytes), cmdline: %s",
		kexec.SyscallName(plan.Used), time.Since(t).Seconds(), strings.TrimSpace(string(crashSize)), plan.Cmdline)
	return nil
}

func anon(mib int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, mib<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap %d MiB: %w", mib, err)
	}
	return b, nil
}

func readCache(p guest.Params) (int64, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(p.CacheDevice); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("device %s did not appear", p.CacheDevice)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := os.MkdirAll("/cache", 0o755); err != nil {
		return 0, err
	}
	if err := unix.Mount(p.CacheDevice, "/cache", p.CacheFSType, unix.MS_RDONLY, ""); err != nil {
		return 0, fmt.Errorf("mount %s: %w", p.CacheDevice, err)
	}
	f, err := os.Open("/cache/" + strings.TrimPrefix(p.CacheFile, "/"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(io.Discard, f)
}

func runCommand(argv []string) error {
	logf("running %q", argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/"}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run %q: %w", argv, err)
	}
	return nil
}

func release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
