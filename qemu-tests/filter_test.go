package qemutests

import (
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestFilter crashes each kernel with transparent huge pages off at the
// default level 31 (TestCrash covers THP on), and with THP on at level 1:
// at 31 no user or page-cache marker may survive, at 1 all of them must.
func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		name, line, first, capture string
		w                          want
	}{
		{"6.1-thp-never-d31", "6.1", "transparent_hugepage=never", "", want{format: anydump.Kdump}},
		{"6.12-thp-never-d31", "6.12", "transparent_hugepage=never", "", want{format: anydump.Kdump}},
		{"6.1-d1", "6.1", "", "gokdump.dump_level=1", want{format: anydump.Kdump, userAll: true, cacheAll: true}},
		{"6.12-d1", "6.12", "", "gokdump.dump_level=1", want{format: anydump.Kdump, userAll: true, cacheAll: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := crash(t, harness.Spec{Line: tc.line, Dbg: true, FirstAppend: tc.first, CaptureAppend: tc.capture})
			out := extract(t, r, savedPath(t, r))
			checkDump(t, r, out, tc.w)
		})
	}
}
