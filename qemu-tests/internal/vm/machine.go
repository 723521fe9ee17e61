package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Arch is what differs between the architectures a guest can be.
type Arch struct {
	GOARCH  string // amd64, arm64: what the guest's inits are built for
	QEMU    string // the system emulator
	Console string // the serial console's device name in the guest
	// Machine are the arguments that pick the board (none on x86: the
	// default pc machine).
	Machine []string
	// TCGCPU is the CPU model under TCG; "" takes QEMU's default.
	TCGCPU string
}

// Arches are the architectures a guest can be, by GOARCH.
var Arches = map[string]Arch{
	"amd64": {GOARCH: "amd64", QEMU: "qemu-system-x86_64", Console: "ttyS0"},
	"arm64": {GOARCH: "arm64", QEMU: "qemu-system-aarch64", Console: "ttyAMA0",
		Machine: []string{"-machine", "virt,gic-version=3"}, TCGCPU: "max"},
}

// ArchOf returns the Arch of a GOARCH; the error lists those there are.
func ArchOf(goarch string) (Arch, error) {
	if a, ok := Arches[goarch]; ok {
		return a, nil
	}
	return Arch{}, fmt.Errorf("vm: no guest architecture %q (amd64, arm64)", goarch)
}

// Accelerators of a guest.
const (
	TCG = "tcg" // QEMU's emulator: slow, works everywhere
	KVM = "kvm" // the host's hypervisor: same architecture only
)

// DiskDev is a disk image attached to a guest.
type DiskDev struct {
	Bus      string // nvme or virtio
	Image    string // raw image file
	ReadOnly bool
}

// Machine is one guest boot.
type Machine struct {
	Arch   Arch
	Accel  string // TCG (default) or KVM
	MemMiB int
	CPUs   int // 1 when 0
	Kernel string
	Initrd string // "" boots without one
	Append string // the kernel command line
	Disks  []DiskDev
	Extra  []string // more QEMU arguments (a NIC)
	// Timeout bounds the boot: QEMU is killed when it runs longer.
	Timeout time.Duration
	// KillOn ends QEMU (a power cut) when a console line matches it.
	KillOn *regexp.Regexp
	// Typing is typed on the serial console, step by step: each step's
	// Keys once a console line matches its After (and the previous step
	// was typed), as an operator would.
	Typing []Keys
}

// Keys is a step of Machine.Typing.
type Keys struct {
	After *regexp.Regexp
	Keys  string // "\r" is the Enter key
}

// typingPause is how long Boot waits after a step's line before it
// types, so that the program that printed it is reading by then.
const typingPause = 500 * time.Millisecond

