package elfcore

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// Real dumps: ELF /proc/vmcore copies of QEMU crashes of Debian kernels,
// with the debug vmlinux of each, kept out of the repository.
var realDumps = []struct {
	release string
}{
	{"6.1.0-56-cloud-amd64"},
	{"6.12.117+deb12-cloud-amd64"},
}

const drgnScript = `import sys
from drgn.helpers.linux.printk import get_dmesg
print("COMM", prog['init_task'].comm.string_().decode())
print("RELEASE", prog['init_uts_ns'].name.release.string_().decode())
print("KMSG", sys.argv[1].encode() in get_dmesg(prog))
`

// zeroPages reads every stored page of src and returns a keep-set that
// drops the all-zero ones, as the save pipeline's first pass does.
func zeroPages(t *testing.T, src *vmcore.File) (KeepFunc, uint64) {
	t.Helper()
	nonzero := make([]uint64, (src.MaxPFN()+63)/64)
	ps := uint64(src.PageSize)
	buf := make([]byte, 1<<20)
	zero := make([]byte, ps)
	var zeros uint64
	for _, r := range src.PhysRanges() {
		for a := r.Start; a < r.FileEnd; {
			n := min(uint64(len(buf)), r.FileEnd-a)
			if _, err := src.ReadPhys(buf[:n], a); err != nil {
				t.Fatal(err)
			}
			for p := uint64(0); p < n; p += ps {
				if bytes.Equal(buf[p:min(p+ps, n)], zero[:min(ps, n-p)]) {
					zeros++
					continue
				}
				pfn := (a + p) / ps
				nonzero[pfn/64] |= 1 << (pfn % 64)
			}
			a += n
		}
	}
	return func(pfn uint64) bool {
		return pfn/64 < uint64(len(nonzero)) && nonzero[pfn/64]&(1<<(pfn%64)) != 0
	}, zeros
}

func TestRealDumps(t *testing.T) {
	if testing.Short() {
		t.Skip("reads and writes gigabytes")
	}
	for _, rd := range realDumps {
		t.Run(rd.release, func(t *testing.T) {
			cache := filepath.Join("..", "..", ".cache")
			path := filepath.Join(cache, "vmcores", rd.release+"-nvme-1024M.elf")
			vmlinux := filepath.Join(cache, "kernels", rd.release, "vmlinux")
			if _, err := os.Stat(path); err != nil {
				t.Skipf("real dump not present: %v", err)
			}
			idb, err := os.ReadFile(path + ".id")
			if err != nil {
				t.Fatal(err)
			}
			marker := "GOKDUMP-KMSG-" + strings.TrimSpace(string(idb)) + "-000000"
			start := time.Now()
			src, err := vmcore.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			keep, zeros := zeroPages(t, src)

			dir := t.TempDir()
			out := filepath.Join(dir, "dump.elf")
			fh, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Save(fh, src, keep, Options{})
			if cerr := fh.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			fi, _ := os.Stat(out)
			t.Logf("%d zero pages of %d; kept %d, zero-filled %d, dropped %d; %d MiB -> %d MiB in %v",
				zeros, src.MaxPFN(), st.KeptPages, st.ZeroFilledPages, st.DroppedPages,
				src.Size()>>20, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
			if st.DroppedPages == 0 || fi.Size() >= src.Size() {
				t.Errorf("nothing dropped: %+v", st)
			}

			t.Run("vmcore", func(t *testing.T) {
				f, err := vmcore.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Flags != 0 || f.VMCOREINFO.OSRelease() != rd.release || !bytes.Equal(f.NoteData, src.NoteData) {
					t.Errorf("flags %#x, notes differ", f.Flags)
				}
				// The kernel-text PT_LOAD comes out whole and first.
				if s, o := src.Segments[0], f.Segments[0]; s.VirtAddr != o.VirtAddr || s.PhysAddr != o.PhysAddr ||
					s.MemSize != o.MemSize || o.FileSize != o.MemSize {
					t.Errorf("kernel text: source %+v, output %+v", s, o)
				}
				// Every kept page equals the source; every other one is a
				// hole or zeros.
				ps := uint64(src.PageSize)
				a, b := make([]byte, ps), make([]byte, ps)
				zero := make([]byte, ps)
				var kept uint64
				for _, r := range src.PhysRanges() {
					for addr := r.Start; addr < r.FileEnd; addr += ps {
						_, oerr := f.ReadPhys(b, addr)
						if !keep(addr / ps) {
							if oerr == nil && !bytes.Equal(b, zero) {
								t.Fatalf("dropped page %#x holds data", addr)
							}
							if oerr != nil && !errors.Is(oerr, vmcore.ErrHole) {
								t.Fatal(oerr)
							}
							continue
						}
						kept++
						if _, err := src.ReadPhys(a, addr); err != nil {
							t.Fatal(err)
						}
						if oerr != nil || !bytes.Equal(a, b) {
							t.Fatalf("kept page %#x: %v, equal %v", addr, oerr, bytes.Equal(a, b))
						}
					}
				}
				if kept != st.KeptPages {
					t.Errorf("%d kept pages read, layout kept %d", kept, st.KeptPages)
				}
			})

			t.Run("drgn", func(t *testing.T) {
				drgn, err := exec.LookPath("/usr/bin/drgn")
				if err != nil {
					t.Skip("drgn not installed")
				}
				if _, err := os.Stat(vmlinux); err != nil {
					t.Skipf("no vmlinux: %v", err)
				}
				script := filepath.Join(dir, "check.py")
				if err := os.WriteFile(script, []byte(drgnScript), 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(drgn, "-q", "-c", out, "-s", vmlinux, script, marker)
				got, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("drgn: %v\n%s", err, got)
				}
				for _, want := range []string{"COMM swapper/0\n", "RELEASE " + rd.release + "\n", "KMSG True\n"} {
					if !strings.Contains(string(got), want) {
						t.Errorf("drgn output lacks %q:\n%s", want, got)
					}
				}
			})

			t.Run("makedumpfile", func(t *testing.T) {
				mdf, err := exec.LookPath("makedumpfile")
				if err != nil {
					t.Skip("makedumpfile not installed")
				}
				dmesg := filepath.Join(dir, "dmesg.txt")
				got, err := exec.Command(mdf, "--dump-dmesg", out, dmesg).CombinedOutput()
				if err != nil {
					t.Fatalf("makedumpfile --dump-dmesg: %v\n%s", err, got)
				}
				log, err := os.ReadFile(dmesg)
				if err != nil || !bytes.Contains(log, []byte(marker)) {
					t.Errorf("makedumpfile --dump-dmesg: marker not in the log (%v)\n%s", err, got)
				}
				// Re-filtering reads every page header and the mm structures.
				kdump := filepath.Join(dir, "dump.kdump")
				got, err = exec.Command(mdf, "-d", "31", "-c", out, kdump).CombinedOutput()
				if err != nil {
					t.Fatalf("makedumpfile -d 31 -c: %v\n%s", err, got)
				}
				if fi, err := os.Stat(kdump); err != nil || fi.Size() < 1<<20 {
					t.Errorf("makedumpfile wrote %v: %v", fi, err)
				}
			})
		})
	}
}
