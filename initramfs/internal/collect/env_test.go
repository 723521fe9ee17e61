package collect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/sys/unix"
)

// The capture's world for tests: a console in memory, block devices that
// are directories (or regular files, for raw targets), and actions that
// are recorded instead of taken.

// console is a console's output, safe to read while the capture writes.
type console struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// disk is a fake block device: mounting it yields dir; a raw one is the
// regular file dev.Path.
type disk struct {
	dev      blockdev.Device
	dir      string
	readOnly bool
}

// world records what the capture did to it.
type world struct {
	t     *testing.T
	con   *console
	disks []*disk

	mu        sync.Mutex
	actions   []config.Action
	mounted   []string
	unmounted []string
	waits     []time.Duration
	modules   int
	syncs     int
}

// newWorld returns an Env whose vmcore is core and whose devices are
// disks, and what it records. The console is logged if the test fails.
func newWorld(t *testing.T, core string, disks ...*disk) (*Env, *world) {
	t.Helper()
	w := &world{t: t, con: &console{}, disks: disks}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", w.con.String())
		}
	})
	env := &Env{
		Console:    NewConsole(w.con, time.Now(), time.Now),
		Clock:      RealClock{},
		Vmcore:     core,
		OpenVmcore: vmcore.Open,
		ReadLog:    printk.ReadDump,
		LoadModules: func(logf func(string, ...any)) error {
			w.mu.Lock()
			w.modules++
			w.mu.Unlock()
			logf("module fake.ko loaded")
			return nil
		},
		WaitDevice: w.waitDevice,
		ReadOnly: func(dev *blockdev.Device) bool {
			d := w.disk(dev.Path)
			return d != nil && d.readOnly
		},
		Mount: func(dev *blockdev.Device, fstype, options string) (string, error) {
			d := w.disk(dev.Path)
			if d == nil || d.dir == "" {
				return "", fmt.Errorf("mount %s: %w", dev.Path, unix.EINVAL)
			}
			if d.readOnly {
				return "", unix.EROFS
			}
			w.mu.Lock()
			w.mounted = append(w.mounted, d.dir)
			w.mu.Unlock()
			return d.dir, nil
		},
		Unmount: func(mnt string) error {
			w.mu.Lock()
			w.unmounted = append(w.unmounted, mnt)
			w.mu.Unlock()
			return nil
		},
		OpenDevice: func(path string) (*os.File, error) {
			if d := w.disk(path); d != nil && d.readOnly {
				return nil, &os.PathError{Op: "open", Path: path, Err: unix.EROFS}
			}
			return os.OpenFile(path, os.O_RDWR, 0)
		},
		Sync: func() {
			w.mu.Lock()
			w.syncs++
			w.mu.Unlock()
		},
		Fdatasync: func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) },
		FreeSpace: freeSpace,
		Act: func(a config.Action) {
			w.mu.Lock()
			w.actions = append(w.actions, a)
			w.mu.Unlock()
		},
		Exec:      ExecProgram,
		KernelLog: func() ([]byte, error) { return []byte("[    0.000000] Linux version capture\n"), nil },
	}
	return env, w
}

func (w *world) disk(path string) *disk {
	for _, d := range w.disks {
		if d.dev.Path == path {
			return d
		}
	}
	return nil
}

// waitDevice is blockdev.Sys.Wait over the fake disks: it waits the
// whole timeout for a device that is not there, and says what it saw.
func (w *world) waitDevice(spec blockdev.Spec, timeout time.Duration) (*blockdev.Device, error) {
	w.mu.Lock()
	w.waits = append(w.waits, timeout)
	w.mu.Unlock()
	var seen []blockdev.Device
	for _, d := range w.disks {
		if d.dev.Match(spec) {
			return &d.dev, nil
		}
		seen = append(seen, d.dev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	<-ctx.Done()
	return nil, &blockdev.NotFoundError{Spec: spec, Seen: seen, Waited: time.Since(t0), Cause: ctx.Err()}
}

func (w *world) Unmounted() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.unmounted)
}

func (w *world) Actions() []config.Action {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.actions)
}

// dirDisk is an ext4 disk labelled label whose filesystem is a new
// directory (or mnt, if given).
func dirDisk(t *testing.T, name, label string, mnt ...string) *disk {
	t.Helper()
	dir := t.TempDir()
	if len(mnt) > 0 {
		dir = mnt[0]
	}
	return &disk{dir: dir, dev: blockdev.Device{Name: name, Path: "/dev/" + name, Major: 259, Minor: 1, Size: 1 << 30,
		FS: &blockdev.Filesystem{FSType: "ext4", Label: label, UUID: "0a0b0c0d-" + name}}}
}

// rawDisk is a device of size bytes with no filesystem, a regular file
// holding garbage from an earlier life: the stream must not depend on
// zeros.
func rawDisk(t *testing.T, size int64) *disk {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte{0xa5}, 1<<20), 0)
	f.Truncate(size)
	f.Close()
	return &disk{dev: blockdev.Device{Name: "fake", Path: p, Size: size}}
}

// testConfig is the default configuration with a few values set.
func testConfig(set func(*config.Config)) *config.Config {
	c := config.Default()
	c.Progress = false
	if set != nil {
		set(&c)
	}
	return &c
}

// tmpfs mounts a tmpfs of size bytes for the test, or skips when mounting
// is not allowed.
func tmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs root", err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if unix.Unmount(dir, 0) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("unmount %s", dir)
	})
	return dir
}

// fastClock runs speed times faster than the real one: budgets of
// seconds pass in a fraction of one.
type fastClock struct {
	base  time.Time
	speed time.Duration
}

func newFastClock(speed int) fastClock { return fastClock{time.Now(), time.Duration(speed)} }

func (c fastClock) Now() time.Time { return c.base.Add(time.Since(c.base) * c.speed) }
func (c fastClock) After(d time.Duration) <-chan time.Time {
	return time.After(d / c.speed)
}

// stepClock is a clock that moves only when waited on: After(d) moves it
// by d and fires at once. Counts of waits against a deadline are exact
// with it, whatever the machine's load.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock { return &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}
