package qemutests

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

var dumpPathRE = regexp.MustCompile(`^/var/crash/\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d(-\d+)?/vmcore$`)

// TestCrash is the main path on every line of the kernel matrix: a real
// panic with NVMe as the dump disk (TestVMTest crashes the oldest and the
// newest line onto virtio-blk), the default capture (kdump-compressed,
// zstd, level 31), checked from the host with our reader and drgn.
// Debian's cloud kernels run with transparent huge pages always on, so
// this is also the filter test with THP on: the user memory sits in huge
// pages (checked), and at level 31 no user or page-cache marker may
// survive, the kmsg marker must.
// The NVMe run gives its line's row of the kernel table the boot-to-dump
// time and the pages kept.
func TestCrash(t *testing.T) {
	// Every top-level test runs in parallel, so that two guests run
	// at all times (go test -parallel), not one while a group ends.
	t.Parallel()
	type tc struct {
		line    harness.Line
		disk    string
		syscall string // forced on the stage-1 loader; "" lets it choose
	}
	var cases []tc
	for _, l := range harness.Lines() {
		cases = append(cases, tc{l, "nvme", ""})
	}
	// The classic kexec_load(2) loader, which arm64 needs (Debian builds
	// it without kexec_file_load), on the newest line of the matrix:
	// Debian's x86 kernels have both, so one cycle proves it here.
	cases = append(cases, tc{harness.Newest(), "nvme", kexec.SyscallClassic})
	for _, tc := range cases {
		name := tc.line.Name + "-" + tc.disk
		if tc.syscall != "" {
			name += "-" + tc.syscall
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := crash(t, harness.Spec{Line: tc.line.Name, Disk: tc.disk, Dbg: true, CaptureSyscall: tc.syscall})
			p := savedPath(t, r)
			if want := "loaded with " + kexec.SyscallName(tc.syscall); tc.syscall != "" && !strings.Contains(r.Serial(), want) {
				failf(t, r, "stage 1 did not say %q", want)
			}
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
			fx := checkDump(t, r, out, want{format: anydump.Kdump})
			thp := r.AnonHugeKB()
			if thp <= 0 {
				failf(t, r, "no transparent huge pages in the guest before the crash (AnonHugePages %d kB)", thp)
			}
			in, err := anydump.ReadInfo(out)
			if err != nil {
				t.Fatal(err)
			}
			if in.Panic != "Kernel panic - not syncing: sysrq triggered crash" || in.Release != r.Kernel.KVer || !in.Complete {
				t.Errorf("gokdump info: panic %q, release %q, complete %v", in.Panic, in.Release, in.Complete)
			}
			if tc.syscall != "" {
				return // the kernel table has one row per line, from the default load
			}
			rec := r.Record(t.Name())
			rec.Kept31, rec.THPkB = fx.pages, thp
			rec.User = fmt.Sprintf("%d/%d", fx.user, r.Spec.AnonMiB)
			if fx.drgn != "" {
				rec.Readers = map[matrix.Reader]string{fx.drgn: matrix.OK}
			}
			record(t, rec)
		})
	}
}