// Args is QEMU's command line for m, without the program's name.
func (m Machine) Args() ([]string, error) {
	accel := m.Accel
	if accel == "" {
		accel = TCG
	}
	cpus := m.CPUs
	if cpus <= 0 {
		cpus = 1
	}
	args := append([]string{"-accel", accel}, m.Arch.Machine...)
	switch {
	case accel == KVM:
		// The host's CPU as KVM offers it; QEMU's default model is a
		// lowest common denominator.
		args = append(args, "-cpu", "max")
	case m.Arch.TCGCPU != "":
		args = append(args, "-cpu", m.Arch.TCGCPU)
	}
	args = append(args, "-m", fmt.Sprintf("%dM", m.MemMiB), "-smp", fmt.Sprint(cpus),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", m.Kernel)
	if m.Initrd != "" {
		args = append(args, "-initrd", m.Initrd)
	}
	args = append(args, "-append", strings.TrimSpace(m.Append))
	for i, d := range m.Disks {
		if strings.ContainsRune(d.Image, ',') {
			return nil, fmt.Errorf("vm: disk image %q: QEMU cannot take a comma in a file name", d.Image)
		}
		ro := ""
		if d.ReadOnly {
			ro = ",readonly=on"
		}
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw%s", d.Image, i, ro))
		switch d.Bus {
		case "nvme":
			args = append(args, "-device", fmt.Sprintf("nvme,drive=d%d,serial=d%d", i, i))
		case "virtio":
			args = append(args, "-device", fmt.Sprintf("virtio-blk-pci,drive=d%d", i))
		default:
			return nil, fmt.Errorf("vm: unknown disk bus %q (nvme, virtio)", d.Bus)
		}
	}
	return append(args, m.Extra...), nil
}

// Line is a serial console line, timestamped on arrival.
type Line struct {
	At   time.Duration // since QEMU started
	Text string
}

// Log is a guest's serial console.
type Log []Line

// String returns the whole log with arrival times.
func (l Log) String() string {
	var b strings.Builder
	for _, x := range l {
		fmt.Fprintf(&b, "[%7.2f] %s\n", x.At.Seconds(), x.Text)
	}
	return b.String()
}

// Tail returns the last n lines of the log with arrival times.
func (l Log) Tail(n int) string {
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.TrimRight(l.String(), "\n")
}

// Find returns the first line matching re, and its submatches.
func (l Log) Find(re *regexp.Regexp) (Line, []string, bool) {
	for _, x := range l {
		if m := re.FindStringSubmatch(x.Text); m != nil {
			return x, m, true
		}
	}
	return Line{}, nil, false
}

// Result is what a boot left.
type Result struct {
	Log      Log
	Err      error // QEMU's exit status (a kill is one)
	Killed   bool  // KillOn matched and QEMU was killed
	TimedOut bool  // Timeout passed and QEMU was killed
	Elapsed  time.Duration
}

// maxLine bounds a console line kept: a guest that writes without a
// newline must not grow the host's memory without end.
const maxLine = 1 << 20

// Boot runs QEMU until it exits, Timeout passes or ctx ends, timestamping
// each console line as it arrives, and writes the log to logPath (0600)
// when that is not "". The error is for QEMU not starting and the log not
// written; how the guest ended is in the Result.
func (m Machine) Boot(ctx context.Context, logPath string) (*Result, error) {
	args, err := m.Args()
	if err != nil {
		return nil, err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 4 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// timeout(1) bounds QEMU even when this process dies before it
	// (a killed test binary), a little later than the context, which
	// is what normally ends it (Result.TimedOut). Both run
	// in a process group of their own, killed as one: a power cut.
	name := m.Arch.QEMU
	if tp, err := exec.LookPath("timeout"); err == nil {
		args = append([]string{"--kill-after=5", fmt.Sprintf("%ds", int((timeout+time.Second-1)/time.Second)+10), m.Arch.QEMU}, args...)
		name = tp
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	killGroup := func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	cmd.Cancel = func() error { killGroup(); return nil }
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var keys io.WriteCloser
	if len(m.Typing) > 0 {
		if keys, err = cmd.StdinPipe(); err != nil {
			pw.Close()
			return nil, fmt.Errorf("vm: console input: %w", err)
		}
	}
	var typeMu sync.Mutex // steps are typed from timers
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("vm: start %s: %w", m.Arch.QEMU, err)
	}
	r := &Result{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		typed := 0
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		for sc.Scan() {
			text := strings.TrimRight(sc.Text(), "\r")
			r.Log = append(r.Log, Line{time.Since(start), text})
			if typed < len(m.Typing) && m.Typing[typed].After.MatchString(text) {
				k := m.Typing[typed].Keys
				typed++
				time.AfterFunc(typingPause, func() {
					typeMu.Lock()
					defer typeMu.Unlock()
					// QEMU may be gone by then; the log tells.
					keys.Write([]byte(k))
				})
			}
			if m.KillOn != nil && !r.Killed && m.KillOn.MatchString(text) {
				r.Killed = true
				killGroup()
			}
		}
		io.Copy(io.Discard, pr)
	}()
	r.Err = cmd.Wait()
	pw.Close()
	<-done
	if keys != nil {
		typeMu.Lock()
		keys.Close()
		typeMu.Unlock()
	}
	r.Elapsed = time.Since(start)
	r.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	if logPath != "" {
		if err := os.WriteFile(logPath, []byte(r.Log.String()), 0o600); err != nil {
			return r, fmt.Errorf("vm: serial log: %w", err)
		}
	}
	return r, nil
}
