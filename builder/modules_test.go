package builder

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// fakeTree is a small /lib/modules/KVER tree: a block driver with a
// two-level dependency chain, a transport that shares it, a filesystem with
// a soft dependency reached through an alias, built-in code, and every
// module suffix.
var fakeTree = map[string]string{
	"modules.dep": `kernel/drivers/block/blk-a.ko.xz: kernel/drivers/core/core_b.ko kernel/drivers/core/ring.ko.zst
kernel/drivers/core/core_b.ko: kernel/drivers/core/ring.ko.zst
kernel/drivers/core/ring.ko.zst:
kernel/drivers/pci_x.ko: kernel/drivers/core/core_b.ko kernel/drivers/core/ring.ko.zst
kernel/fs/fsx.ko.gz: kernel/lib/libc32.ko
kernel/lib/libc32.ko:
kernel/crypto/c32-fast.ko:
`,
	"modules.builtin": "kernel/fs/ext4/ext4.ko\nkernel/crypto/c32_generic.ko\n",
	"modules.softdep": `# Soft dependencies extracted from modules themselves.
softdep fsx pre: c32 post: pci_x
softdep libc32 pre: crypto-c32 missing-thing
softdep blk_a pre: c32_generic
`,
	"modules.alias": `alias c32 c32_fast
alias crypto-c32 c32_fast
alias pci:v00001AF4d* pci_x
alias gone not_in_dep
`,
	"modules.builtin.modinfo": "c32_generic.alias=c32\x00c32_generic.alias=crypto-c32\x00c32_generic.license=GPL\x00c32_generic.alias=c32-only-builtin\x00ext4.softdep=pre: crypto-c32\x00",
}

// writeTree writes files (path → content) under a new KVER directory and
// adds a file for every module modules.dep names.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test-amd64")
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
		if name != "modules.dep" {
			continue
		}
		for _, line := range strings.Split(content, "\n") {
			for _, f := range strings.Fields(strings.Replace(line, ":", " ", 1)) {
				p := filepath.Join(dir, f)
				if _, err := os.Stat(p); err != nil && filepath.IsLocal(f) {
					writeFile(t, p, "module "+f)
				}
			}
		}
	}
	return dir
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveModules(t *testing.T) {
	dir := writeTree(t, fakeTree)
	for _, tt := range []struct {
		name    string
		modules []string
		want    []string // names in load order
		builtin []string
		notes   []string
	}{
		{
			name:    "chain",
			modules: []string{"blk-a"},
			want:    []string{"ring", "core_b", "blk_a"},
			notes:   []string{"blk_a: soft dependency c32_generic is built in (c32_generic)"},
		},
		{
			name:    "shared deps once, comma list and repeats",
			modules: []string{"pci-x,blk_a", "blk_a"},
			want:    []string{"ring", "core_b", "blk_a", "pci_x"},
			notes:   []string{"blk_a: soft dependency c32_generic is built in (c32_generic)"},
		},
		{
			name:    "builtin skipped",
			modules: []string{"ext4"},
			builtin: []string{"ext4"},
		},
		{
			name:    "builtin alias skipped",
			modules: []string{"crypto-c32", "ext4", "fsx"},
			// crypto-c32 names a loadable module through modules.alias, which
			// wins over the built-in alias as in modprobe.
			want:    []string{"c32_fast", "libc32", "fsx"},
			builtin: []string{"ext4"},
			notes:   []string{"libc32: soft dependency missing_thing not found, skipped"},
		},
		{
			name:    "alias of built-in code only",
			modules: []string{"c32-only-builtin"},
			builtin: []string{"c32_only_builtin"},
		},
		{
			name:    "softdep pre through alias, post ignored",
			modules: []string{"fsx"},
			want:    []string{"c32_fast", "libc32", "fsx"},
			notes:   []string{"libc32: soft dependency missing_thing not found, skipped"},
		},
		{
			name:    "glob alias",
			modules: []string{"pci:v00001AF4d00001001"},
			want:    []string{"ring", "core_b", "pci_x"},
		},
		{
			name:    "suffix and spaces",
			modules: []string{" ring.ko ,"},
			want:    []string{"ring"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ResolveModules(dir, tt.modules)
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Names(); !slices.Equal(got, tt.want) {
				t.Errorf("modules = %q, want %q", got, tt.want)
			}
			if !slices.Equal(set.Builtin, tt.builtin) {
				t.Errorf("builtin = %q, want %q", set.Builtin, tt.builtin)
			}
			if !slices.Equal(set.Notes, tt.notes) {
				t.Errorf("notes = %q, want %q", set.Notes, tt.notes)
			}
			if set.Release != "6.1.0-test-amd64" {
				t.Errorf("release = %q", set.Release)
			}
			assertLoadOrder(t, set)
		})
	}
}

