package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/internal/kexec"
)

// arm64Runtime is the arm64 estimate's runtime term (kexec's
// runtimeMemoryArm64), as its help and the README state it.
const arm64Runtime = 36 << 20

// estimateFixture is a fake machine with 1 GiB of RAM and 128 MiB
// reserved, its kernel (40 MiB init_size) and a 6 MiB newc initrd.
func estimateFixture(t *testing.T) (kernel, initrd string) {
	t.Helper()
	root := kexecFixture(t, map[string]string{
		"vmlinuz":                     fakeVmlinuz(),
		"initrd.img":                  "070701" + strings.Repeat("0", 6<<20-6),
		"sys/kernel/kexec_crash_size": "134217728",
		"proc/cmdline":                "crashkernel=128M",
		"proc/meminfo":                "MemTotal:        1048576 kB\n",
	})
	return filepath.Join(root, "vmlinuz"), filepath.Join(root, "initrd.img")
}

func TestEstimateSizes(t *testing.T) {
	kernel, initrd := estimateFixture(t)
	base := []string{"estimate", "--kernel", kernel, "--initrd", initrd}
	for _, tt := range []struct {
		args         []string
		code         int
		stdout, errs []string
	}{
		{nil, exitOK, []string{"8 MiB per TiB of RAM, for 1 GiB ", "1.0 MiB", "rounded up to a multiple of 16 MiB: crashkernel=96M", "capture kernel CPUs: 1 (",
			"reserved now: 128 MiB (enough)", "initrd " + initrd}, nil},
		{[]string{"--ram", "64GiB"}, exitOK, []string{"for 64 GiB ", "2 MiB per CPU beyond the first, for 2 CPUs", "crashkernel=96M",
			`capture kernel CPUs: 2 (capture_cpus = "auto", from default: one per 32 GiB of memory, 1 to 8; this machine has 64 GiB)`}, nil},
		{[]string{"--ram", "64G"}, exitOK, []string{"for 64 GiB "}, nil},
		{[]string{"--ram", "64GB"}, exitOK, []string{"for 59.6 GiB "}, []string{"64GB is 64000000000 bytes (59.6 GiB)", "64G or 64GiB"}},
		// 94 MiB, and 14 for the 8 CPUs "auto" gives 1.5 TiB.
		{[]string{"--ram", "1.5T"}, exitOK, []string{"for 1.5 TiB ", "12.0 MiB", "for 8 CPUs        14.0 MiB", "108.0 MiB", "crashkernel=112M"}, nil},
		{[]string{"--ram", "1.5T", "--cpus", "1"}, exitOK, []string{"capture kernel CPUs: 1 (--cpus)", "94.0 MiB", "crashkernel=96M"}, nil},
		{[]string{"--cpus", "65"}, exitUsage, nil, []string{"--cpus 65: want 1 to 64"}},
		{[]string{"--cpus", "-1"}, exitUsage, nil, []string{"--cpus -1: want 1 to 64"}},
		{[]string{"--ram", "0"}, exitUsage, nil, []string{"a size of zero"}},
		{[]string{"--ram", "100"}, exitUsage, nil, []string{"no unit", "100G for GiB"}},
		{[]string{"--ram", "64Q"}, exitUsage, nil, []string{"64G, 64GiB, 1.5T"}},
	} {
		code, stdout, stderr := gokdump(append(base, tt.args...)...)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d\n%s%s", tt.args, code, tt.code, stdout, stderr)
		}
		for _, w := range tt.stdout {
			if !strings.Contains(stdout, w) {
				t.Errorf("%q: stdout lacks %q:\n%s", tt.args, w, stdout)
			}
		}
		for _, w := range tt.errs {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tt.args, w, stderr)
			}
		}
	}
}

