package builder

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// fakeKO returns a relocatable ELF object with a .modinfo section holding
// the NUL-separated key=value strings, as modpost writes them, and a
// .text of pad bytes.
func fakeKO(modinfo []string, pad int) []byte {
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	text := bytes.Repeat([]byte{0x90}, pad)
	shstr := []byte("\x00.text\x00.modinfo\x00.shstrtab\x00")
	off := uint64(64)
	textOff := off
	infoOff := textOff + uint64(len(text))
	strOff := infoOff + uint64(len(info))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: 64, Shentsize: 64, Shnum: 4, Shstrndx: 3,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(text)
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, shOff-uint64(b.Len())))
	for _, sh := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), Off: textOff, Size: uint64(len(text)), Addralign: 16},
		{Name: 7, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 16, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, sh)
	}
	return b.Bytes()
}

// compressKO compresses a module as its suffix says.
func compressKO(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch {
	case strings.HasSuffix(name, ".xz"):
		w, err := xz.WriterConfig{DictCap: 1 << 20, CheckSum: xz.CRC32}.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case strings.HasSuffix(name, ".zst"):
		w, _ := zstd.NewWriter(&b)
		w.Write(data)
		w.Close()
	case strings.HasSuffix(name, ".gz"):
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	default:
		return data
	}
	return b.Bytes()
}

