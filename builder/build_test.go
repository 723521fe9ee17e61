package builder

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fakeELF returns a minimal ELF64 executable for machine whose body is
// payload; with interp it has a PT_INTERP as a dynamically linked program
// does.
func fakeELF(t testing.TB, machine elf.Machine, interp bool, payload []byte) []byte {
	t.Helper()
	phnum := 1
	if interp {
		phnum = 2
	}
	hdr := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     0x401000,
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     uint16(phnum),
		Shentsize: 64,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, hdr)
	off := uint64(64 + 56*phnum)
	size := uint64(len(payload))
	binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Off: off, Vaddr: 0x401000, Paddr: 0x401000, Filesz: size, Memsz: size, Align: 0x1000})
	if interp {
		binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R),
			Off: off, Filesz: 1, Memsz: 1, Align: 1})
	}
	b.Write(payload)
	return b.Bytes()
}

// writeInit writes a fake static amd64 init of about size bytes whose
// body is incompressible, the worst case for the image size.
func writeInit(t testing.TB, dir string, size int, seed uint64) string {
	t.Helper()
	payload := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, "gokdump-init")
	if err := os.WriteFile(p, fakeELF(t, elf.EM_X86_64, false, payload), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseOptions is an image with a small init, a config and modules of the
// fake tree.
func baseOptions(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Init:         writeInit(t, dir, 4096, 1),
		Arch:         "amd64",
		Executable:   filepath.Join(dir, "nowhere", "gokdump"),
		Dir:          dir,
		Config:       []byte("[dump]\nlevel = 31\n"),
		ConfigSource: "/etc/gokdump.toml",
		ModulesDir:   writeTree(t, fakeTree),
		Modules:      []string{"fsx", "blk_a"},
	}
}

func build(t *testing.T, opts Options) ([]byte, *Result) {
	t.Helper()
	var b bytes.Buffer
	res, err := Build(context.Background(), &b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(b.Len()) {
		t.Errorf("Result.Size = %d, wrote %d", res.Size, b.Len())
	}
	return b.Bytes(), res
}

func readRecords(t *testing.T, archive []byte) []cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestBuildContents(t *testing.T) {
	opts := baseOptions(t)
	opts.Compress = CompressNone
	archive, res := build(t, opts)
	if res.CPIOSize != int64(len(archive)) {
		t.Errorf("CPIOSize = %d, archive is %d bytes", res.CPIOSize, len(archive))
	}
	initData, err := os.ReadFile(opts.Init)
	if err != nil {
		t.Fatal(err)
	}
	const kver = "/lib/modules/6.1.0-test-amd64/"
	// Named modules are taken in name order (blk_a before fsx), each after
	// what it needs.
	wantMods := []string{
		kver + "kernel/drivers/core/ring.ko.zst",
		kver + "kernel/drivers/core/core_b.ko",
		kver + "kernel/drivers/block/blk-a.ko.xz",
		kver + "kernel/crypto/c32-fast.ko",
		kver + "kernel/lib/libc32.ko",
		kver + "kernel/fs/fsx.ko.gz",
	}
	if !slices.Equal(res.ModulePaths, wantMods) {
		t.Errorf("module paths = %q, want %q", res.ModulePaths, wantMods)
	}
	if want := []string{"ring", "core_b", "blk_a", "c32_fast", "libc32", "fsx"}; !slices.Equal(res.Modules, want) {
		t.Errorf("modules = %q, want %q", res.Modules, want)
	}

	recs := readRecords(t, archive)
	var names []string
	inos := map[uint64]bool{}
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		names = append(names, "/"+r.Name)
		byName["/"+r.Name] = r
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want all 0", r.Name, r.MTime, r.UID, r.GID)
		}
		if r.Ino == 0 || inos[r.Ino] {
			t.Errorf("%s: inode %d is zero or reused", r.Name, r.Ino)
		}
		inos[r.Ino] = true
		wantLinks := uint64(1)
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			wantLinks = 2
		}
		if r.NLink != wantLinks {
			t.Errorf("%s: nlink %d, want %d", r.Name, r.NLink, wantLinks)
		}
	}
	if !slices.IsSorted(names) || !slices.Equal(names, res.Files) {
		t.Errorf("archive order %q, Result.Files %q", names, res.Files)
	}
	// Every parent precedes its children: the kernel creates nothing itself.
	seen := map[string]bool{"/": true}
	for _, n := range names {
		if !seen[filepath.Dir(n)] {
			t.Errorf("%s comes before its directory", n)
		}
		seen[n] = true
	}

	for _, c := range []struct {
		name string
		mode uint64
		data []byte
	}{
		{"/init", cpio.S_IFREG | 0o755, initData},
		{"/etc/gokdump.toml", cpio.S_IFREG | 0o600, opts.Config},
		{"/etc/gokdump.modules", cpio.S_IFREG | 0o644, []byte(strings.Join(wantMods, "\n") + "\n")},
		{kver + "kernel/drivers/core/ring.ko.zst", cpio.S_IFREG | 0o644, []byte("module kernel/drivers/core/ring.ko.zst")},
		{"/dev/console", cpio.S_IFCHR | 0o600, nil},
		{"/dev", cpio.S_IFDIR | 0o755, nil},
		{"/etc", cpio.S_IFDIR | 0o755, nil},
		{"/proc", cpio.S_IFDIR | 0o755, nil},
		{"/sys", cpio.S_IFDIR | 0o755, nil},
		{"/tmp", cpio.S_IFDIR | 0o755, nil},
		{"/run", cpio.S_IFDIR | 0o755, nil},
		{"/mnt", cpio.S_IFDIR | 0o755, nil},
		{kver + "kernel/drivers", cpio.S_IFDIR | 0o755, nil},
	} {
		r, ok := byName[c.name]
		if !ok {
			t.Errorf("%s missing", c.name)
			continue
		}
		if r.Mode != c.mode {
			t.Errorf("%s: mode %#o, want %#o", c.name, r.Mode, c.mode)
		}
		if c.mode&cpio.S_IFMT != cpio.S_IFREG {
			continue
		}
		got, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", c.name, len(got), len(c.data))
		}
	}
	if c := byName["/dev/console"]; c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("/dev/console is %d,%d, want 5,1", c.Rmajor, c.Rminor)
	}
}

