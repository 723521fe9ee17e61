package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"
)

// debianTree returns the lib/modules directory and the release of the
// Debian 6.12 cloud kernel of arch that the QEMU tests unpack in the
// cache, or calls fixture.Missing.
func debianTree(t *testing.T, arch string) (modules, kver string) {
	t.Helper()
	cache := fixture.CacheDir(t)
	m, _ := filepath.Glob(filepath.Join(cache, "kernels", "6.12.*-cloud-"+arch, "root", "lib", "modules", "6.12.*-cloud-"+arch))
	if len(m) == 0 {
		fixture.Missing(t, "no Debian 6.12 %s kernel in %s: scripts/fetch-kernel 6.12 --arch %s unpacks one, as `make test` does",
			arch, filepath.Join(cache, "kernels"), arch)
	}
	return filepath.Dir(m[len(m)-1]), filepath.Base(m[len(m)-1])
}

// recordData reads an archive record's contents.
func recordData(t *testing.T, r cpio.Record) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// elfOf opens an ELF file of the archive, undoing a module's .xz.
func elfOf(t *testing.T, name string, b []byte) *elf.File {
	t.Helper()
	if strings.HasSuffix(name, ".xz") {
		r, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b, err = io.ReadAll(r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// TestBuildArchARM64 is gokdump build --arch arm64 on Debian's arm64 6.12
// tree (--kernel-modules of its lib/modules with --kver): the archive's
// /init is an AArch64 executable (the init compiled, or found, for
// arm64), the generic arm64 drivers are packed as AArch64 objects
// (virtio_blk, virtio_mmio, ahci_platform; nvme and virtio_pci are built
// into that kernel), in an order that modules.dep allows. The same build
// from the x86-64 tree is refused, and so is host-only detection for
// another architecture.
func TestBuildArchARM64(t *testing.T) {
	noDefaultConfig(t)
	modules, kver := debianTree(t, "arm64")
	out := filepath.Join(t.TempDir(), "arm64.img")
	var stdout, stderr bytes.Buffer
	code := run([]string{"build", "-o", out, "--arch", "arm64", "--kernel-modules", modules, "--kver", kver,
		"--no-config", "--compress", "none"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	t.Log(stderr.String())
	for _, want := range []string{"drivers: generic", "modules (load order): ", "built in, skipped: "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	for _, b := range []string{"nvme", "virtio_pci", "ext4"} {
		if !regexpWord(stderr.String(), "built in, skipped: ", b) {
			t.Errorf("summary does not list %s as built in", b)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, b)
	if f := elfOf(t, "/init", recordData(t, files["/init"])); f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
		t.Errorf("/init: %v %v, want an AArch64 executable", f.Machine, f.Type)
	}
	list := strings.Fields(string(recordData(t, files["/etc/gokdump.modules"])))
	var names []string
	for _, p := range list {
		r, ok := files[p]
		if !ok {
			t.Errorf("%s is listed but not packed", p)
			continue
		}
		if f := elfOf(t, p, recordData(t, r)); f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_REL {
			t.Errorf("%s: %v %v, want an AArch64 module", p, f.Machine, f.Type)
		}
		if !strings.HasPrefix(p, "/lib/modules/"+kver+"/kernel/") {
			t.Errorf("%s is not under /lib/modules/%s", p, kver)
		}
		n := filepath.Base(p)
		names = append(names, strings.ReplaceAll(n[:strings.Index(n, ".ko")], "-", "_"))
	}
	for _, m := range []string{"virtio_blk", "virtio_mmio", "ahci_platform", "sd_mod", "xen_blkfront"} {
		if !slices.Contains(names, m) {
			t.Errorf("modules %q lack %s", names, m)
		}
	}
	// Each module after what the tree's modules.dep says it needs.
	fixture.CheckModulesDepOrder(t, names, filepath.Join(modules, kver))

	// --sysroot of the unpacked arm64 package, with --arch and without
	// (taken from the tree's kernel): the same modules; of the x86-64
	// one with --arch arm64, refused, naming the kernel's machine.
	arm64Init := writeTestInitFor(t, "arm64")
	sysroot := filepath.Dir(filepath.Dir(modules))
	for _, arch := range [][]string{{"--arch", "arm64"}, nil} {
		stderr.Reset()
		args := append([]string{"build", "--list", "-o", filepath.Join(t.TempDir(), "gen"), "--sysroot", sysroot, "--kver", kver, "--init", arm64Init, "--no-config"}, arch...)
		code = run(args, &stdout, &stderr)
		if code != 0 || !regexpWord(stderr.String(), "modules (load order): ", "virtio_blk") {
			t.Errorf("--sysroot of the arm64 tree %v: exit %d: %s", arch, code, stderr.String())
		}
		if arch == nil && !strings.Contains(stderr.String(), "arch arm64: the image tree's kernel is an arm64 kernel") {
			t.Errorf("--sysroot of the arm64 tree without --arch: no word of the arch taken from its kernel: %s", stderr.String())
		}
	}
	amdRoot, _ := debianTree(t, "amd64")
	stderr.Reset()
	code = run([]string{"build", "--list", "-o", filepath.Join(t.TempDir(), "gen"), "--arch", "arm64", "--sysroot", filepath.Dir(filepath.Dir(amdRoot)), "--init", arm64Init, "--no-config"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "is an x86_64 kernel (--arch amd64)") {
		t.Errorf("--sysroot of the x86-64 tree for arm64: exit %d: %s", code, stderr.String())
	}

	// The x86-64 tree for an arm64 image: refused, naming the machines.
	amd, amdKver := debianTree(t, "amd64")
	stderr.Reset()
	code = run([]string{"build", "-o", filepath.Join(t.TempDir(), "bad.img"), "--arch", "arm64",
		"--kernel-modules", filepath.Join(amd, amdKver), "--no-config", "--module", "virtio_blk"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "module built for another machine: EM_X86_64, the image is for arm64 (EM_AARCH64)") {
		t.Errorf("arm64 image from the x86-64 tree: exit %d: %s", code, stderr.String())
	}
}

// regexpWord reports whether the line of s starting with prefix lists
// word among its space-separated words.
func regexpWord(s, prefix, word string) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), strings.TrimSpace(prefix)); ok {
			return slices.Contains(strings.Fields(rest), word)
		}
	}
	return false
}

// TestBuildOtherArchModules: for another architecture than this
// machine's, the running kernel's modules are never taken, host-only
// detection is refused (it reads this machine's devices), and --kver
// with --kernel-modules must agree.
func TestBuildOtherArchModules(t *testing.T) {
	noDefaultConfig(t)
	other := map[bool]string{true: "amd64", false: "arm64"}[runtime.GOARCH == "arm64"]
	// A running kernel with modules, which a host build would take.
	rel, _ := buildRelease()
	writeFiles(t, kernelRoot, map[string]string{"lib/modules/" + rel + "/modules.dep": "", "boot/vmlinuz-" + rel: "x"})
	initPath := writeTestInitFor(t, other)
	for _, tt := range []struct {
		name string
		args []string
		ok   bool
		says string
	}{
		{"no modules tree", []string{"--arch", other}, true, "drivers: none (no modules tree: the running kernel's are " + runtime.GOARCH},
		{"host's own", []string{"--arch", runtime.GOARCH}, true, "drivers: generic (no target in the config"},
		{"hostonly", []string{"--arch", other, "--drivers", "hostonly"}, false, "--drivers hostonly reads this machine's devices and drivers"},
		{"kver disagrees", []string{"--arch", other, "--kver", "1.2.3", "--kernel-modules", t.TempDir()}, false, "disagree"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ip := initPath
			if !slices.Contains(tt.args, other) {
				ip = writeTestInitFor(t, runtime.GOARCH)
			}
			args := append([]string{"build", "--list", "-o", filepath.Join(t.TempDir(), "gen"), "--no-config", "--init", ip}, tt.args...)
			code := run(args, &stdout, &stderr)
			if (code == 0) != tt.ok || !strings.Contains(stderr.String(), tt.says) {
				t.Errorf("%q: exit %d, want ok %v and %q:\n%s", tt.args, code, tt.ok, tt.says, stderr.String())
			}
		})
	}
}

// writeTestInitFor writes a minimal static ELF executable for GOARCH arch
// (amd64 or arm64).
func writeTestInitFor(t *testing.T, arch string) string {
	t.Helper()
	p := writeTestInit(t, t.TempDir())
	if arch == "arm64" {
		b := mustRead(t, p)
		binary.LittleEndian.PutUint16(b[18:], uint16(elf.EM_AARCH64))
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// writeFiles writes files (path under root → contents).
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