func TestReadModInfo(t *testing.T) {
	info := []string{
		"alias=pci:v00001AF4d00001001sv*sd*bc*sc*i*",
		"alias=virtio:d00000002v*",
		"depends=virtio,virtio-ring",
		"softdep=pre: crc32c post: nothing",
		"retpoline=Y",
		"name=virtio-blk",
		"vermagic=6.1.0 SMP mod_unload ",
	}
	want := &ModInfo{
		Name:    "virtio_blk",
		Depends: []string{"virtio", "virtio_ring"},
		SoftPre: []string{"crc32c"},
		Aliases: []string{"pci:v00001AF4d00001001sv*sd*bc*sc*i*", "virtio:d00000002v*"},
	}
	dir := t.TempDir()
	for _, ext := range moduleExts {
		t.Run(ext, func(t *testing.T) {
			name := filepath.Join(dir, "virtio_blk"+ext)
			// Big enough that a window smaller than the data would show.
			if err := os.WriteFile(name, compressKO(t, ext, fakeKO(info, 3<<20)), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadModInfo(name)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != want.Name || !slices.Equal(got.Depends, want.Depends) ||
				!slices.Equal(got.SoftPre, want.SoftPre) || !slices.Equal(got.Aliases, want.Aliases) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestReadModInfoBad(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"notelf.ko": []byte("module text"),
		"noinfo.ko": bytes.Replace(fakeKO(nil, 0), []byte(".modinfo"), []byte(".modinfX"), 1),
		"truncated.ko.xz": func() []byte {
			b := compressKO(t, ".xz", fakeKO([]string{"depends="}, 1<<16))
			return b[:len(b)/2]
		}(),
		"garbage.ko.zst": []byte("\x28\xb5\x2f\xfd garbage"),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if mi, err := ReadModInfo(p); err == nil {
			t.Errorf("%s: read %+v, want an error", name, mi)
		}
	}
}

func TestXZSize(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 3<<20 + 5} {
		b := compressKO(t, ".xz", bytes.Repeat([]byte("k"), n))
		got, ok := xzSize(b)
		if !ok || got != uint64(n) {
			t.Errorf("%d bytes: xzSize = %d, %v", n, got, ok)
		}
		if _, ok := xzSize(b[:len(b)-1]); ok {
			t.Errorf("%d bytes: truncated file has a size", n)
		}
	}
	if _, ok := xzSize([]byte("short")); ok {
		t.Error("5 bytes have a size")
	}
}

// modinfoTree writes a /lib/modules/KVER tree as a package unpacks it: the
// module files and modules.builtin(.modinfo), no depmod output. It mirrors
// fakeTree (modules_test.go), so both ways of reading a tree must agree.
func modinfoTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test-amd64")
	mods := map[string][]string{
		"kernel/drivers/block/blk-a.ko.xz":  {"depends=core_b,ring", "softdep=pre: c32_generic", "name=blk_a"},
		"kernel/drivers/core/core_b.ko":     {"depends=ring", "name=core_b"},
		"kernel/drivers/core/ring.ko.zst":   {"depends=", "name=ring"},
		"kernel/drivers/pci_x.ko":           {"depends=core_b,ring", "alias=pci:v00001AF4d*", "softdep=", "name=pci_x"},
		"kernel/fs/fsx.ko.gz":               {"depends=libc32", "softdep=pre: c32 post: pci_x", "name=fsx"},
		"kernel/lib/libc32.ko":              {"depends=", "softdep=pre: crypto-c32 missing-thing", "name=libc32"},
		"kernel/crypto/c32-fast.ko":         {"alias=c32", "alias=crypto-c32", "depends=", "name=c32_fast"},
		"kernel/drivers/misc/unrelated.ko":  {"depends=", "name=unrelated"},
		"updates/drivers/misc/unrelated.ko": {"depends=ring", "name=unrelated"},
	}
	for p, info := range mods {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), compressKO(t, p, fakeKO(info, 64)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "modules.builtin"), fakeTree["modules.builtin"])
	writeFile(t, filepath.Join(dir, "modules.builtin.modinfo"), fakeTree["modules.builtin.modinfo"])
	writeFile(t, filepath.Join(dir, "modules.order"), "kernel/drivers/core/core_b.ko\n")
	return dir
}

func TestResolveModulesWithoutDepmod(t *testing.T) {
	dep := writeTree(t, fakeTree)
	mi := modinfoTree(t)
	for _, names := range [][]string{
		{"blk-a"},
		{"fsx"},
		{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"},
		{"fsx", "blk_a", "pci_x", "ext4", "c32"},
	} {
		want, err := ResolveModules(dep, names)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ResolveModules(mi, names)
		if err != nil {
			t.Fatalf("%q: %v", names, err)
		}
		if !slices.Equal(got.Paths(), want.Paths()) || !slices.Equal(got.Builtin, want.Builtin) {
			t.Errorf("%q: without depmod %q builtin %q; with %q builtin %q", names, got.Paths(), got.Builtin, want.Paths(), want.Builtin)
		}
		if len(got.Notes) == 0 || !strings.Contains(got.Notes[0], "no modules.dep") {
			t.Errorf("%q: notes %q lack the depmod note", names, got.Notes)
		}
		if !slices.Equal(got.Notes[1:], want.Notes) {
			t.Errorf("%q: notes %q, want %q after the depmod note", names, got.Notes[1:], want.Notes)
		}
	}
	// updates/ wins over kernel/, as with depmod's default search order.
	s, err := ResolveModules(mi, []string{"unrelated"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/drivers/core/ring.ko.zst", "updates/drivers/misc/unrelated.ko"}; !slices.Equal(s.Paths(), want) {
		t.Errorf("updates: %q, want %q", s.Paths(), want)
	}
	if _, err := ResolveModules(mi, []string{"nosuch"}); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("missing module: %v", err)
	}
}

func TestResolveModulesWithoutDepmodBad(t *testing.T) {
	mi := modinfoTree(t)
	// A module that depends on one the tree lacks.
	if err := os.WriteFile(filepath.Join(mi, "kernel/drivers/core/core_b.ko"),
		fakeKO([]string{"depends=ring,gone"}, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveModules(mi, []string{"core_b"}); !errors.Is(err, ErrBadModuleIndex) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("missing dependency: %v", err)
	}
	// A directory with neither modules.dep nor modules says what it lacks.
	if _, err := ResolveModules(t.TempDir(), []string{"x"}); !errors.Is(err, ErrNoModulesDep) {
		t.Errorf("empty directory: %v", err)
	}
}

func TestResolveModuleSetOptional(t *testing.T) {
	dir := writeTree(t, fakeTree)
	s, err := ResolveModuleSet(dir, []string{"blk_a"}, []string{"fsx", "nosuch", "ext4", "blk_a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ring", "core_b", "blk_a", "c32_fast", "libc32", "fsx"}; !slices.Equal(s.Names(), want) {
		t.Errorf("modules %q, want %q", s.Names(), want)
	}
	if !slices.Equal(s.Missing, []string{"nosuch"}) || !slices.Equal(s.Builtin, []string{"ext4"}) {
		t.Errorf("missing %q builtin %q", s.Missing, s.Builtin)
	}
	// A required name stays required when it is optional too.
	if _, err := ResolveModuleSet(dir, []string{"nosuch"}, []string{"nosuch"}); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("required and optional: %v", err)
	}
}