func TestBuildWithoutConfigOrModules(t *testing.T) {
	opts := baseOptions(t)
	opts.Compress = CompressNone
	opts.Config = nil
	opts.Modules = nil
	archive, res := build(t, opts)
	want := []string{"/dev", "/dev/console", "/etc", "/init", "/mnt", "/proc", "/run", "/sys", "/tmp"}
	if !slices.Equal(res.Files, want) {
		t.Errorf("files = %q, want %q", res.Files, want)
	}
	if n := len(readRecords(t, archive)); n != len(want) {
		t.Errorf("%d records", n)
	}
}

func TestBuildReproducible(t *testing.T) {
	opts := baseOptions(t)
	for _, c := range []string{CompressZstd, CompressGzip, CompressNone} {
		opts.Compress = c
		a, _ := build(t, opts)
		// Touching the inputs must not matter: times are not packed.
		for _, p := range []string{opts.Init, filepath.Join(opts.ModulesDir, "kernel/lib/libc32.ko")} {
			if err := os.Chtimes(p, time0(), time0()); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := build(t, opts)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two builds differ", c)
		}
	}
}

func TestBuildInputsChangeOutput(t *testing.T) {
	base := baseOptions(t)
	ref, _ := build(t, base)
	for name, change := range map[string]func(*Options){
		"config":   func(o *Options) { o.Config = []byte("[dump]\nlevel = 1\n") },
		"modules":  func(o *Options) { o.Modules = []string{"fsx"} },
		"init":     func(o *Options) { o.Init = writeInit(t, t.TempDir(), 4096, 2) },
		"compress": func(o *Options) { o.Compress = CompressGzip },
		"module content": func(o *Options) {
			writeFile(t, filepath.Join(o.ModulesDir, "kernel/lib/libc32.ko"), "other bytes")
		},
	} {
		opts := base
		opts.ModulesDir = writeTree(t, fakeTree)
		change(&opts)
		got, _ := build(t, opts)
		if bytes.Equal(got, ref) {
			t.Errorf("changing the %s left the image unchanged", name)
		}
	}
	// Control: a fresh copy of the same inputs in other directories gives
	// the same bytes, so the differences above come from the changes.
	opts := base
	opts.ModulesDir = writeTree(t, fakeTree)
	if got, _ := build(t, opts); !bytes.Equal(got, ref) {
		t.Error("the same inputs in another directory give another image")
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	opts := baseOptions(t)
	opts.Compress = CompressNone
	raw, _ := build(t, opts)
	for _, c := range []struct {
		name   string
		decode func(io.Reader) ([]byte, error)
	}{
		{CompressZstd, func(r io.Reader) ([]byte, error) {
			d, err := zstd.NewReader(r)
			if err != nil {
				return nil, err
			}
			defer d.Close()
			return io.ReadAll(d)
		}},
		{CompressGzip, func(r io.Reader) ([]byte, error) {
			d, err := gzip.NewReader(r)
			if err != nil {
				return nil, err
			}
			if !d.ModTime.IsZero() || d.Name != "" {
				return nil, errors.New("gzip header has a time or a name")
			}
			return io.ReadAll(d)
		}},
	} {
		opts.Compress = c.name
		z, res := build(t, opts)
		got, err := c.decode(bytes.NewReader(z))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: decompressed image differs from the uncompressed one", c.name)
		}
		if res.CPIOSize != int64(len(raw)) || res.Compress != c.name {
			t.Errorf("%s: result %+v", c.name, res)
		}
	}
}

