package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/fixture"
	"golang.org/x/sys/unix"
)

// Test helpers: a synthetic ELF vmcore and a captured console.

// testCore writes an x86_64 ELF core of pages 4 KiB pages at physical 0
// (fixture.Mixed: a third each zero, random and text) with a VMCOREINFO
// note, and returns its path. Its notes are at 176, after two program
// headers, its data at 4096; like /proc/vmcore, it has no holes.
func testCore(t testing.TB, pages int) string {
	t.Helper()
	le := binary.LittleEndian
	c := fixture.Core{
		Notes: append(fixture.PRStatus(le, elf.EM_X86_64, 0, nil),
			fixture.VMCOREINFO(le, "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nCRASHTIME=1764246000\n")...),
		Loads:   []fixture.Load{fixture.RAM(0, uint64(pages), uint64(pages))},
		Content: fixture.Mixed,
	}
	p := filepath.Join(t.TempDir(), "vmcore")
	if err := os.WriteFile(p, c.Build().Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// useCore points the capture at a test vmcore for the test's duration.
func useCore(t *testing.T, path string) {
	t.Helper()
	old := vmcorePath
	vmcorePath = path
	t.Cleanup(func() { vmcorePath = old })
}

// console captures what the capture prints.
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

func captureConsole(t *testing.T) *console {
	t.Helper()
	c := &console{}
	conMu.Lock()
	old := conOut
	conOut = c
	conMu.Unlock()
	t.Cleanup(func() {
		conMu.Lock()
		conOut = old
		conMu.Unlock()
		if t.Failed() {
			t.Logf("console:\n%s", c.String())
		}
	})
	return c
}

// testConfig is the default configuration with a few values set.
func testConfig(t *testing.T, set func(*config.Config)) *config.Config {
	t.Helper()
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
