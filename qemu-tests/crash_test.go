package qemutests

import (
	"path"
	"regexp"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

var dumpPathRE = regexp.MustCompile(`^/var/crash/\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d(-\d+)?/vmcore$`)

// TestCrash is the main path: each kernel line × each disk type, a real
// panic, the default capture (kdump-compressed, zstd, level 31), checked
// from the host with our reader and drgn.
func TestCrash(t *testing.T) {
	for _, tc := range []struct{ line, disk string }{
		{"6.1", "nvme"},
		{"6.1", "virtio"},
		{"6.12", "nvme"},
		{"6.12", "virtio"},
	} {
		t.Run(tc.line+"-"+tc.disk, func(t *testing.T) {
			t.Parallel()
			r := crash(t, harness.Spec{Line: tc.line, Disk: tc.disk, Dbg: true})
			p := savedPath(t, r)
			t.Logf("%s %s phases:\n%s", r.Kernel.KVer, tc.disk, r.PhaseReport())
			if !dumpPathRE.MatchString(p) {
				failf(t, r, "dump path %q is not <dir>/<YYYY-MM-DD-HH:MM:SS>/vmcore", p)
			}
			dir := path.Dir(p)
			entries := ls(t, r, dir)
			if mode, ok := entries[crashdir.VMCore]; !ok {
				t.Fatalf("%s: no vmcore in %v", dir, entries)
			} else if mode&0o777 != 0o600 {
				t.Errorf("vmcore mode %o, want 600", mode&0o777)
			}
			if _, ok := entries[crashdir.VMCoreIncomplete]; ok {
				t.Errorf("vmcore-incomplete left behind")
			}
			if mode := ls(t, r, "/var/crash")[path.Base(dir)]; mode&0o777 != 0o700 {
				t.Errorf("dump dir mode %o, want 700", mode&0o777)
			}
			checkDmesgFile(t, r, dir)
			out := extract(t, r, p)
			// Level 31: user memory and page cache are gone, the log stays.
			checkDump(t, r, out, want{format: anydump.Kdump})
			in, err := anydump.ReadInfo(out)
			if err != nil {
				t.Fatal(err)
			}
			if in.Panic != "Kernel panic - not syncing: sysrq triggered crash" || in.Release != r.Kernel.KVer || !in.Complete {
				t.Errorf("gokdump info: panic %q, release %q, complete %v", in.Panic, in.Release, in.Complete)
			}
		})
	}
}
