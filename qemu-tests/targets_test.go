package qemutests

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestTargets dumps to each filesystem gokdump supports, found by UUID and
// by LABEL, and opens each dump with our reader and drgn.
func TestTargets(t *testing.T) {
	t.Parallel()
	fsModules := map[string][]string{
		"ext4":  nil, // built into Debian's kernels
		"xfs":   {"xfs"},
		"vfat":  {"vfat", "nls_cp437", "nls_ascii", "nls_utf8"},
		"btrfs": {"btrfs"},
	}
	uuids := map[string]string{
		"ext4":  "3f1c2a5e-8d4b-4c1a-9e2f-0a1b2c3d4e5f",
		"xfs":   "9b2d7c1e-4a5f-4e3d-8c2b-1f0e9d8c7b6a",
		"vfat":  "1A2B-3C4D",
		"btrfs": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f70819",
	}
	i := 0
	for _, fs := range []string{"ext4", "xfs", "vfat", "btrfs"} {
		for _, by := range []string{"UUID", "LABEL"} {
			line := []string{"6.1", "6.12"}[i%2]
			i++
			t.Run(fmt.Sprintf("%s-%s-%s", fs, by, line), func(t *testing.T) {
				t.Parallel()
				target := "LABEL=DUMPS"
				if by == "UUID" {
					target = "UUID=" + uuids[fs]
				}
				r := crash(t, harness.Spec{
					Line: line, MemMiB: 512, AnonMiB: 16, ZeroMiB: 8, CacheMiB: -1, Dbg: true,
					Disks:          []harness.Disk{{FS: fs, Label: "DUMPS", UUID: uuids[fs], SizeMiB: 512}},
					CaptureModules: fsModules[fs],
					Config:         fmt.Sprintf("target = %q\n", target),
				})
				p := savedPath(t, r)
				if _, _, ok := r.Find(regexp.MustCompile(`target .* is /dev/nvme0n1 \(` + fs + `\)`)); !ok {
					failf(t, r, "the capture did not report the %s target", fs)
				}
				root := filepath.Join(r.Spec.Dir, "readback")
				if err := r.ReadBack(0, root); err != nil {
					t.Fatal(err)
				}
				file, err := harness.FindFile(root, p)
				if err != nil {
					t.Fatalf("dump %s not on the %s disk: %v", p, fs, err)
				}
				if _, err := harness.FindFile(root, path.Join(path.Dir(p), crashdir.DmesgFile)); err != nil {
					t.Errorf("no %s beside the dump: %v", crashdir.DmesgFile, err)
				}
				checkDump(t, r, file, want{format: anydump.Kdump})
			})
		}
	}
}
