package elfcore

import (
	"bytes"
	"debug/elf"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestKernelSegmentsRealARM64: on QEMU's cores of Debian's arm64 kernels
// (physical addresses only), the image PT_LOADs KernelSegments adds are
// exactly the image's text-to-rodata and data-to-bss, as the debug
// vmlinux places them (the init sections between are unmapped after
// boot), and the RAM's direct-map address reads the same bytes through
// the page tables as through physical memory.
func TestKernelSegmentsRealARM64(t *testing.T) {
	for _, d := range fixture.RealDumpsOf(t, "arm64", fixture.ARM64Lines...) {
		t.Run(d.Name(), func(t *testing.T) {
			src := d.Open(t)
			sym := vmlinuxSymbols(t, d.NeedVMLinux(t), "_stext", "__init_begin", "_data", "_end")
			slide, ok := src.VMCOREINFO.KernelOffset()
			if !ok {
				t.Fatal("no KERNELOFFSET")
			}
			voff, _ := src.VMCOREINFO.Number("kimage_voffset")
			km := KernelSegments(src)
			if len(km.Warnings) > 0 || km.Image != 2 || km.Linear != len(src.Segments) {
				t.Fatalf("image %d, linear %d of %d, warnings %q", km.Image, km.Linear, len(src.Segments), km.Warnings)
			}
			for i, want := range [][2]uint64{{sym["_stext"], sym["__init_begin"]}, {sym["_data"], sym["_end"]}} {
				s := km.Segments[i]
				if s.VirtAddr != want[0]+slide || s.MemSize != want[1]-want[0] || s.PhysAddr != s.VirtAddr-uint64(voff) {
					t.Errorf("image PT_LOAD %d: %#x+%#x at physical %#x, want %#x+%#x", i, s.VirtAddr, s.MemSize, s.PhysAddr,
						want[0]+slide, want[1]-want[0])
				}
			}
			mem, err := kmem.New(src, src.VMCOREINFO, src.Machine)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range km.Segments[km.Image:] {
				for _, at := range []uint64{0, s.MemSize / 2, s.MemSize - 4096} {
					virt, phys := make([]byte, 4096), make([]byte, 4096)
					if _, err := mem.ReadVirt(virt, s.VirtAddr+at); err != nil {
						t.Fatal(err)
					}
					if _, err := src.ReadPhys(phys, s.PhysAddr+at); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(virt, phys) {
						t.Errorf("direct map %#x and physical %#x differ", s.VirtAddr+at, s.PhysAddr+at)
					}
				}
			}
			t.Logf("image %#x+%#x, %#x+%#x; RAM at %#x", km.Segments[0].VirtAddr, km.Segments[0].MemSize,
				km.Segments[1].VirtAddr, km.Segments[1].MemSize, km.Segments[2].VirtAddr)
			checkWrittenKernelMap(t, src, km)
		})
	}
}

// checkWrittenKernelMap saves src at a keep-set dropping most pages and
// checks that the image PT_LOADs come out whole.
func checkWrittenKernelMap(t *testing.T, src *vmcore.File, km KernelMap) {
	t.Helper()
	out := fixture.CreateFile(t, "dump.elf")
	keep := func(pfn uint64) bool { return pfn%64 == 0 }
	if _, err := Save(out, src, keep, Options{Segments: km.Segments}); err != nil {
		t.Fatal(err)
	}
	f, err := vmcore.Open(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range km.Image {
		got, want := f.Segments[i], km.Segments[i]
		if got.VirtAddr != want.VirtAddr || got.PhysAddr != want.PhysAddr || got.MemSize != want.MemSize || got.FileSize != want.MemSize {
			t.Errorf("written image PT_LOAD %+v, want %+v whole", got, want)
		}
	}
}

// vmlinuxSymbols returns the values of the named symbols of a vmlinux.
func vmlinuxSymbols(t *testing.T, path string, names ...string) map[string]uint64 {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, s := range syms {
		out[s.Name] = s.Value
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			t.Fatalf("%s: no symbol %s", path, n)
		}
	}
	return out
}