func TestZstdWindow(t *testing.T) {
	for _, tt := range []struct{ n, want int }{
		{0, zstd.MinWindowSize},
		{100, zstd.MinWindowSize},
		{1024, 1024},
		{1025, 2048},
		{3 << 20, 4 << 20},
		{8 << 20, 8 << 20},
		{100 << 20, 8 << 20},
	} {
		if got := zstdWindow(tt.n); got != tt.want {
			t.Errorf("zstdWindow(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// TestImageSize builds an image with an incompressible 2.5 MB init, and the
// virtio modules of a real kernel when one is unpacked, and checks what the
// capture kernel must hold: under 5 MB compressed, a zstd window of at
// most 8 MiB.
func TestImageSize(t *testing.T) {
	opts := Options{
		Init:     writeInit(t, t.TempDir(), 2500_000, 3),
		Arch:     "amd64",
		Compress: CompressZstd,
	}
	if m, _ := filepath.Glob(filepath.Join(fixture.CacheDir(t), "kernels/6.1.*-cloud-amd64/root/lib/modules/6.1.*")); len(m) > 0 {
		opts.ModulesDir = m[len(m)-1]
		opts.Modules = []string{"virtio_blk,virtio_pci"}
	}
	z, res := build(t, opts)
	if len(z) >= 5_000_000 {
		t.Errorf("image is %d bytes, want < 5 MB", len(z))
	}
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		t.Fatal(err)
	}
	if h.WindowSize > maxZstdWindow || h.WindowSize == 0 {
		t.Errorf("zstd window %d", h.WindowSize)
	}
	t.Logf("%d bytes (cpio %d), window %d, modules %q", len(z), res.CPIOSize, h.WindowSize, res.Modules)

	// A larger image still asks for no more than 8 MiB.
	opts.Init = writeInit(t, t.TempDir(), 12<<20, 4)
	z, _ = build(t, opts)
	if err := h.Decode(z); err != nil {
		t.Fatal(err)
	}
	if h.WindowSize != maxZstdWindow {
		t.Errorf("zstd window of a 12 MiB image = %d, want %d", h.WindowSize, maxZstdWindow)
	}
}

// TestGNUCpio checks that GNU cpio, the kernel's own reference tool for
// newc, reads the archive and sees the same files, modes and device.
func TestGNUCpio(t *testing.T) {
	cpioCmd := fixture.NeedTool(t, "cpio")
	opts := baseOptions(t)
	opts.Compress = CompressNone
	archive, res := build(t, opts)

	cmd := exec.Command(cpioCmd, "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(archive)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -it: %v\n%s", err, out)
	}
	var want []string
	for _, f := range res.Files {
		want = append(want, strings.TrimPrefix(f, "/"))
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		t.Errorf("cpio -t lists %q, want %q", got, want)
	}

	cmd = exec.Command(cpioCmd, "-itv", "--quiet", "dev/console", "init")
	cmd.Stdin = bytes.NewReader(archive)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "crw-------") || !strings.Contains(lines[0], " 5,   1 ") ||
		!strings.HasPrefix(lines[1], "-rwxr-xr-x") {
		t.Errorf("cpio -itv:\n%s", out)
	}
}

func TestFileListGolden(t *testing.T) {
	opts := baseOptions(t)
	opts.Init = ""
	opts.FromSource = true
	opts.Dir = fakeCheckout(t, "")
	opts.ModulesDir = filepath.Join("testdata", "6.1.0-test-amd64")
	opts.Modules = []string{"virtio_blk", "ext4"}
	p, err := NewPlan(context.Background(), opts, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b bytes.Buffer
	if err := p.WriteList(&b); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(b.String(), opts.Dir, "CHECKOUT")
	golden := filepath.Join("testdata", "list.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("file list differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	// A plan made without compiling cannot be written.
	if _, err := p.WriteTo(io.Discard); !errors.Is(err, ErrNoInit) {
		t.Errorf("WriteTo of an uncompiled plan: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	errBad := errors.New("bad config")
	for _, tt := range []struct {
		name   string
		change func(*Options)
		is     error
	}{
		{"compression", func(o *Options) { o.Compress = "lz4" }, ErrCompression},
		{"config rejected", func(o *Options) { o.ValidateConfig = func([]byte) error { return errBad } }, errBad},
		{"module missing", func(o *Options) { o.Modules = []string{"fsx,nope"} }, ErrModuleNotFound},
		{"modules without a tree", func(o *Options) { o.ModulesDir = "" }, nil},
		{"init missing", func(o *Options) { o.Init = filepath.Join(t.TempDir(), "none") }, os.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions(t)
			tt.change(&opts)
			_, err := Build(context.Background(), io.Discard, opts)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
	// The hook sees the config bytes.
	opts := baseOptions(t)
	var seen []byte
	opts.ValidateConfig = func(b []byte) error { seen = b; return nil }
	build(t, opts)
	if !bytes.Equal(seen, opts.Config) {
		t.Errorf("ValidateConfig got %q", seen)
	}
}

func TestImageAdd(t *testing.T) {
	im := newImage()
	for _, name := range []string{"init", "/a/../b", "/", "/x/"} {
		if err := im.add(fileEntry(name, 0o644, nil, "")); !errors.Is(err, ErrBadEntry) {
			t.Errorf("add %q: %v", name, err)
		}
	}
	if err := im.add(fileEntry("/etc/f", 0o644, nil, "")); err != nil {
		t.Fatal(err)
	}
	if err := im.add(fileEntry("/etc/f", 0o644, nil, "")); !errors.Is(err, ErrBadEntry) {
		t.Errorf("duplicate file: %v", err)
	}
	if err := im.add(fileEntry("/etc/f/g", 0o644, nil, "")); !errors.Is(err, ErrBadEntry) {
		t.Errorf("file under a file: %v", err)
	}
	// A directory first created as a parent takes the mode given later.
	if err := im.add(dirEntry("/etc", 0o700)); err != nil {
		t.Fatal(err)
	}
	if m := im.entries["/etc"].mode; m != cpio.S_IFDIR|0o700 {
		t.Errorf("/etc mode %#o", m)
	}
}

// TestFileListNames: gen_init_cpio splits list lines on white space and
// expands ${VAR} in sources, with no way to quote either; such a path is
// refused, naming it, rather than written into a list that packs
// something else.
func TestFileListNames(t *testing.T) {
	for name, dir := range map[string]string{"space": "my modules", "tab": "tab\tbed", "newline": "new\nline", "variable": "${HOME}"} {
		t.Run(name, func(t *testing.T) {
			opts := baseOptions(t)
			mods := filepath.Join(t.TempDir(), dir, "6.1.0-test-amd64")
			if err := os.CopyFS(mods, os.DirFS(opts.ModulesDir)); err != nil {
				t.Fatal(err)
			}
			opts.ModulesDir = mods
			p, err := NewPlan(context.Background(), opts, true)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var b bytes.Buffer
			err = p.WriteList(&b)
			if !errors.Is(err, ErrListName) || !strings.Contains(err.Error(), strings.TrimSuffix(strconv.Quote(mods), `"`)+"/kernel/") || b.Len() != 0 {
				t.Errorf("list: %v; wrote %d bytes", err, b.Len())
			}
			// The archive itself holds any name.
			if _, err := p.WriteTo(io.Discard); err != nil {
				t.Error(err)
			}
		})
	}
	im := newImage()
	if err := im.add(fileEntry("/etc/a b", 0o644, nil, "/src")); err != nil {
		t.Fatal(err)
	}
	if err := im.writeList(io.Discard); !errors.Is(err, ErrListName) {
		t.Errorf("image name with a space: %v", err)
	}
	im = newImage()
	if err := im.add(fileEntry("/etc/x", 0o644, nil, "/"+strings.Repeat("d", maxListPath))); err != nil {
		t.Fatal(err)
	}
	if err := im.writeList(io.Discard); !errors.Is(err, ErrListName) {
		t.Errorf("source longer than PATH_MAX: %v", err)
	}
}
