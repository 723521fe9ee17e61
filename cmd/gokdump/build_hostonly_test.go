package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/blockdev"
)

const runningKVer = "6.1.0-running-amd64"

// fakeMachine is a running system in a temporary directory: sysfs with a
// virtio disk (vda, vda1 ext4 LABEL=GOKDUMP) and an NVMe disk (nvme0n1 xfs
// LABEL=SPARE) under PCI, their nodes in dev/, and the running kernel's
// modules tree, where nvme and ext4 are built in.
type fakeMachine struct {
	t                   *testing.T
	sys, dev, modules   string
	initPath, configDir string
}

func newFakeMachine(t *testing.T) *fakeMachine {
	t.Helper()
	noDefaultConfig(t)
	root := t.TempDir()
	m := &fakeMachine{t: t, sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev"),
		modules: filepath.Join(root, "lib", "modules"), configDir: t.TempDir()}
	kernelRoot = root
	buildSys = blockdev.Sys{SysDir: m.sys, DevDir: m.dev}
	buildRelease = func() (string, error) { return runningKVer, nil }
	m.initPath = writeTestInit(t, t.TempDir())

	virtioPCI := "devices/pci0000:00/0000:00:04.0"
	m.driver(virtioPCI, "pci", "virtio-pci", "virtio_pci")
	m.driver(virtioPCI+"/virtio1", "virtio", "virtio_blk", "virtio_blk")
	m.disk(virtioPCI+"/virtio1", "vda", 253, 0, nil)
	m.partition(virtioPCI+"/virtio1", "vda", "vda1", 253, 1, extSuper("GOKDUMP"))
	nvmePCI := "devices/pci0000:00/0000:00:05.0"
	m.driver(nvmePCI, "pci", "nvme", "nvme")
	m.disk(nvmePCI+"/nvme/nvme0", "nvme0n1", 259, 0, xfsSuper("SPARE"))

	kdir := filepath.Join(m.modules, runningKVer)
	m.write(filepath.Join(kdir, "modules.dep"), `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko
kernel/fs/fat/fat.ko:
kernel/fs/nls/nls_cp437.ko:
`)
	m.write(filepath.Join(kdir, "modules.builtin"), "kernel/fs/ext4/ext4.ko\nkernel/drivers/nvme/host/nvme.ko\nkernel/drivers/nvme/host/nvme-core.ko\n")
	m.write(filepath.Join(kdir, "modules.softdep"), "softdep libcrc32c pre: crc32c\n")
	m.write(filepath.Join(kdir, "modules.alias"), "alias crc32c crc32c_intel\n")
	for _, l := range strings.Split(readString(t, filepath.Join(kdir, "modules.dep")), "\n") {
		if p, _, ok := strings.Cut(l, ":"); ok {
			m.write(filepath.Join(kdir, p), "module "+p)
		}
	}
	return m
}

