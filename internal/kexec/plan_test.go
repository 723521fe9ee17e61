package kexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// planFixture writes a fake bzImage, an initrd of initrdSize bytes and a
// sysfs with the given kexec_crash_size ("" for none), and returns their
// paths.
func planFixture(t *testing.T, initrdSize int, crashSize string) (kernel, initrd, sys string) {
	t.Helper()
	files := map[string]string{
		"vmlinuz":                 string(fakeBzImage()),
		"sys/kernel/kexec_loaded": "0\n", // sysfs is there whatever crashSize is
	}
	if crashSize != "" {
		files["sys/kernel/kexec_crash_size"] = crashSize
	}
	root := fixture.Tree(t, files)
	initrd = filepath.Join(root, "initrd.img")
	// Sparse: only the size matters.
	if err := os.WriteFile(initrd, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(initrd, int64(initrdSize)); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "vmlinuz"), initrd, filepath.Join(root, "sys")
}

func TestNewPlan(t *testing.T) {
	kernel, initrd, sys := planFixture(t, 3<<20, "134217728\n")
	p, err := newPlan(kernel, initrd, "console=ttyS0", sys, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if p.KernelSize != 8192 || p.InitrdSize != 3<<20 || p.Image == nil || p.Image.InitSize != 40<<20 {
		t.Errorf("plan %+v", p)
	}
	if !p.ReservedKnown || p.Reserved != 128<<20 {
		t.Errorf("Reserved %d known %v", p.Reserved, p.ReservedKnown)
	}
	// init_size, aligned to the 2 MiB kernel alignment, + initrd + overhead.
	if got, want := p.Need(), uint64(40<<20+3<<20+segmentOverhead); got != want {
		t.Errorf("Need() = %d, want %d", got, want)
	}
	if err := p.Check(); err != nil {
		t.Errorf("Check() = %v", err)
	}

	if p.Arch != ArchX86_64 || p.Arm64 != nil {
		t.Errorf("arch %q, arm64 header %v", p.Arch, p.Arm64)
	}

	// A machine of another GOARCH loads none of gokdump's formats' other
	// kernels: the load is refused before any system call.
	if _, err = newPlan(kernel, "", "", sys, "arm64"); !errors.Is(err, ErrNotKernel) || !strings.Contains(err.Error(), "an x86_64 kernel; this machine loads arm64 kernels") {
		t.Errorf("bzImage on arm64: err = %v", err)
	}
	// A machine of a GOARCH gokdump loads no kernels for checks nothing.
	p, err = newPlan(kernel, "", "", sys, "riscv64")
	if err != nil {
		t.Fatal(err)
	}
	if p.Arch != ArchX86_64 || p.KernelMemory() != 40<<20 {
		t.Errorf("riscv64 plan %+v, KernelMemory %d", p, p.KernelMemory())
	}
}

func TestNewPlanErrors(t *testing.T) {
	kernel, initrd, sys := planFixture(t, 10, "0")
	garbage := filepath.Join(filepath.Dir(kernel), "garbage")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("junk"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	badSys := fixture.Tree(t, map[string]string{"kernel/kexec_crash_size": "x"})
	tests := []struct {
		name                string
		kernel, initrd, sys string
		is                  error
		want                string
	}{
		{"no kernel", kernel + ".missing", initrd, sys, os.ErrNotExist, "kernel"},
		{"kernel is a directory", sys, initrd, sys, ErrNotKernel, "regular"},
		{"not a kernel", garbage, initrd, sys, ErrNotKernel, "HdrS"},
		{"initrd as kernel", initrd, kernel, sys, ErrNotKernel, "too short"},
		{"no initrd", kernel, initrd + ".missing", sys, os.ErrNotExist, "initrd"},
		{"bad sysfs", kernel, initrd, badSys, nil, "kexec_crash_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newPlan(tt.kernel, tt.initrd, "", tt.sys, "amd64")
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.is, tt.want)
			}
		})
	}
}

