package qemutests

import (
	"path"
	"regexp"
	"testing"

	"github.com/gokdump/gokdump/capture/dumpdir"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

var dumpPathRE = regexp.MustCompile(`^/var/crash/\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d(-\d+)?/vmcore$`)

// TestCrash is the walking skeleton: each kernel line × each disk type,
// a real panic, a dump on disk, checked from the host.
func TestCrash(t *testing.T) {
	for _, tc := range []struct{ line, disk string }{
		{"6.1", "nvme"},
		{"6.1", "virtio"},
		{"6.12", "nvme"},
		{"6.12", "virtio"},
	} {
		t.Run(tc.line+"-"+tc.disk, func(t *testing.T) {
			t.Parallel()
			r := crash(t, harness.Spec{Line: tc.line, Disk: tc.disk})
			p := savedPath(t, r)
			t.Logf("%s %s phases:\n%s", r.Kernel.KVer, tc.disk, r.PhaseReport())
			if !dumpPathRE.MatchString(p) {
				failf(t, r, "dump path %q is not <dir>/<YYYY-MM-DD-HH:MM:SS>/vmcore", p)
			}
			dir := path.Dir(p)
			entries := ls(t, r, dir)
			if mode, ok := entries[dumpdir.VMCore]; !ok {
				t.Fatalf("%s: no vmcore in %v", dir, entries)
			} else if mode&0o777 != 0o600 {
				t.Errorf("vmcore mode %o, want 600", mode&0o777)
			}
			if _, ok := entries[dumpdir.VMCoreIncomplete]; ok {
				t.Errorf("vmcore-incomplete left behind")
			}
			if mode := ls(t, r, "/var/crash")[path.Base(dir)]; mode&0o777 != 0o700 {
				t.Errorf("dump dir mode %o, want 700", mode&0o777)
			}
			out := extract(t, r, p)
			checkELFDump(t, r, out)
			keep(t, r, out, "elf")
		})
	}
}

// checkELFDump opens an ELF vmcore and checks its release and markers.
func checkELFDump(t *testing.T, r *harness.Run, file string) {
	t.Helper()
	f, err := vmcore.Open(file)
	if err != nil {
		t.Fatalf("open dump: %v", err)
	}
	defer f.Close()
	if f.VMCOREINFO == nil {
		t.Fatal("dump has no VMCOREINFO")
	}
	if got := f.VMCOREINFO.OSRelease(); got != r.Kernel.KVer {
		t.Errorf("VMCOREINFO OSRELEASE = %q, want %q", got, r.Kernel.KVer)
	}
	if len(f.PRStatus) == 0 {
		t.Error("dump has no NT_PRSTATUS note")
	}
	if n := countMarkers(t, file, guest.MarkerPrefix("KMSG", r.ID)); n != 1 {
		t.Errorf("kmsg marker found %d times (distinct), want 1", n)
	}
	if n := countMarkers(t, file, guest.MarkerPrefix("USER", r.ID)); n != r.Spec.AnonMiB {
		t.Errorf("%d of %d user markers in the dump", n, r.Spec.AnonMiB)
	}
}
