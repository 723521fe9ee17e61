package boot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// MountPseudo mounts proc, sysfs and devtmpfs where an initramfs expects
// them. A mount that is already there is not an error.
func MountPseudo() error {
	mounts := []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	}
	var errs []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		err := unix.Mount(m.src, m.dst, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("boot: mount %s on %s: %w", m.fstype, m.dst, err))
		}
	}
	return errors.Join(errs...)
}

// ModuleList is where the builder writes the image's modules, one absolute
// path per line, dependencies first.
const ModuleList = "/etc/gokdump.modules"

// LoadModules loads the modules listed in file, in order. A module the
// kernel already has is skipped; a module that fails does not stop the
// others (its device may not be the dump target). The returned error joins
// every failure.
func LoadModules(file string, logf func(string, ...any)) error {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path := strings.TrimSpace(sc.Text())
		if path == "" || strings.HasPrefix(path, "#") {
			continue
		}
		start := time.Now()
		if err := LoadModule(path); err != nil {
			errs = append(errs, err)
			logf("module %s: %v", path, err)
			continue
		}
		logf("module %s loaded in %v", path, time.Since(start).Round(time.Millisecond))
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("boot: read %s: %w", file, err))
	}
	return errors.Join(errs...)
}

// moduleInitCompressedFile is MODULE_INIT_COMPRESSED_FILE (linux 6.4+): the
// kernel decompresses the module itself.
const moduleInitCompressedFile = 4

// LoadModule loads one .ko, .ko.xz, .ko.zst or .ko.gz file.
func LoadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	defer f.Close()
	compressed := !strings.HasSuffix(path, ".ko")
	flags := 0
	if compressed {
		flags = moduleInitCompressedFile
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	if compressed && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOEXEC)) {
		// Kernels before 6.4, or without CONFIG_MODULE_DECOMPRESS:
		// decompress here and hand over the image.
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("boot: load %s: %w", path, serr)
		}
		r, rerr := kmodule.CompressionReader(f)
		if rerr != nil {
			return fmt.Errorf("boot: load %s: %w", path, rerr)
		}
		img, rerr := io.ReadAll(r)
		if rerr != nil {
			return fmt.Errorf("boot: decompress %s: %w", path, rerr)
		}
		err = unix.InitModule(img, "")
		if err == nil || errors.Is(err, unix.EEXIST) {
			return nil
		}
	}
	return fmt.Errorf("boot: load %s: %w", path, err)
}

// Action is what to do at the end: reboot, poweroff or halt.
type Action string

const (
	Reboot   Action = "reboot"
	PowerOff Action = "poweroff"
	Halt     Action = "halt"
)

// syncTimeout bounds the sync before the final action: a disk that
// stopped answering must not keep the machine from coming back.
const syncTimeout = 15 * time.Second

// Finish syncs (for at most syncTimeout) and carries out the action. It
// never returns: if the reboot(2) call fails it tries the others, and as
// the last resort it sleeps forever in a way the Go runtime does not call
// a deadlock.
func Finish(a Action) {
	synced := make(chan struct{})
	go func() {
		unix.Sync()
		close(synced)
	}()
	select {
	case <-synced:
	case <-time.After(syncTimeout):
		fmt.Fprintf(os.Stderr, "boot: sync still blocked after %v; going on\n", syncTimeout)
	}
	cmds := map[Action]int{
		Reboot:   unix.LINUX_REBOOT_CMD_RESTART,
		PowerOff: unix.LINUX_REBOOT_CMD_POWER_OFF,
		Halt:     unix.LINUX_REBOOT_CMD_HALT,
	}
	order := []Action{a, Reboot, PowerOff, Halt}
	for _, x := range order {
		if cmd, ok := cmds[x]; ok {
			if err := unix.Reboot(cmd); err != nil {
				fmt.Fprintf(os.Stderr, "boot: %s: %v\n", x, err)
			}
		}
	}
	Forever()
}

// Forever blocks the calling goroutine for good. As PID 1, Go reports a
// bare select{} with nothing else runnable as a deadlock and exits, which
// panics the kernel; a sleeping loop does not.
func Forever() {
	for {
		time.Sleep(time.Hour)
	}
}

// Cmdline returns /proc/cmdline.
func Cmdline() string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