// A dedicated capture kernel is estimated alone: --no-initrd, and an
// --initrd "" is not taken for the default image.
func TestEstimateNoInitrd(t *testing.T) {
	kernel, initrd := estimateFixture(t)
	code, stdout, stderr := gokdump("estimate", "--kernel", kernel, "--no-initrd", "--ram", "1G")
	// 40 MiB init_size + 2 MiB of kexec segments + 28 + 1 = 71 → 80M.
	if code != exitOK || !strings.Contains(stdout, "no initrd") || !strings.Contains(stdout, "no separate initramfs to unpack") ||
		!strings.Contains(stdout, "crashkernel=80M") {
		t.Errorf("--no-initrd: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, args := range [][]string{{"--initrd", ""}, {"--initrd=", "--no-initrd"}, {"--initrd", initrd, "--no-initrd"}} {
		code, _, stderr := gokdump(append([]string{"estimate", "--kernel", kernel}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "--no-initrd") {
			t.Errorf("%q: exit %d: %s", args, code, stderr)
		}
	}
}

func TestEstimateJSON(t *testing.T) {
	kernel, initrd := estimateFixture(t)
	// Flags after arguments-free commands' flags, in any order.
	code, stdout, stderr := gokdump("estimate", "--kernel", kernel, "--initrd", initrd, "--json", "--ram", "2T")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	want := map[string]any{
		"kernel": kernel, "arch": "x86_64", "initrd": initrd, "ram_bytes": float64(2 << 40), "unpacked_bytes": float64(6 << 20),
		"runtime_bytes": float64(28 << 20), "ram_term_bytes": float64(16 << 20), "align_bytes": float64(16 << 20),
		"total_bytes": float64(112 << 20), "crashkernel": "112M", "reserved_bytes": float64(128 << 20), "enough": true,
		// "auto" on 2 TiB: 8 CPUs, 7 × 2 MiB: 48 + 6 + 28 + 16 + 14 = 112.
		"cpus": float64(8), "cpu_term_bytes": float64(14 << 20),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"load_bytes", "sum_bytes"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s in\n%s", k, stdout)
		}
	}
	if len(got) != len(want)+2 {
		t.Errorf("fields changed:\n%s", stdout)
	}
}

// TestEstimateCMASplit: on a running kernel that can reserve a CMA part
// (7.3, CONFIG_CMA), estimate also recommends the split; on one that
// cannot (the fixture's default: no release, no CmaTotal), it does not.
func TestEstimateCMASplit(t *testing.T) {
	kernel, initrd := estimateFixture(t)
	code, stdout, _ := gokdump("estimate", "--kernel", kernel, "--initrd", initrd)
	if code != exitOK || strings.Contains(stdout, ",cma") {
		t.Errorf("a split for a kernel that cannot reserve CMA: exit %d\n%s", code, stdout)
	}
	os.WriteFile(filepath.Join(kexecProcRoot, "meminfo"), []byte("MemTotal:        1048576 kB\nCmaTotal:          65536 kB\n"), 0o600)
	os.MkdirAll(filepath.Join(kexecProcRoot, "sys/kernel"), 0o755)
	os.WriteFile(filepath.Join(kexecProcRoot, "sys/kernel/osrelease"), []byte("7.3.4+deb13-cloud-amd64\n"), 0o600)
	// 40 MiB init_size + 6 MiB initrd + 2 MiB of segments = 48 loaded;
	// + 6 unpacked + 28 + 1 = 83 → 96M: 48M standard, 48M CMA.
	code, stdout, stderr := gokdump("estimate", "--kernel", kernel, "--initrd", initrd)
	if code != exitOK || !strings.Contains(stdout, "crashkernel=96M to the kernel command line") ||
		!strings.Contains(stdout, "as CMA: crashkernel=48M crashkernel=48M,cma\nreserves 48 MiB for what is loaded") ||
		!strings.Contains(stdout, "not in a dump") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = gokdump("estimate", "--kernel", kernel, "--initrd", initrd, "--json")
	var got struct {
		Total uint64 `json:"total_bytes"`
		CMA   *struct {
			Std         uint64 `json:"std_bytes"`
			CMA         uint64 `json:"cma_bytes"`
			Crashkernel string `json:"crashkernel"`
		} `json:"cma"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
	}
	if got.CMA == nil || got.CMA.Std != 48<<20 || got.CMA.CMA != 48<<20 || got.CMA.Std+got.CMA.CMA != got.Total ||
		got.CMA.Crashkernel != "crashkernel=48M crashkernel=48M,cma" {
		t.Errorf("json cma %+v, total %d", got.CMA, got.Total)
	}
}

// The config's capture_cpus is what estimate counts, and a
// gokdump.capture_cpus= in its kernel_args wins, as on the capture's
// command line.
func TestEstimateConfigCPUs(t *testing.T) {
	kernel, initrd := estimateFixture(t)
	for _, tt := range []struct{ config, want string }{
		{"capture_cpus = 3\n", "capture kernel CPUs: 3 (capture_cpus = 3, from "},
		{"capture_cpus = 3\nkernel_args = \"gokdump.capture_cpus=5\"\n", "capture kernel CPUs: 5 (capture_cpus = 5, from cmdline)"},
	} {
		if err := os.WriteFile(statusConfigPath, []byte(tt.config), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := gokdump("estimate", "--kernel", kernel, "--initrd", initrd)
		if code != exitOK || !strings.Contains(stdout, tt.want) {
			t.Errorf("%q: exit %d, want %q:\n%s%s", tt.config, code, tt.want, stdout, stderr)
		}
	}
}

// The kernel file decides the formula: Debian's arm64 Images (from the
// cache, as the QEMU tests fetch them) are estimated with their
// image_size and the arm64 runtime term on this x86_64 machine too, for
// the memory --ram gives (this machine's says nothing about them); a file
// of no known format counts its size, and says so.
func TestEstimateArm64(t *testing.T) {
	_, initrd := estimateFixture(t)
	for _, kernel := range fixture.KernelImagesOf(t, "arm64") {
		t.Run(fixture.Release(kernel), func(t *testing.T) {
			hdr := make([]byte, 64)
			f, err := os.Open(kernel)
			if err != nil {
				t.Fatal(err)
			}
			f.ReadAt(hdr, 0)
			f.Close()
			imageSize := binary.LittleEndian.Uint64(hdr[16:])
			// image_size placed on a 2 MiB boundary, the 6 MiB initrd, 2 MiB of segments.
			load := (imageSize+2<<20-1)&^(2<<20-1) + 6<<20 + 2<<20
			code, stdout, stderr := gokdump("estimate", "--kernel", kernel, "--initrd", initrd, "--ram", "1G", "--json")
			var got map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != exitOK {
				t.Fatalf("exit %d, %v:\n%s%s", code, err, stdout, stderr)
			}
			sum := load + 6<<20 + arm64Runtime + 1<<20
			for k, v := range map[string]any{"arch": "arm64", "load_bytes": float64(load), "runtime_bytes": float64(arm64Runtime),
				"sum_bytes": float64(sum), "total_bytes": float64((sum + 16<<20 - 1) &^ (16<<20 - 1))} {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			// This machine's reservation is not the arm64 one's.
			if _, ok := got["reserved_bytes"]; ok {
				t.Errorf("reserved_bytes for another machine's kernel:\n%s", stdout)
			}
			code, stdout, stderr = gokdump("estimate", "--kernel", kernel, "--initrd", initrd, "--ram", "1G")
			for _, w := range []string{"\nkernel format: arm64 Image (the arm64 formula)\n", "loaded kernel (image_size)", "capture kernel and capture at run time (arm64)", "crashkernel="} {
				if code != exitOK || !strings.Contains(stdout, w) {
					t.Errorf("exit %d, stdout lacks %q:\n%s%s", code, w, stdout, stderr)
				}
			}
			if strings.Contains(stdout, "reserved now") {
				t.Errorf("this machine's reservation judged against an arm64 kernel:\n%s", stdout)
			}
			// gokdump load on an arm64 machine shows the same.
			p, err := kexec.NewPlanAnyArch(kernel, "", "/nonexistent")
			if err != nil {
				t.Fatal(err)
			}
			var plan strings.Builder
			printLoadPlan(&plan, p, nil, "")
			if want := fmt.Sprintf("%s in memory (image_size), arm64 Image\n", kexec.MiB(p.KernelMemory())); !strings.Contains(plan.String(), want) {
				t.Errorf("load plan lacks %q:\n%s", want, plan.String())
			}
			code, _, stderr = gokdump("estimate", "--kernel", kernel, "--initrd", initrd)
			if code != exitUsage || !strings.Contains(stderr, "is an arm64 kernel and this machine is x86_64: give --ram") {
				t.Errorf("no --ram: exit %d: %s", code, stderr)
			}
		})
	}

	// A kernel built for 64 KiB pages (flags bits 1-2: 3) is estimated
	// the same, with a note: the runtime term is measured at 4 KiB.
	b, err := os.ReadFile(fixture.KernelImagesOf(t, "arm64")[0])
	if err != nil {
		t.Fatal(err)
	}
	b = b[:1<<20]
	b[24] |= 3 << 1
	k64 := filepath.Join(t.TempDir(), "vmlinuz-64k")
	if err := os.WriteFile(k64, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := gokdump("estimate", "--kernel", k64, "--initrd", initrd, "--ram", "1G")
	if code != exitOK || !strings.Contains(stdout, "(arm64)") || !strings.Contains(stderr, "is built for 64 KiB pages; the arm64 runtime term was measured with 4 KiB pages only") {
		t.Errorf("64 KiB pages: exit %d\n%s%s", code, stdout, stderr)
	}

	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 5<<18), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = gokdump("estimate", "--kernel", junk, "--initrd", initrd, "--ram", "1G")
	// 5 MiB of file + 6 + 2 loaded, + 6 + 28 + 1 = 48 → 48M.
	for _, w := range []string{"kernel format: not recognised (its file size counted, the x86_64 terms)", "loaded kernel (file size)", "crashkernel=48M"} {
		if code != exitOK || !strings.Contains(stdout, w) {
			t.Errorf("junk: exit %d, stdout lacks %q:\n%s", code, w, stdout)
		}
	}
	if !strings.Contains(stderr, "note: "+junk+" is neither an x86_64 bzImage nor an arm64 Image") {
		t.Errorf("junk: stderr %q", stderr)
	}
}
