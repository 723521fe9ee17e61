package diskdump

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// Tests that real readers (makedumpfile 1.7.2, drgn 0.0.22 through
// libkdumpfile) accept what the Writer makes.

const drgnScript = `
import sys
from drgn.helpers.linux.printk import get_dmesg
print("COMM", prog['init_task'].comm.string_().decode())
print("RELEASE", prog['init_uts_ns'].name.release.string_().decode())
if len(sys.argv) > 1:
    marker = sys.argv[1].encode()
    print("MARKER", marker in get_dmesg(prog))
`

// runDrgn opens dump with drgn and the vmlinux of src's kernel, and checks
// init_task's comm and the release; with a marker, that the kernel log
// holds it.
func runDrgn(t *testing.T, dump string, src *vmcore.File, marker ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("drgn is slow")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import drgn").Run(); err != nil {
		t.Skip("no drgn for /usr/bin/python3")
	}
	release := src.VMCOREINFO.OSRelease()
	vmlinux := filepath.Join(kernelDir(release), "vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		t.Skipf("no vmlinux for %s", release)
	}
	script := filepath.Join(t.TempDir(), "check.py")
	if err := os.WriteFile(script, []byte(drgnScript), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-m", "drgn", "-q", "-c", dump, "-s", vmlinux, script}, marker...)
	start := time.Now()
	out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("drgn: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "COMM swapper/0\n") || !strings.Contains(s, "RELEASE "+release+"\n") {
		t.Errorf("drgn output:\n%s", s)
	}
	if len(marker) > 0 && !strings.Contains(s, "MARKER True") {
		t.Errorf("drgn: kernel log lacks %s:\n%s", marker[0], s)
	}
	t.Logf("drgn read %s in %v", filepath.Base(dump), time.Since(start).Round(time.Millisecond))
}

func kmsgMarker(t *testing.T, vmcorePath string) string {
	return "GOKDUMP-KMSG-" + runID(t, vmcorePath) + "-000000"
}

// TestDrgnReadsOurs: drgn opens our zstd, zlib and snappy dumps.
func TestDrgnReadsOurs(t *testing.T) {
	if testing.Short() {
		t.Skip("writes whole dumps")
	}
	cases := []struct {
		vmcore string
		codec  codec.Codec
	}{
		{realVmcores[0], codec.Zstd},
		{realVmcores[0], codec.Zlib},
		{realVmcores[0], codec.Snappy},
		{realVmcores[1], codec.Zstd},
	}
	var _ interface {
		ReadPhys([]byte, uint64) (int, error)
	} = (*File)(nil)
	for _, tc := range cases {
		t.Run(tc.vmcore+"/"+tc.codec.String(), func(t *testing.T) {
			src, path := openVmcore(t, tc.vmcore)
			marker := kmsgMarker(t, path)
			fh := createFile(t, "dump")
			if _, _, err := writeDump(t, src, fh, dumpOpts{codec: tc.codec, dumpLevel: 1, chunk: 16}); err != nil {
				t.Fatal(err)
			}
			runDrgn(t, fh.Name(), src, marker)
		})
	}
}

// TestMakedumpfileReadsOurs: makedumpfile finds the kernel log in our
// zlib dump and re-filters it; the re-filtered file holds the same pages.
func TestMakedumpfileReadsOurs(t *testing.T) {
	if testing.Short() {
		t.Skip("writes whole dumps")
	}
	mdf, err := exec.LookPath("makedumpfile")
	if err != nil {
		t.Skip("makedumpfile not installed")
	}
	for _, name := range realVmcores {
		t.Run(name, func(t *testing.T) {
			src, path := openVmcore(t, name)
			marker := kmsgMarker(t, path)
			fh := createFile(t, "dump")
			if _, _, err := writeDump(t, src, fh, dumpOpts{codec: codec.Zlib, dumpLevel: 1, chunk: 16}); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			dmesg := filepath.Join(dir, "dmesg.txt")
			if out, err := exec.Command(mdf, "--dump-dmesg", fh.Name(), dmesg).CombinedOutput(); err != nil {
				t.Fatalf("makedumpfile --dump-dmesg: %v\n%s", err, out)
			}
			log, err := os.ReadFile(dmesg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(log, []byte(marker)) {
				t.Errorf("kernel log (%d bytes) lacks %s", len(log), marker)
			}
			refiltered := filepath.Join(dir, "refiltered")
			if out, err := exec.Command(mdf, "-c", "-d", "31", fh.Name(), refiltered).CombinedOutput(); err != nil {
				t.Fatalf("makedumpfile -c -d 31 on our dump: %v\n%s", err, out)
			}
			kf, err := OpenFile(refiltered)
			if err != nil {
				t.Fatal(err)
			}
			defer kf.Close()
			n := comparePages(t, kf, src)
			t.Logf("re-filtered: %d pages equal the vmcore", n)
		})
	}
}

// TestHeaderMatchesMakedumpfile compares our header, sub-header, notes
// and 1st bitmap byte for byte with makedumpfile -c -d 31's.
func TestHeaderMatchesMakedumpfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs makedumpfile on whole vmcores")
	}
	for _, name := range realVmcores {
		t.Run(name, func(t *testing.T) {
			src, path := openVmcore(t, name)
			ref := makedumpfileRef(t, path, "-c", "-d", "31")
			fh := createFile(t, "dump")
			nothing := func(uint64) bool { return true }
			if _, _, err := writeDump(t, src, fh, dumpOpts{codec: codec.Zlib, dumpLevel: 31, exclude: nothing, chunk: 8}); err != nil {
				t.Fatal(err)
			}
			ours, err := os.ReadFile(fh.Name())
			if err != nil {
				t.Fatal(err)
			}
			kf, err := OpenFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer kf.Close()
			theirs := make([]byte, kf.lay.bitmap2)
			if _, err := kf.r.ReadAt(theirs, 0); err != nil {
				t.Fatal(err)
			}
			if len(ours) < len(theirs) {
				t.Fatalf("our file is %d bytes, makedumpfile's bitmaps end at %d", len(ours), len(theirs))
			}
			for _, part := range []struct {
				name       string
				start, end int64
			}{
				{"disk_dump_header", 0, headerSize},
				{"header block", headerSize, 4096},
				{"kdump_sub_header", 4096, 4096 + subHeaderSize},
				{"notes and sub-header blocks", 4096 + subHeaderSize, kf.lay.bitmap1},
				{"1st bitmap", kf.lay.bitmap1, kf.lay.bitmap2},
			} {
				a, b := ours[part.start:part.end], theirs[part.start:part.end]
				if !bytes.Equal(a, b) {
					i := 0
					for i < len(a) && a[i] == b[i] {
						i++
					}
					t.Errorf("%s differs at file offset %#x: ours % x, makedumpfile's % x", part.name,
						part.start+int64(i), a[i:min(i+16, len(a))], b[i:min(i+16, len(b))])
				}
			}
		})
	}
}