func TestPlanCheck(t *testing.T) {
	long := strings.Repeat("a", 2047-30-1)
	tests := []struct {
		name       string
		initrdSize int
		crashSize  string
		cmdline    string
		is         error
		want       []string
	}{
		{"fits", 20 << 20, "67108864", "console=ttyS0", nil, nil},
		{"no crash dump support", 1 << 20, "", "", ErrUnsupported, []string{"no crash dump support"}},
		{"longest cmdline", 0, "67108864", long, nil, nil},
		{"no reservation", 1 << 20, "0", "", ErrNoReservation, []string{"kexec_crash_size is 0", "crashkernel=96M"}},
		{"too large", 25 << 20, "67108864", "", ErrTooLarge, []string{"kernel 40.0 MiB", "initrd 25.0 MiB", "= 67.0 MiB", "reservation 64.0 MiB"}},
		{"cmdline too long", 0, "67108864", long + "a", ErrCmdlineTooLong, []string{"2017 bytes", "at most 2016"}},
		{"cmdline NUL", 0, "67108864", "a\x00b", ErrCmdlineTooLong, []string{"NUL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kernel, initrd, sys := planFixture(t, tt.initrdSize, tt.crashSize)
			p, err := newPlan(kernel, initrd, tt.cmdline, sys, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check()
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Check() = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("Check() = %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// Without sysfs only the kernel can judge the sizes.
func TestPlanCheckNoSysfs(t *testing.T) {
	kernel, initrd, _ := planFixture(t, 1<<30, "0")
	p, err := newPlan(kernel, initrd, "", filepath.Join(t.TempDir(), "nosys"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if p.ReservedKnown {
		t.Error("ReservedKnown without sysfs")
	}
	if err := p.Check(); err != nil {
		t.Errorf("Check() = %v", err)
	}
}

// The real kernels need far more than their file size: the check must use
// init_size, or a too-small reservation would pass it.
func TestPlanRealKernels(t *testing.T) {
	for _, kernel := range fixture.KernelImages(t) {
		t.Run(fixture.Release(kernel), func(t *testing.T) {
			root := fixture.Tree(t, map[string]string{
				"initrd":                      strings.Repeat("x", 3<<20), // a Go init's size
				"sys/kernel/kexec_crash_size": "33554432",                 // 32 MiB: more than the file, less than init_size
			})
			p, err := newPlan(kernel, filepath.Join(root, "initrd"), "", filepath.Join(root, "sys"), "amd64")
			if err != nil {
				t.Fatal(err)
			}
			if p.KernelMemory() < 2*uint64(p.KernelSize) {
				t.Errorf("KernelMemory %d for a %d-byte file", p.KernelMemory(), p.KernelSize)
			}
			if err := p.Check(); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Check() with 32 MiB = %v, want ErrTooLarge", err)
			}
			// Measured in QEMU: a Go init boots at crashkernel=76M on these
			// kernels, so the load itself must pass there.
			p.Reserved = 76 << 20
			if err := p.Check(); err != nil {
				t.Errorf("Check() with 76 MiB = %v", err)
			}
			if s := SuggestCrashkernel(p.Need()); s != "112M" {
				t.Errorf("SuggestCrashkernel = %s, want 112M (qemu-tests TestEstimate boots the capture at that size)", s)
			}
		})
	}
}

func TestNeedOddAlignment(t *testing.T) {
	for _, align := range []uint32{0, 3, 1 << 31, 4096, 1 << 20} {
		p := &Plan{KernelSize: 8192, Image: &BzImage{SetupSects: 3, InitSize: 10<<20 + 1, KernelAlignment: align}}
		need := p.Need()
		want := uint64(10<<20+4096) + segmentOverhead
		if align == 1<<20 {
			want = 11<<20 + segmentOverhead
		}
		if need != want {
			t.Errorf("alignment %#x: Need() = %d, want %d", align, need, want)
		}
	}
}

func TestSuggestCrashkernel(t *testing.T) {
	for need, want := range map[uint64]string{0: "48M", 1: "48M", 57 << 20: "112M", 64 << 20: "112M", 71 << 20: "112M", 72 << 20: "128M"} {
		if got := SuggestCrashkernel(need); got != want {
			t.Errorf("SuggestCrashkernel(%d) = %s, want %s", need, got, want)
		}
	}
}

func TestCheckCrashSupport(t *testing.T) {
	root := fixture.Tree(t, map[string]string{
		"with/kernel/kexec_crash_size": "0",
		"without/kernel/kexec_loaded":  "0",
	})
	if err := checkCrashSupport(filepath.Join(root, "with")); err != nil {
		t.Errorf("with: %v", err)
	}
	if err := checkCrashSupport(filepath.Join(root, "without")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("without: %v, want ErrUnsupported", err)
	}
	if err := checkCrashSupport(filepath.Join(root, "none")); err != nil {
		t.Errorf("no sysfs: %v", err)
	}
}

// An arm64 kernel, however the file wraps it, takes its image_size (bss
// included) of the reservation: read from the real Debian arm64 Images,
// and from gzip and EFI zboot wrappers of a real Image's first 64 KiB (the
// header is all the plan reads). A file of no known format counts its
// size, on a machine of any GOARCH and for an estimate; the machine's own
// loads refuse it.
func TestPlanArm64(t *testing.T) {
	images := fixture.KernelImagesOf(t, "arm64")
	real, err := os.ReadFile(images[0])
	if err != nil {
		t.Fatal(err)
	}
	imageSize := binary.LittleEndian.Uint64(real[arm64ImageSize:])
	prefix := real[:64<<10]
	type file struct {
		name string
		data []byte
		path string
	}
	files := []file{
		{"gzip", gzipped(prefix), ""},
		{"zboot gzip", zboot("gzip", gzipped(prefix)), ""},
		{"zboot zstd", zboot("zstd", zstded(prefix)), ""},
	}
	for _, p := range images {
		files = append(files, file{fixture.Release(p), nil, p})
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := f.path
			if path == "" {
				path = filepath.Join(t.TempDir(), "vmlinuz")
				if err := os.WriteFile(path, f.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := NewPlanAnyArch(path, "", "/nonexistent")
			if err != nil {
				t.Fatal(err)
			}
			if p.Arch != ArchARM64 || p.Arm64 == nil || p.Image != nil || p.Arm64.PageSize != 4<<10 {
				t.Fatalf("arch %q, arm64 header %+v, bzImage %v", p.Arch, p.Arm64, p.Image)
			}
			if f.path == "" && (p.KernelMemory() != alignUp(imageSize, pageSize) || p.Arm64.Compressed != f.name) {
				t.Errorf("KernelMemory %d, compressed %q; want image_size %d, %q", p.KernelMemory(), p.Arm64.Compressed, imageSize, f.name)
			}
			// The whole Image, as kexec_load's loader reads it, says the same.
			if f.path != "" {
				b, err := os.ReadFile(f.path)
				if err != nil {
					t.Fatal(err)
				}
				img, err := ParseArm64Image(b)
				if err != nil {
					t.Fatal(err)
				}
				if img.Arm64Header != *p.Arm64 || p.KernelMemory() <= uint64(p.KernelSize) {
					t.Errorf("header %+v, whole Image's %+v; KernelMemory %d for a %d-byte file", *p.Arm64, img.Arm64Header, p.KernelMemory(), p.KernelSize)
				}
			}
			// Aligned to the 2 MiB the loader places the kernel at.
			if want := alignUp(p.KernelMemory(), arm64KernelAlign) + segmentOverhead; p.Need() != want {
				t.Errorf("Need() = %d, want %d", p.Need(), want)
			}
			if _, err := newPlan(path, "", "", "/nonexistent", "arm64"); err != nil {
				t.Errorf("on arm64: %v", err)
			}
			if _, err := newPlan(path, "", "", "/nonexistent", "amd64"); !errors.Is(err, ErrNotKernel) || !strings.Contains(err.Error(), "an arm64 kernel; this machine loads x86_64 kernels") {
				t.Errorf("on amd64: err = %v", err)
			}
		})
	}

	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.gz")
	if err := os.WriteFile(cut, gzipped(prefix)[:40], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{junk, cut} {
		p, err := NewPlanAnyArch(path, "", "/nonexistent")
		if err != nil {
			t.Fatal(err)
		}
		if p.Arch != "" || p.KernelMemory() != alignUp(uint64(p.KernelSize), pageSize) {
			t.Errorf("%s: arch %q, KernelMemory %d for %d bytes", filepath.Base(path), p.Arch, p.KernelMemory(), p.KernelSize)
		}
		for goarch, want := range map[string]string{"amd64": "bzImage", "arm64": "no arm64 Image header"} {
			if _, err := newPlan(path, "", "", "/nonexistent", goarch); !errors.Is(err, ErrNotKernel) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s on %s: err = %v, want ErrNotKernel saying %q", filepath.Base(path), goarch, err, want)
			}
		}
	}
}

func TestGOARCHOf(t *testing.T) {
	for arch, want := range map[string]string{ArchX86_64: "amd64", ArchARM64: "arm64", "": "", "riscv64": ""} {
		if got := GOARCHOf(arch); got != want {
			t.Errorf("GOARCHOf(%q) = %q, want %q", arch, got, want)
		}
	}
}
