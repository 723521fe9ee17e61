package qemutests

import (
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestFilter crashes every line of the kernel matrix at level 1 (THP on,
// as Debian's kernels run): every user and page-cache marker must be in
// the dump. TestCrash is level 31 with THP on; here also level 31 with
// transparent huge pages off, on Debian 12's two lines: no user or
// page-cache marker may survive it.
func TestFilter(t *testing.T) {
	t.Parallel()
	type tc struct {
		name, line, first, capture string
		w                          want
	}
	var cases []tc
	for _, l := range harness.Lines() {
		cases = append(cases, tc{l.Name + "-d1", l.Name, "", "gokdump.dump_level=1",
			want{format: anydump.Kdump, userAll: true, cacheAll: true}})
	}
	for _, l := range []string{"6.1", "6.12"} {
		cases = append(cases, tc{l + "-thp-never-d31", l, "transparent_hugepage=never", "", want{format: anydump.Kdump}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := crash(t, harness.Spec{Line: tc.line, Dbg: true, FirstAppend: tc.first, CaptureAppend: tc.capture})
			out := extract(t, r, savedPath(t, r))
			checkDump(t, r, out, tc.w)
			if thp := r.AnonHugeKB(); tc.first == "" && thp <= 0 || tc.first != "" && thp != 0 {
				t.Errorf("AnonHugePages %d kB in the guest with %q", thp, tc.first)
			}
		})
	}
}
