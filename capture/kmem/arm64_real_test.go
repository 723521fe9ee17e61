package kmem

import (
	"bytes"
	"debug/elf"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestTranslateARM64Real walks the page tables of real arm64 dumps: the
// linear map of every PT_LOAD and the kernel image must translate to where
// the dump says they are, and symbols of the debug vmlinux (moved by
// KERNELOFFSET) must hold what the kernel put there.
func TestTranslateARM64Real(t *testing.T) {
	dumps := fixture.RealDumpsOf(t, "arm64", fixture.ARM64Lines...)
	if !slices.ContainsFunc(dumps, func(d fixture.Dump) bool { return strings.Contains(d.CPU, "lpa2=off") }) {
		fixture.Missing(t, "no real arm64 vmcore of a 52-bit kernel run with 48-bit addresses: "+
			"`go run ./qemu-tests/qmpdump -arch arm64 -line 6.12 -cpu max,lpa2=off,pauth-impdef=on` makes one")
	}
	for _, d := range dumps {
		t.Run(d.Name(), func(t *testing.T) { testTranslateARM64Real(t, d) })
	}
}

func testTranslateARM64Real(t *testing.T, d fixture.Dump) {
	f := d.Open(t)
	m, err := New(f, f.VMCOREINFO, f.Machine)
	if err != nil {
		t.Fatal(err)
	}
	a := m.tr.(*arm64)
	t.Logf("%d-bit addresses, %d levels, %d KiB pages, swapper_pg_dir at %#x", a.vaBits, a.levels, 1<<a.pageShift>>10, a.pgd)
	// What the kernel ran with: 52 bits and 5 levels where it was built
	// for 52 and the CPU has LPA2 (QEMU's max, unless lpa2=off), else 48
	// bits and 4 levels.
	built, _ := f.VMCOREINFO.Number("VA_BITS")
	want := uint(48)
	if built == 52 && !strings.Contains(d.CPU, "lpa2=off") {
		want = 52
	}
	if t1sz, _ := f.VMCOREINFO.Number("TCR_EL1_T1SZ"); a.vaBits != want || a.levels != int(want-12+8)/9 || t1sz != int64(64-want) {
		t.Errorf("vaBits %d, levels %d, T1SZ %d: want %d bits", a.vaBits, a.levels, t1sz, want)
	}
	linear := arm64Linear(t, f)
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range f.Segments {
		// QEMU's dumps carry physical addresses only (p_vaddr is
		// p_paddr).
		base := s.VirtAddr
		if d.Source == fixture.SourceQMP {
			base = linear(s.PhysAddr)
		}
		invalid := 0
		for range 2000 {
			off := r.Uint64N(s.MemSize) &^ 7
			pa, n, err := m.Translate(base + off)
			if errors.Is(err, ErrNotMapped) {
				// A linear-map alias Linux took out (of
				// vmalloc'd code, secretmem): the entry is
				// invalid but still names the page.
				e, level, _ := a.walk(base + off)
				if level != 1 || e&1 != 0 || a.output(e) != (s.PhysAddr+off)&^0xfff {
					t.Fatalf("translate %#x: %v", base+off, err)
				}
				invalid++
				continue
			}
			if err != nil {
				t.Fatalf("translate %#x: %v", base+off, err)
			}
			if pa != s.PhysAddr+off {
				t.Fatalf("translate %#x = %#x, want %#x", base+off, pa, s.PhysAddr+off)
			}
			if n == 0 || n > 1<<30 {
				t.Fatalf("translate %#x: contiguous %d", base+off, n)
			}
		}
		if invalid > 40 {
			t.Errorf("%d of 2000 linear addresses not mapped", invalid)
		}
		t.Logf("PT_LOAD %#x-%#x: %d of 2000 addresses in invalidated linear-map pages", s.PhysAddr, s.PhysAddr+s.MemSize, invalid)
	}
	// The kernel image: its physical address is va - kimage_voffset.
	voff, _ := f.VMCOREINFO.Number("kimage_voffset")
	for _, sym := range []string{"_stext", "init_uts_ns", "swapper_pg_dir"} {
		va, ok := f.VMCOREINFO.Symbol(sym)
		if !ok {
			t.Fatalf("no SYMBOL(%s)", sym)
		}
		if pa, _, err := m.Translate(va); err != nil || pa != va-uint64(voff) {
			t.Errorf("%s: translate %#x = %#x, %v; want %#x", sym, va, pa, err, va-uint64(voff))
		}
	}
	uts, err := m.ReadUTSName()
	if err != nil {
		t.Fatal(err)
	}
	if uts.Sysname != "Linux" || uts.Machine != "aarch64" || uts.Release != f.VMCOREINFO.OSRelease() || !strings.HasPrefix(uts.Version, "#1 SMP") {
		t.Errorf("utsname %+v", uts)
	}
	for _, va := range []uint64{0, 0x0000800000000000, -(uint64(1) << a.vaBits) - 1} {
		if _, _, err := m.Translate(va); !errors.Is(err, ErrNotMapped) {
			t.Errorf("translate %#x (not a kernel address): %v", va, err)
		}
	}
	checkVMLinuxARM64(t, d, m)
}

// checkVMLinuxARM64 reads through the walk what the debug vmlinux says the
// kernel image holds: linux_banner (not in VMCOREINFO) names the release,
// and init_uts_ns is where VMCOREINFO says, once moved by KERNELOFFSET.
func checkVMLinuxARM64(t *testing.T, d fixture.Dump, m *Memory) {
	path := d.NeedVMLinux(t)
	if path == "" {
		return
	}
	v, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	syms, err := v.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	kaslr, _ := m.Info.KernelOffset()
	addr := map[string]uint64{}
	for _, s := range syms {
		switch s.Name {
		case "linux_banner", "init_uts_ns", "swapper_pg_dir":
			addr[s.Name] = s.Value + kaslr
		}
	}
	for _, name := range []string{"init_uts_ns", "swapper_pg_dir"} {
		if got, _ := m.Info.Symbol(name); got != addr[name] {
			t.Errorf("vmlinux %s + KERNELOFFSET = %#x, VMCOREINFO says %#x", name, addr[name], got)
		}
	}
	b := make([]byte, 256)
	if _, err := m.ReadVirt(b, addr["linux_banner"]); err != nil {
		t.Fatalf("read linux_banner at %#x: %v", addr["linux_banner"], err)
	}
	banner := string(b[:max(0, bytes.IndexByte(b, 0))])
	if !strings.HasPrefix(banner, "Linux version "+m.Info.OSRelease()+" ") {
		t.Errorf("linux_banner %q", banner)
	}
	t.Logf("linux_banner: %.80s", banner)
}

// arm64Linear returns the linear-map address of a physical address, as the
// kernel's __phys_to_virt computes it: PAGE_OFFSET is -(1 << VA_BITS), the
// size the kernel was built for (a 52-bit kernel running with 48 bits
// moves PHYS_OFFSET instead).
func arm64Linear(t *testing.T, f *vmcore.File) func(pa uint64) uint64 {
	t.Helper()
	va, ok := f.VMCOREINFO.Number("VA_BITS")
	if !ok {
		t.Fatal("no NUMBER(VA_BITS)")
	}
	physOffset, ok := f.VMCOREINFO.Number("PHYS_OFFSET")
	if !ok {
		t.Fatal("no NUMBER(PHYS_OFFSET)")
	}
	pageOffset := -(uint64(1) << va)
	return func(pa uint64) uint64 { return (pa - uint64(physOffset)) | pageOffset }
}
