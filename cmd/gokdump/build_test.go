package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/u-root/u-root/pkg/cpio"
)

// testModulesDir is the builder package's fake /lib/modules/KVER tree.
const testModulesDir = "../../builder/testdata/6.1.0-test-amd64"

// writeTestInit writes a minimal static amd64 ELF executable to dir.
func writeTestInit(t *testing.T, dir string) string {
	t.Helper()
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 1, Shentsize: 64,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, hdr)
	binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_LOAD), Off: 120, Filesz: 4, Memsz: 4})
	b.WriteString("code")
	p := filepath.Join(dir, "gokdump-init")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// noDefaultConfig points the default config at a missing file and the
// running kernel's modules at an empty directory for the test, so the
// host's /etc/gokdump.toml and /lib/modules do not leak in.
func noDefaultConfig(t *testing.T) {
	oldConfig, oldRoot, oldSys, oldRelease := defaultConfigPath, kernelRoot, buildSys, buildRelease
	defaultConfigPath = filepath.Join(t.TempDir(), "absent.toml")
	kernelRoot = t.TempDir()
	buildSys = blockdev.Sys{SysDir: t.TempDir(), DevDir: t.TempDir()}
	buildRelease = func() (string, error) { return "6.1.0-running-amd64", nil }
	t.Cleanup(func() {
		defaultConfigPath, kernelRoot, buildSys, buildRelease = oldConfig, oldRoot, oldSys, oldRelease
	})
}

// archiveFiles reads an uncompressed archive into name → record.
func archiveFiles(t *testing.T, b []byte) map[string]cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]cpio.Record{}
	for _, r := range recs {
		m["/"+r.Name] = r
	}
	return m
}

func TestBuildCommand(t *testing.T) {
	noDefaultConfig(t)
	dir := t.TempDir()
	initPath := writeTestInit(t, t.TempDir())
	cfg := filepath.Join(t.TempDir(), "my.toml")
	if err := os.WriteFile(cfg, []byte("# test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.img")
	var stdout, stderr bytes.Buffer
	code := run([]string{"build", "-o", out, "--init", initPath, "--arch", "amd64", "--config", cfg,
		"--compress", "none", "--kernel-modules", testModulesDir, "--module", "virtio-blk,ext4"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("image mode %v, want 0600", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("output directory holds %d entries, want only the image", len(ents))
	}
	b, _ := os.ReadFile(out)
	files := archiveFiles(t, b)
	if r, ok := files["/etc/gokdump.toml"]; !ok || r.FileSize != 7 || r.Mode != cpio.S_IFREG|0o600 {
		t.Errorf("config record %+v (present %v)", r.Info, ok)
	}
	for _, want := range []string{
		"wrote " + out,
		"none",
		"init: " + initPath + " (--init)",
		"modules (load order): virtio_ring virtio virtio_blk",
		"built in, skipped: ext4",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestBuildCommandDefaultConfig(t *testing.T) {
	noDefaultConfig(t)
	initPath := writeTestInit(t, t.TempDir())
	host := filepath.Join(t.TempDir(), "gokdump.toml")
	if err := os.WriteFile(host, []byte("keep = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := defaultConfigPath
	t.Cleanup(func() { defaultConfigPath = old })
	for _, tt := range []struct {
		name     string
		defPath  string
		noConfig bool
		want     bool
	}{
		{"host config packed", host, false, true},
		{"no host config", filepath.Join(t.TempDir(), "none.toml"), false, false},
		{"--no-config", host, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defaultConfigPath = tt.defPath
			var stdout, stderr bytes.Buffer
			f := &buildFlags{out: "-", init: initPath, arch: "amd64", compress: "none", noConfig: tt.noConfig}
			if err := runBuild(context.Background(), f, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			_, got := archiveFiles(t, stdout.Bytes())["/etc/gokdump.toml"]
			if got != tt.want {
				t.Errorf("config packed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBuildCommandStdoutZstd(t *testing.T) {
	noDefaultConfig(t)
	var stdout, stderr bytes.Buffer
	f := &buildFlags{out: "-", init: writeTestInit(t, t.TempDir()), arch: "amd64", compress: "zstd"}
	if err := runBuild(context.Background(), f, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stdout.Bytes(), []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Errorf("standard output does not start with a zstd frame: % x", stdout.Bytes()[:min(8, stdout.Len())])
	}
	if !strings.Contains(stderr.String(), "wrote standard output") {
		t.Errorf("summary: %s", stderr.String())
	}
}

func TestBuildCommandList(t *testing.T) {
	noDefaultConfig(t)
	initPath := writeTestInit(t, t.TempDir())
	var stdout, stderr bytes.Buffer
	f := &buildFlags{list: true, init: initPath, arch: "amd64", compress: "zstd",
		modulesDir: testModulesDir, modules: multiFlag{"virtio_blk"}}
	if err := runBuild(context.Background(), f, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"dir /dev 0755 0 0\n",
		"nod /dev/console 0600 0 0 c 5 1\n",
		"file /init " + initPath + " 0755 0 0\n",
		"file /lib/modules/6.1.0-test-amd64/kernel/drivers/block/virtio_blk.ko.xz ",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("list lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestBuildCommandErrors(t *testing.T) {
	noDefaultConfig(t)
	initPath := writeTestInit(t, t.TempDir())
	dir := t.TempDir()
	out := filepath.Join(dir, "img")
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no output", []string{"build", "--init", initPath}, 2, "-o PATH is required"},
		{"extra argument", []string{"build", "-o", out, "--init", initPath, "extra"}, 2, `takes no arguments, got ["extra"]`},
		{"missing config", []string{"build", "-o", out, "--init", initPath, "--arch", "amd64", "--config", filepath.Join(dir, "nope.toml")}, 1, "nope.toml"},
		{"config and no-config", []string{"build", "-o", out, "--init", initPath, "--config", "x", "--no-config"}, 1, "exclusive"},
		{"missing module", []string{"build", "-o", out, "--init", initPath, "--arch", "amd64", "--kernel-modules", testModulesDir, "--module", "nosuch"}, 1, "nosuch"},
		{"bad compression", []string{"build", "-o", out, "--init", initPath, "--arch", "amd64", "--compress", "bz2"}, 1, "bz2"},
		{"wrong arch init", []string{"build", "-o", out, "--init", initPath, "--arch", "arm64"}, 1, "arm64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("stderr lacks %q:\n%s", tt.msg, stderr.String())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a failed build left %d files in the output directory", len(ents))
			}
		})
	}
}

func TestBuildHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	run([]string{"help", "build"}, &stdout, &stderr)
	for _, want := range []string{"CONFIG_RD_ZSTD", "-kernel-modules", "-module", "-from-source", "-list"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
}
