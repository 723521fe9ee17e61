package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestARM64Dumps runs the CLI on real arm64 dumps (QEMU's ELF cores of
// Debian kernels, see qemu-tests/qmpdump): info names the machine, release
// and panic; dmesg holds the run's kmsg marker; save -d 31 keeps that
// marker and no user or page-cache one, with fewer than a tenth of the
// pages; drgn reads the saved dump with the debug vmlinux, and so do
// Debian 12's and sid's drgn the dump saved as ELF.
func TestARM64Dumps(t *testing.T) {
	if testing.Short() {
		t.Skip("saves whole dumps and runs drgn")
	}
	for _, d := range fixture.RealDumpsOf(t, "arm64", fixture.ARM64Lines...) {
		t.Run(d.Name(), func(t *testing.T) {
			code, out, stderr := gokdump("info", d.Path)
			if code != exitOK {
				t.Fatalf("info: exit %d: %s", code, stderr)
			}
			for _, want := range []string{"machine:     aarch64, 1 CPUs", "kernel:      " + d.KVer + " ", "panic:       Kernel panic - not syncing: sysrq triggered crash"} {
				if !strings.Contains(out, want) {
					t.Errorf("info lacks %q:\n%s", want, out)
				}
			}
			code, out, stderr = gokdump("dmesg", d.Path)
			if code != exitOK || !strings.Contains(out, d.Marker("KMSG", 0)) {
				t.Errorf("dmesg: exit %d, kmsg marker %v: %s", code, strings.Contains(out, d.Marker("KMSG", 0)), stderr)
			}

			d31 := filepath.Join(t.TempDir(), "d31")
			code, out, stderr = gokdump("save", "-d", "31", "--vmcore", d.Path, d31)
			if code != exitOK {
				t.Fatalf("save -d 31: exit %d: %s", code, stderr)
			}
			if strings.Contains(stderr, "keeps every page") || strings.Contains(stderr, "warning") {
				t.Errorf("save -d 31 warned: %s", stderr)
			}
			t.Logf("%s", strings.TrimSpace(out))
			c, err := harness.TakeCensus(d31, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Markers["USER"] != 0 || c.Markers["CACHE"] != 0 || c.Markers["KMSG"] != 1 {
				t.Errorf("-d 31 keeps markers %v, want KMSG 1 only", c.Markers)
			}
			f := d.Open(t)
			if total := uint64(f.Segments[0].MemSize) / uint64(f.PageSize); c.Pages == 0 || c.Pages > total/10 {
				t.Errorf("-d 31 keeps %d of %d pages", c.Pages, total)
			}
			if fi, err := os.Stat(d31); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("saved dump: %v, mode %v", err, fi.Mode())
			}
			fixture.CheckWithDrgn(t, d31, d, true)

			// As ELF: QEMU's core has physical addresses only, the output
			// the kernel image's and the direct map's, which Debian 12's
			// drgn (0.0.22) needs to find the page tables.
			elfOut := filepath.Join(t.TempDir(), "d31.elf")
			code, _, stderr = gokdump("save", "-q", "-d", "31", "--format", "elf", "--vmcore", d.Path, elfOut)
			if code != exitOK || strings.Contains(stderr, "warning") {
				t.Fatalf("save -d 31 --format elf: exit %d: %s", code, stderr)
			}
			ef, err := vmcore.Open(elfOut)
			if err != nil {
				t.Fatal(err)
			}
			defer ef.Close()
			if n := kernelImageLoads(ef); n == 0 {
				t.Errorf("ELF output has no PT_LOAD at a kernel-image address: %+v", ef.Segments)
			}
			fixture.CheckWithDrgn(t, elfOut, d, true)
			fixture.CheckWithDrgnUsing(t, sidDrgn(t), elfOut, d, true)

			// The kdump file saved again as ELF: no virtual address in its
			// view either, the same PT_LOADs added.
			again := filepath.Join(t.TempDir(), "again.elf")
			if code, _, stderr = gokdump("save", "-q", "-d", "31", "--format", "elf", "--vmcore", d31, again); code != exitOK || strings.Contains(stderr, "warning") {
				t.Fatalf("save --format elf of the kdump file: exit %d: %s", code, stderr)
			}
			fixture.CheckWithDrgn(t, again, d, true)
		})
	}
}

// kernelImageLoads counts the PT_LOADs of f that map SYMBOL(swapper_pg_dir).
func kernelImageLoads(f *vmcore.File) int {
	pgd, ok := f.VMCOREINFO.Symbol("swapper_pg_dir")
	n := 0
	for _, s := range f.Segments {
		if ok && pgd >= s.VirtAddr && pgd-s.VirtAddr < s.MemSize {
			n++
		}
	}
	return n
}

// sidDrgn returns what runs sid's drgn (scripts/sid-run) with args, each
// file among them bound into the tree where its path resolves.
func sidDrgn(t *testing.T) func(args []string) *exec.Cmd {
	t.Helper()
	if _, err := harness.ReaderVersions(repoRoot); err != nil {
		fixture.Missing(t, "no sid tree for the newer drgn: %v", err)
	}
	return func(args []string) *exec.Cmd {
		var binds []string
		for i, a := range args {
			if p, err := filepath.EvalSymlinks(a); err == nil {
				args[i] = p
				binds = append(binds, p)
			}
		}
		return harness.SidCommand(repoRoot, binds, append([]string{"/usr/bin/python3", "-m", "drgn"}, args...)...)
	}
}