// assertLoadOrder checks every module comes after its dependencies and
// packed soft dependencies, and that paths keep their suffixes.
func assertLoadOrder(t *testing.T, set *ModuleSet) {
	t.Helper()
	pos := map[string]int{}
	for i, m := range set.Modules {
		if _, dup := pos[m.Name]; dup {
			t.Errorf("%s listed twice", m.Name)
		}
		pos[m.Name] = i
		if moduleName(m.Path) != m.Name {
			t.Errorf("%s has path %s", m.Name, m.Path)
		}
	}
	for i, m := range set.Modules {
		for _, d := range append(slices.Clone(m.Deps), m.Pre...) {
			if j, ok := pos[d]; !ok || j > i {
				t.Errorf("%s (at %d) needs %s (at %d, present %v)", m.Name, i, d, j, ok)
			}
		}
	}
}

func TestResolveModulesOrderIndependent(t *testing.T) {
	dir := writeTree(t, fakeTree)
	a, err := ResolveModules(dir, []string{"pci_x", "fsx", "blk_a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ResolveModules(dir, []string{"blk_a,fsx", "pci_x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Paths(), b.Paths()) {
		t.Errorf("order depends on argument order: %q vs %q", a.Paths(), b.Paths())
	}
}

func TestResolveModulesErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   map[string]string
		modules []string
		is      error
		msg     []string // substrings the error must have
	}{
		{
			name:    "missing names all listed",
			files:   fakeTree,
			modules: []string{"nosuch", "blk_a", "other-one"},
			is:      ErrModuleNotFound,
			msg:     []string{"nosuch", "other_one"},
		},
		{
			name:    "alias to a module without a file",
			files:   fakeTree,
			modules: []string{"gone"},
			is:      ErrModuleNotFound,
			msg:     []string{"gone"},
		},
		{
			name:  "no modules.dep",
			files: map[string]string{"modules.builtin": ""},
			is:    ErrNoModulesDep,
			msg:   []string{"depmod"},
		},
		{
			name:    "path escapes the tree",
			files:   map[string]string{"modules.dep": "kernel/a.ko: ../../../etc/shadow.ko\n"},
			modules: []string{"a"},
			is:      ErrBadModuleIndex,
			msg:     []string{"line 1", "shadow"},
		},
		{
			name:    "absolute path",
			files:   map[string]string{"modules.dep": "/lib/modules/x/a.ko:\n"},
			modules: []string{"a"},
			is:      ErrBadModuleIndex,
		},
		{
			name:    "not a module file",
			files:   map[string]string{"modules.dep": "kernel/a.ko: kernel/b.so\n"},
			modules: []string{"a"},
			is:      ErrBadModuleIndex,
		},
		{
			name:    "no colon",
			files:   map[string]string{"modules.dep": "kernel/a.ko\n"},
			modules: []string{"a"},
			is:      ErrBadModuleIndex,
		},
		{
			name:    "cycle",
			files:   map[string]string{"modules.dep": "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko: kernel/a.ko\n"},
			modules: []string{"a"},
			is:      ErrBadModuleIndex,
			msg:     []string{"a → b → c → a"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			_, err := ResolveModules(dir, tt.modules)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
}

func TestResolveModulesMissingFile(t *testing.T) {
	dir := writeTree(t, fakeTree)
	if err := os.Remove(filepath.Join(dir, "kernel/drivers/core/ring.ko.zst")); err != nil {
		t.Fatal(err)
	}
	_, err := ResolveModules(dir, []string{"blk_a"})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "ring") {
		t.Fatalf("err = %v, want a missing ring module", err)
	}
}

func TestResolveModulesSoftdepLoop(t *testing.T) {
	// b wants a loaded first, but b needs a only through a soft
	// dependency while a links against b: b must come first, and the
	// soft dependency is dropped with a note rather than failing.
	dir := writeTree(t, map[string]string{
		"modules.dep":     "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n",
		"modules.softdep": "softdep b pre: a\n",
	})
	set, err := ResolveModules(dir, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("modules = %q", got)
	}
	if len(set.Notes) != 1 || !strings.Contains(set.Notes[0], "skipped") {
		t.Errorf("notes = %q", set.Notes)
	}
}

func TestSplitModuleNames(t *testing.T) {
	got := SplitModuleNames([]string{"virtio-blk,virtio_pci", " ext4 ", "", "virtio_blk", "a,,b.ko"})
	want := []string{"a", "b", "ext4", "virtio_blk", "virtio_pci"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNormalizeAlias(t *testing.T) {
	for in, want := range map[string]string{
		"crypto-crc32c":        "crypto_crc32c",
		"pci:v*d*sv*[0-9A-F]-": "pci:v*d*sv*[0-9A-F]_",
		"plain":                "plain",
	} {
		if got := normalizeAlias(in); got != want {
			t.Errorf("normalizeAlias(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/arch/x86/crypto/crc32c-intel.ko": "crc32c_intel",
		"kernel/drivers/block/virtio_blk.ko.xz":  "virtio_blk",
		"a/b.ko.zst":                             "b",
		"a/b.ko.gz":                              "b",
		"a/b.ko.bz2":                             "",
		"a/.ko":                                  "",
		"modules.dep":                            "",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

// realTree returns the last unpacked Debian kernel tree in the cache
// matching the release glob, or calls fixture.Missing.
func realTree(t *testing.T, glob string) string {
	t.Helper()
	cache := fixture.CacheDir(t)
	m, _ := filepath.Glob(filepath.Join(cache, "kernels", glob, "root", "lib", "modules", glob))
	if len(m) == 0 {
		fixture.Missing(t, "no unpacked kernel matching %s in %s: scripts/fetch-kernel unpacks them, as `make qemu-test` does",
			glob, filepath.Join(cache, "kernels"))
	}
	return m[len(m)-1]
}

func TestResolveModulesDebian61(t *testing.T) {
	dir := realTree(t, "6.1.*-cloud-amd64")
	set, err := ResolveModules(dir, []string{"virtio_blk", "virtio_pci"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_blk", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring"}
	got := slices.Sorted(slices.Values(set.Names()))
	if !slices.Equal(got, want) {
		t.Errorf("modules = %q, want exactly %q", set.Names(), want)
	}
	if len(set.Builtin) != 0 {
		t.Errorf("builtin = %q", set.Builtin)
	}
	assertLoadOrder(t, set)

	// virtio_blk alone links against virtio and virtio_ring only: the PCI
	// transport is not a modules.dep dependency and must be named.
	set, err = ResolveModules(dir, []string{"virtio-blk"})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); !slices.Equal(got, []string{"virtio_ring", "virtio", "virtio_blk"}) {
		t.Errorf("virtio_blk alone = %q", got)
	}

	// ext4 is built in; libcrc32c softdep-pulls crc32c, an alias of
	// crc32c_intel.
	set, err = ResolveModules(dir, []string{"ext4", "libcrc32c"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.Builtin, []string{"ext4"}) || !slices.Equal(set.Names(), []string{"crc32c_intel", "libcrc32c"}) {
		t.Errorf("ext4,libcrc32c: modules %q builtin %q", set.Names(), set.Builtin)
	}
}

func TestResolveModulesDebian612(t *testing.T) {
	dir := realTree(t, "6.12.*-cloud-amd64")
	set, err := ResolveModules(dir, []string{"virtio_blk", "virtio_pci"})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Paths(); !slices.Equal(got, []string{"kernel/drivers/block/virtio_blk.ko.xz"}) {
		t.Errorf("paths = %q, want only virtio_blk.ko.xz", got)
	}
	if !slices.Equal(set.Builtin, []string{"virtio_pci"}) {
		t.Errorf("builtin = %q", set.Builtin)
	}
	if _, err := ResolveModules(dir, []string{"no_such_module_xyz"}); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("missing module: err = %v", err)
	}
}
