package builder

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"
)

// TestInstalledInitPaths: the order the capture init is looked for, for
// the host's architecture and another: at each place the plain name (what
// make builds for the host) first, then the ARCH/ directory beside it
// (what make builds for the other architecture).
func TestInstalledInitPaths(t *testing.T) {
	for _, tt := range []struct {
		exe, arch string
		want      []string
	}{
		{"/opt/g/bin/gokdump", "arm64", []string{
			"/opt/g/bin/gokdump-init", "/opt/g/bin/arm64/gokdump-init",
			"/opt/g/lib/gokdump/init", "/opt/g/lib/gokdump/arm64/init",
			"/usr/lib/gokdump/init", "/usr/lib/gokdump/arm64/init"}},
		{"/usr/bin/gokdump", "amd64", []string{
			"/usr/bin/gokdump-init", "/usr/bin/amd64/gokdump-init",
			"/usr/lib/gokdump/init", "/usr/lib/gokdump/amd64/init",
			"/usr/lib/gokdump/init", "/usr/lib/gokdump/amd64/init"}},
		{"", "arm64", []string{"/usr/lib/gokdump/init", "/usr/lib/gokdump/arm64/init"}},
	} {
		if got := InstalledInitPaths(tt.exe, tt.arch); !slices.Equal(got, tt.want) {
			t.Errorf("InstalledInitPaths(%q, %s) =\n%q\nwant\n%q", tt.exe, tt.arch, got, tt.want)
		}
	}
	if got := InstalledPaths("/b/gokdump", "arm64", "gokdump-vmtest-init", "vmtest-init"); got[1] != "/b/arm64/gokdump-vmtest-init" ||
		got[3] != "/lib/gokdump/arm64/vmtest-init" || got[5] != "/usr/lib/gokdump/arm64/vmtest-init" {
		t.Errorf("InstalledPaths(vmtest-init) = %q", got)
	}
}

// TestFindInitArch: FindInit takes the first init of the asked machine in
// InstalledInitPaths order, and names each one of another machine it
// skipped when it finds none.
func TestFindInitArch(t *testing.T) {
	amd, arm := fakeELF(t, elf.EM_X86_64, false, nil), fakeELF(t, elf.EM_AARCH64, false, nil)
	for _, tt := range []struct {
		name  string
		files map[string][]byte // under the prefix
		arch  string
		want  string // found, under the prefix; "" for ErrNoInit
		skips []string
	}{
		{"host's beside", map[string][]byte{"bin/gokdump-init": amd, "bin/arm64/gokdump-init": arm}, "amd64", "bin/gokdump-init", nil},
		{"other's beside", map[string][]byte{"bin/gokdump-init": amd, "bin/arm64/gokdump-init": arm}, "arm64", "bin/arm64/gokdump-init", nil},
		{"arm64 host's bin", map[string][]byte{"bin/gokdump-init": arm, "bin/amd64/gokdump-init": amd}, "arm64", "bin/gokdump-init", nil},
		{"beside before lib", map[string][]byte{"bin/arm64/gokdump-init": arm, "lib/gokdump/init": arm}, "arm64", "bin/arm64/gokdump-init", nil},
		{"lib's arch dir", map[string][]byte{"bin/gokdump-init": amd, "lib/gokdump/init": amd, "lib/gokdump/arm64/init": arm}, "arm64", "lib/gokdump/arm64/init", nil},
		{"plain lib init of the arch", map[string][]byte{"lib/gokdump/init": arm, "lib/gokdump/arm64/init": arm}, "arm64", "lib/gokdump/init", nil},
		{"wrong machine in the arch dir", map[string][]byte{"bin/gokdump-init": amd, "bin/arm64/gokdump-init": amd}, "arm64", "",
			[]string{"bin/gokdump-init: not a usable capture init: built for EM_X86_64, want EM_AARCH64",
				"bin/arm64/gokdump-init: not a usable capture init: built for EM_X86_64"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat("/usr/lib/gokdump/init"); err == nil && tt.want == "" {
				t.Skip("/usr/lib/gokdump/init is installed on this machine")
			}
			prefix := t.TempDir()
			for p, b := range tt.files {
				writeFile(t, filepath.Join(prefix, p), string(b))
			}
			src, err := FindInit("", filepath.Join(prefix, "bin", "gokdump"), t.TempDir(), tt.arch, false)
			if tt.want != "" {
				if err != nil || src.Path != filepath.Join(prefix, tt.want) || src.How != "installed" {
					t.Errorf("got %+v, %v; want %s", src, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrNoInit) {
				t.Fatalf("err = %v, want ErrNoInit", err)
			}
			for _, s := range append(tt.skips, "bin/"+tt.arch+"/", "/usr/lib/gokdump/"+tt.arch+"/init") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not say %q:\n%v", s, err)
				}
			}
		})
	}
}

// elfModule is an ELF relocatable object header of machine m, as a .ko.
func elfModule(m elf.Machine) []byte {
	h := fakeELFHeader(m)
	return append(h, []byte("rest of a module")...)
}

func fakeELFHeader(m elf.Machine) []byte {
	b := make([]byte, 64)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS], b[elf.EI_DATA], b[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	b[16] = byte(elf.ET_REL)
	b[18], b[19] = byte(m), byte(m>>8)
	return b
}