func readString(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (m *fakeMachine) write(p, content string) {
	m.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

func (m *fakeMachine) link(p, target string) {
	m.t.Helper()
	p, target = filepath.Join(m.sys, p), filepath.Join(m.sys, target)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		m.t.Fatal(err)
	}
	rel, _ := filepath.Rel(filepath.Dir(p), target)
	if err := os.Symlink(rel, p); err != nil {
		m.t.Fatal(err)
	}
}

func (m *fakeMachine) driver(dev, bus, name, mod string) {
	drv := filepath.Join("bus", bus, "drivers", name)
	if err := os.MkdirAll(filepath.Join(m.sys, "module", mod), 0o755); err != nil {
		m.t.Fatal(err)
	}
	m.link(filepath.Join(drv, "module"), filepath.Join("module", mod))
	m.link(filepath.Join(dev, "driver"), drv)
}

// node writes the device node as a regular file holding content.
func (m *fakeMachine) node(name string, content []byte) {
	if content == nil {
		content = make([]byte, 4096)
	}
	m.write(filepath.Join(m.dev, name), string(content))
}

func (m *fakeMachine) disk(devdir, name string, major, minor int, content []byte) {
	b := filepath.Join(devdir, "block", name)
	m.write(filepath.Join(m.sys, b, "dev"), strconv.Itoa(major)+":"+strconv.Itoa(minor)+"\n")
	m.write(filepath.Join(m.sys, b, "size"), "8\n")
	m.link(filepath.Join(b, "device"), devdir)
	m.link(filepath.Join("class", "block", name), b)
	m.node(name, content)
}

func (m *fakeMachine) partition(devdir, disk, name string, major, minor int, content []byte) {
	b := filepath.Join(devdir, "block", disk, name)
	m.write(filepath.Join(m.sys, b, "dev"), strconv.Itoa(major)+":"+strconv.Itoa(minor)+"\n")
	m.write(filepath.Join(m.sys, b, "size"), "8\n")
	m.write(filepath.Join(m.sys, b, "partition"), "1\n")
	m.link(filepath.Join("class", "block", name), b)
	m.node(name, content)
}

// extSuper is the start of an ext4 filesystem with a label.
func extSuper(label string) []byte {
	img := make([]byte, 4096)
	sb := img[1024:]
	binary.LittleEndian.PutUint32(sb[24:], 2)
	binary.LittleEndian.PutUint16(sb[56:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[92:], 0x4)   // has_journal
	binary.LittleEndian.PutUint32(sb[96:], 0x2c2) // extents, 64bit, flex_bg: ext4
	copy(sb[104:], "0123456789abcdef")
	copy(sb[120:136], label)
	return img
}

// xfsSuper is the start of an xfs filesystem with a label.
func xfsSuper(label string) []byte {
	img := make([]byte, 4096)
	copy(img, "XFSB")
	binary.BigEndian.PutUint32(img[4:], 4096)
	binary.BigEndian.PutUint64(img[8:], 4*16384)
	copy(img[32:], "fedcba9876543210")
	binary.BigEndian.PutUint32(img[80:], 1)
	binary.BigEndian.PutUint32(img[84:], 16384)
	binary.BigEndian.PutUint32(img[88:], 4)
	binary.BigEndian.PutUint16(img[102:], 512)
	binary.BigEndian.PutUint16(img[104:], 512)
	copy(img[108:120], label)
	img[120], img[121], img[122], img[123] = 12, 9, 9, 3
	img[127] = 25
	return img
}

func (m *fakeMachine) config(content string) string {
	p := filepath.Join(m.configDir, "gokdump.toml")
	m.write(p, content)
	return p
}

// build runs gokdump build with args plus the test init, uncompressed to
// standard output, and returns the modules packed and the summary.
func (m *fakeMachine) build(args ...string) ([]string, string, error) {
	m.t.Helper()
	var stdout, stderr bytes.Buffer
	out := filepath.Join(m.t.TempDir(), "initrd.img")
	all := append([]string{"build", "-o", out, "--init", m.initPath, "--arch", "amd64", "--compress", "none"}, args...)
	if code := run(all, &stdout, &stderr); code != 0 {
		return nil, stderr.String(), &exitError{code, stderr.String()}
	}
	var mods []string
	b, err := os.ReadFile(out)
	if err != nil {
		m.t.Fatal(err)
	}
	if r, ok := archiveFiles(m.t, b)["/etc/gokdump.modules"]; ok {
		b := make([]byte, r.FileSize)
		r.ReadAt(b, 0)
		for _, l := range strings.Fields(string(b)) {
			mods = append(mods, strings.TrimSuffix(filepath.Base(l), ".ko"))
		}
	}
	return mods, stderr.String(), nil
}

type exitError struct {
	code   int
	stderr string
}

func (e *exitError) Error() string { return "exit " + strconv.Itoa(e.code) + ": " + e.stderr }

func TestBuildHostOnly(t *testing.T) {
	for _, tt := range []struct {
		name    string
		config  string
		args    []string
		modules []string // files packed, in load order
		say     []string // in the summary
		err     string
	}{
		{
			name:    "virtio target by label",
			config:  "target = \"LABEL=GOKDUMP\"\n",
			modules: []string{"virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci"},
			say: []string{
				"drivers: hostonly (the config names target LABEL=GOKDUMP and ",
				filepath.Join("lib", "modules", runningKVer) + " is the running kernel's)",
				"host-only: target LABEL=GOKDUMP is ",
				"vda1 (ext4)",
				"virtio_blk: driver virtio_blk of devices/pci0000:00/0000:00:04.0/virtio1 (vda)",
				"virtio_pci: driver virtio-pci of devices/pci0000:00/0000:00:04.0 (vda)",
				"ext4: filesystem of vda1",
				"built in, skipped: ext4",
			},
		},
		{
			name:    "nvme target: everything built in but the filesystem",
			config:  "target = \"LABEL=SPARE\"\n",
			modules: []string{"crc32c-intel", "libcrc32c", "xfs"},
			say:     []string{"nvme: driver nvme of devices/pci0000:00/0000:00:05.0 (nvme0n1)", "built in, skipped: nvme"},
		},
		{
			name:    "fallback target, config modules and --module too",
			config:  "target = \"LABEL=SPARE\"\nfailure_action = \"fallback\"\nfallback_target = \"/dev/vda1\"\nfstype = \"vfat\"\nmodules = [\"virtio_scsi\"]\n",
			args:    []string{"--module", "nls_cp437"},
			modules: []string{"nls_cp437", "fat", "vfat", "virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci", "virtio_scsi"},
			say:     []string{"not in this kernel, skipped: nls_iso8859_1 nls_utf8"},
		},
		{
			name:    "--no-hostonly",
			config:  "target = \"LABEL=GOKDUMP\"\n",
			args:    []string{"--no-hostonly"},
			modules: []string{"nls_cp437", "fat", "vfat", "virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci", "virtio_scsi", "crc32c-intel", "libcrc32c", "xfs"},
			say:     []string{"drivers: generic (as asked)", "not in this kernel, skipped: ahci ata_piix btrfs"},
		},
		{
			name:   "no target: generic",
			config: "keep = 2\n",
			say:    []string{"drivers: generic (no target in the config"},
			modules: []string{"nls_cp437", "fat", "vfat", "virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci",
				"virtio_scsi", "crc32c-intel", "libcrc32c", "xfs"},
		},
		{
			name:    "--drivers none",
			config:  "target = \"LABEL=GOKDUMP\"\n",
			args:    []string{"--drivers", "none"},
			modules: nil,
			say:     []string{"drivers: none (as asked)"},
		},
		{
			name:   "target not on this machine",
			config: "target = \"LABEL=ELSEWHERE\"\n",
			err:    "find target LABEL=ELSEWHERE on this machine",
		},
		{
			name:   "--drivers hostonly without a target",
			config: "keep = 1\n",
			args:   []string{"--drivers", "hostonly"},
			err:    "needs a config with a target",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMachine(t)
			args := append([]string{"--config", m.config(tt.config)}, tt.args...)
			mods, summary, err := m.build(args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(summary, tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(mods, tt.modules) {
				t.Errorf("modules %q, want %q\n%s", mods, tt.modules, summary)
			}
			for _, s := range tt.say {
				if !strings.Contains(summary, s) {
					t.Errorf("summary lacks %q:\n%s", s, summary)
				}
			}
		})
	}
}

// Host-only is the default only for the running kernel's modules.
func TestBuildHostOnlyNotRunningKernel(t *testing.T) {
	m := newFakeMachine(t)
	other := filepath.Join(m.modules, "6.12.0-new-amd64")
	if err := os.CopyFS(other, os.DirFS(filepath.Join(m.modules, runningKVer))); err != nil {
		t.Fatal(err)
	}
	cfg := m.config("target = \"LABEL=GOKDUMP\"\n")
	_, summary, err := m.build("--config", cfg, "--kver", "6.12.0-new-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary, "drivers: generic ("+other+" is not the running kernel's modules)") {
		t.Errorf("summary:\n%s", summary)
	}
	mods, summary, err := m.build("--config", cfg, "--kver", "6.12.0-new-amd64", "--drivers", "hostonly")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mods, "virtio_blk") || slices.Contains(mods, "xfs") || !strings.Contains(summary, "is not the running kernel's") {
		t.Errorf("forced host-only for another kernel: %q\n%s", mods, summary)
	}
}

func TestBuildFlagErrors(t *testing.T) {
	noDefaultConfig(t)
	initPath := writeTestInit(t, t.TempDir())
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--sysroot", "x", "--kernel-modules", "y"}, "--sysroot takes the modules"},
		{[]string{"--kver", "x", "--kernel-modules", "y"}, "give one"},
		{[]string{"--no-hostonly", "--drivers", "none"}, "contradict"},
		{[]string{"--drivers", "some"}, `--drivers "some"`},
		{[]string{"--sysroot", "x", "--drivers", "hostonly"}, "never uses"},
		{[]string{"--format", "tar"}, `--format "tar"`},
		{[]string{"--format", "cpio", "--compress", "zstd"}, "uncompressed"},
		{[]string{"--drivers", "generic"}, "needs a modules tree"},
		{[]string{"--kver", "../../etc"}, "not a kernel release"},
		{[]string{"--sysroot", "/nonexistent/root"}, "--sysroot /nonexistent/root: builder: image tree: open /nonexistent/root: no such file or directory"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"build", "-o", filepath.Join(t.TempDir(), "img"), "--init", initPath, "--arch", "amd64"}, tt.args...)
		if code := run(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tt.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %q", tt.args, code, stderr.String(), tt.msg)
		}
	}
}

func TestBuildFormatCPIO(t *testing.T) {
	noDefaultConfig(t)
	out := filepath.Join(t.TempDir(), "initramfs.cpio")
	var stdout, stderr bytes.Buffer
	f := &buildFlags{out: out, init: writeTestInit(t, t.TempDir()), arch: "amd64", compress: "zstd", format: formatCPIO}
	if err := runBuild(context.Background(), f, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("070701")) {
		t.Errorf("--format cpio wrote % x…, not a newc archive", b[:8])
	}
	if _, ok := archiveFiles(t, b)["/init"]; !ok {
		t.Error("no /init in the archive")
	}
}