func compressXZ(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	w, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func compressZstd(t *testing.T, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

func TestCheckModuleMachine(t *testing.T) {
	for _, tt := range []struct {
		name string
		data []byte
		arch string
		bad  bool
	}{
		{"m.ko", elfModule(elf.EM_AARCH64), "arm64", false},
		{"m.ko", elfModule(elf.EM_X86_64), "arm64", true},
		{"m.ko", elfModule(elf.EM_AARCH64), "amd64", true},
		{"m.ko.xz", compressXZ(t, elfModule(elf.EM_X86_64)), "arm64", true},
		{"m.ko.xz", compressXZ(t, elfModule(elf.EM_AARCH64)), "arm64", false},
		{"m.ko.zst", compressZstd(t, elfModule(elf.EM_X86_64)), "arm64", true},
		{"m.ko", elfModule(elf.EM_X86_64), "amd64", false},
		// Not ELF, or not what its suffix says: the kernel refuses it when
		// it is loaded; only a module of another machine is refused here.
		{"m.ko", []byte("fake"), "arm64", false},
		{"m.ko.xz", []byte("fake"), "arm64", false},
		// An architecture with no known machine is not checked.
		{"m.ko", elfModule(elf.EM_X86_64), "wasm", false},
	} {
		err := checkModuleMachine(tt.name, tt.data, tt.arch)
		if tt.bad != errors.Is(err, ErrModuleMachine) || (err != nil && !tt.bad) {
			t.Errorf("%s for %s: %v, want refused %v", tt.name, tt.arch, err, tt.bad)
		}
		if tt.bad && !strings.Contains(err.Error(), tt.arch) {
			t.Errorf("%s: %v does not name %s", tt.name, err, tt.arch)
		}
	}
}

func TestGenericModulesFor(t *testing.T) {
	arm, amd := GenericModulesFor("arm64"), GenericModulesFor("amd64")
	for _, m := range []string{"virtio_mmio", "ahci_platform", "nvme", "virtio_blk", "virtio_pci", "ahci", "sd_mod", "ext4"} {
		if !slices.Contains(arm, m) {
			t.Errorf("arm64 lacks %s", m)
		}
	}
	for _, m := range []string{"ata_piix", "vmw_pvscsi"} {
		if slices.Contains(arm, m) || !slices.Contains(amd, m) {
			t.Errorf("%s: PC-only, want it on amd64 only", m)
		}
	}
	if !slices.Equal(amd, GenericModules) {
		t.Errorf("amd64 = %q, want GenericModules", amd)
	}
}

// arm64Tree returns the modules tree of Debian's arm64 6.12 kernel in the
// cache, or calls fixture.Missing.
func arm64Tree(t *testing.T) string {
	t.Helper()
	return realTree(t, "6.12.*-cloud-arm64")
}

// TestBuildARM64Debian builds an arm64 image from Debian's arm64 6.12
// module tree with the generic arm64 drivers: virtio_blk and the rest are
// AArch64 objects, nvme and virtio_pci are built in, and the order loads
// each module after what modules.dep says it needs. The same build from
// the x86-64 tree is refused, naming the module and both machines.
func TestBuildARM64Debian(t *testing.T) {
	dir := arm64Tree(t)
	initBin := filepath.Join(t.TempDir(), "init")
	writeFile(t, initBin, string(fakeELF(t, elf.EM_AARCH64, false, []byte("code"))))
	var img bytes.Buffer
	res, err := Build(context.Background(), &img, Options{Init: initBin, Arch: "arm64", ModulesDir: dir,
		OptionalModules: GenericModulesFor("arm64"), Compress: CompressNone})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"virtio_blk", "virtio_mmio", "ahci_platform", "sd_mod", "xfs"} {
		if !slices.Contains(res.Modules, m) {
			t.Errorf("modules %q lack %s", res.Modules, m)
		}
	}
	for _, m := range []string{"nvme", "virtio_pci", "ext4"} {
		if !slices.Contains(res.Builtin, m) {
			t.Errorf("built in %q lacks %s", res.Builtin, m)
		}
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(img.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, r := range recs {
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			b, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			files["/"+r.Name] = b
		}
	}
	if len(res.ModulePaths) == 0 {
		t.Fatal("no module packed")
	}
	for _, p := range res.ModulePaths {
		b, ok := files[p]
		if !ok {
			t.Errorf("%s not in the archive", p)
			continue
		}
		raw, err := decompressModule(p, b)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.NewFile(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_REL {
			t.Errorf("%s: %v %v, want an AArch64 relocatable", p, f.Machine, f.Type)
		}
	}
	if !slices.ContainsFunc(res.ModulePaths, func(p string) bool { return strings.HasSuffix(p, "/virtio_blk.ko.xz") }) {
		t.Errorf("no virtio_blk.ko.xz in %q", res.ModulePaths)
	}
	fixture.CheckModulesDepOrder(t, res.Modules, dir)

	amd := realTree(t, "6.12.*-cloud-amd64")
	_, err = Build(context.Background(), io.Discard, Options{Init: initBin, Arch: "arm64", ModulesDir: amd,
		Modules: []string{"virtio_blk"}})
	if !errors.Is(err, ErrModuleMachine) || !strings.Contains(err.Error(), "EM_X86_64") || !strings.Contains(err.Error(), "virtio_blk") {
		t.Errorf("arm64 image from the x86-64 tree: %v, want ErrModuleMachine naming virtio_blk and EM_X86_64", err)
	}
}
