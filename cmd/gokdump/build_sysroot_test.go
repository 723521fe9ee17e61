package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/fixture"
)

// imageTree is an image root shaped like a merged-/usr Debian tree: /lib
// links to usr/lib, the kernel's modules are the builder's test tree, the
// init sits at /usr/lib/gokdump/init and the config at /etc/gokdump.toml
// (an absolute link to the real file, which must resolve inside the tree).
func imageTree(t *testing.T, kvers ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, kv := range kvers {
		if err := os.CopyFS(filepath.Join(root, "usr", "lib", "modules", kv), os.DirFS(testModulesDir)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	initDir := filepath.Join(root, "usr", "lib", "gokdump")
	if err := os.MkdirAll(initDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(writeTestInit(t, t.TempDir()), filepath.Join(initDir, "init")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc", "gokdump"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "gokdump", "real.toml"), []byte("target = \"LABEL=TREE\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/gokdump/real.toml", filepath.Join(root, "etc", "gokdump.toml")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestBuildSysroot(t *testing.T) {
	m := newFakeMachine(t) // a host whose config, modules and devices must not be used
	hostConfig := filepath.Join(t.TempDir(), "host.toml")
	m.write(hostConfig, "target = \"LABEL=GOKDUMP\"\n")
	defaultConfigPath = hostConfig
	root := imageTree(t, "6.1.0-test-amd64")

	out := filepath.Join(t.TempDir(), "initrd.img")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"build", "--sysroot", root, "-o", out, "--compress", "none"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, b)
	cfg := files["/etc/gokdump.toml"]
	got := make([]byte, cfg.FileSize)
	cfg.ReadAt(got, 0)
	if string(got) != "target = \"LABEL=TREE\"\n" {
		t.Errorf("packed config %q, want the tree's", got)
	}
	if _, ok := files["/lib/modules/6.1.0-test-amd64/kernel/drivers/block/virtio_blk.ko.xz"]; !ok {
		t.Errorf("the tree's virtio_blk is not packed: %v", keys(files))
	}
	for name := range files {
		if strings.Contains(name, runningKVer) {
			t.Errorf("host module %s packed", name)
		}
	}
	for _, want := range []string{
		"drivers: generic (building for an image tree)",
		"init: " + filepath.Join(root, "usr", "lib", "gokdump", "init") + " (the image tree's)",
		"kernel 6.1.0-test-amd64 of the image tree: image none, modules /lib/modules/6.1.0-test-amd64;" +
			" gokdump load there reads the capture image from /var/lib/gokdump/gokdump-6.1.0-test-amd64.img",
		"modules (load order): virtio_ring virtio virtio_blk",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr.String())
		}
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func TestBuildSysrootErrors(t *testing.T) {
	noDefaultConfig(t)
	two := imageTree(t, "6.1.0-test-amd64", "6.12.0-test-amd64")
	noInit := imageTree(t, "6.1.0-test-amd64")
	if err := os.Remove(filepath.Join(noInit, "usr", "lib", "gokdump", "init")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--sysroot", two}, "6.1.0-test-amd64, 6.12.0-test-amd64; choose one with --kver"},
		{[]string{"--sysroot", two, "--kver", "5.10"}, "no kernel 5.10 (looked for /boot/vmlinuz-5.10, /lib/modules/5.10/vmlinuz," +
			" /usr/lib/modules/5.10/vmlinuz, and for modules in /lib/modules/5.10, /usr/lib/modules/5.10) in the image tree " + two +
			", which has: 6.1.0-test-amd64, 6.12.0-test-amd64"},
		{[]string{"--sysroot", noInit}, "no capture init found in the image tree at /usr/lib/gokdump/init"},
		{[]string{"--sysroot", t.TempDir()}, "no kernel in the image tree"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"build", "-o", filepath.Join(t.TempDir(), "img")}, tt.args...)
		if code := run(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tt.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %q", tt.args, code, stderr.String(), tt.msg)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"build", "--sysroot", two, "--kver", "6.12.0-test-amd64", "-o", filepath.Join(t.TempDir(), "img")}, &stdout, &stderr); code != 0 {
		t.Errorf("--kver: exit %d\n%s", code, stderr.String())
	}
}

func TestBuildFormatDir(t *testing.T) {
	noDefaultConfig(t)
	root := imageTree(t, "6.1.0-test-amd64")
	out := filepath.Join(t.TempDir(), "initramfs")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"build", "--sysroot", root, "--format", "dir", "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(out, "etc", "gokdump.toml")); err != nil || string(b) != "target = \"LABEL=TREE\"\n" {
		t.Errorf("config in the tree: %q, %v", b, err)
	}
	list, err := os.ReadFile(out + ".list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"file /init " + filepath.Join(out, "init") + " 0755 0 0\n",
		"nod /dev/console 0600 0 0 c 5 1\n",
		"file /etc/gokdump.modules " + filepath.Join(out, "etc", "gokdump.modules") + " 0644 0 0\n",
	} {
		if !strings.Contains(string(list), want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if !strings.Contains(stderr.String(), "gen_init_cpio list "+out+".list") {
		t.Errorf("summary:\n%s", stderr.String())
	}
}

// TestBuildSysrootDebianPackage is the image builder's case: a kernel's
// packages unpacked with dpkg -x (so no depmod output) by an unprivileged
// user, who then builds from them, twice, in two directories: the two
// images must be the same bytes. Debian's split packaging (linux-image is
// then an empty dependency of linux-binary, linux-modules and linux-base)
// puts the kernel in /usr/lib/modules/KVER/vmlinuz, the others in /boot.
func TestBuildSysrootDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("unpacks kernel packages; skipped with -short")
	}
	cache := fixture.CacheDir(t)
	debs, _ := filepath.Glob(filepath.Join(cache, "kernels", "*", "linux-image-*.deb"))
	if len(debs) == 0 {
		fixture.Missing(t, "no kernel package in %s: scripts/fetch-kernel 6.1 downloads one", filepath.Join(cache, "kernels"))
	}
	for _, tool := range []string{"dpkg", "setpriv"} {
		fixture.NeedTool(t, tool)
	}
	// The gokdump binary and the fake init, where the unprivileged user
	// can read them.
	base, err := os.MkdirTemp("", "gokdump-sysroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "gokdump")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// An arm64 tree holds an arm64 init, which the build takes for the
	// tree's kernel's architecture without --arch.
	inits := map[string]string{"amd64": writeTestInit(t, base), "arm64": filepath.Join(base, "init-arm64")}
	arm := mustRead(t, inits["amd64"])
	binary.LittleEndian.PutUint16(arm[18:], uint16(elf.EM_AARCH64))
	if err := os.WriteFile(inits["arm64"], arm, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bin, inits["amd64"]} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, deb := range debs {
		kver := filepath.Base(filepath.Dir(deb))
		pkgs, _ := filepath.Glob(filepath.Join(filepath.Dir(deb), "*.deb"))
		for i := range pkgs {
			pkgs[i], _ = filepath.Abs(pkgs[i])
		}
		arch := "amd64"
		if strings.HasSuffix(kver, "-arm64") {
			arch = "arm64"
		}
		t.Run(kver, func(t *testing.T) {
			work := filepath.Join(base, filepath.Base(filepath.Dir(deb)))
			// As that user: unpack the package twice, install the init and a
			// config into each tree, and build from each.
			script := `set -e
id -u
work=$1 bin=$2 init=$3
shift 3
mkdir -p "$work"
for t in a b; do
	mkdir -p "$work/$t"
	for deb; do dpkg -x "$deb" "$work/$t/root"; done
	mkdir -p "$work/$t/root/usr/lib/gokdump" "$work/$t/root/etc"
	cp "$init" "$work/$t/root/usr/lib/gokdump/init"
	printf 'target = "LABEL=DUMPS"\n' >"$work/$t/root/etc/gokdump.toml"
	(cd "$work/$t" && "$bin" build --sysroot root -o initrd.img 2>build.log)
done
`
			cmd := exec.Command("sh", append([]string{"-c", script, "sh", work, bin, inits[arch]}, pkgs...)...)
			if os.Geteuid() == 0 {
				cmd = exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "--reset-env"}, cmd.Args...)...)
			}
			cmd.Env = append(os.Environ(), "HOME="+base)
			out, err := cmd.CombinedOutput()
			if err != nil {
				logs, _ := os.ReadFile(filepath.Join(work, "a", "build.log"))
				t.Fatalf("%v\n%s\n%s", err, out, logs)
			}
			if uid := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]); uid == "0" {
				t.Fatalf("the build ran as root")
			}
			a, err := os.ReadFile(filepath.Join(work, "a", "initrd.img"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(work, "b", "initrd.img"))
			if err != nil {
				t.Fatal(err)
			}
			log, _ := os.ReadFile(filepath.Join(work, "a", "build.log"))
			t.Logf("build log:\n%s", log)
			if !bytes.Equal(a, b) {
				t.Errorf("images from equal trees differ: %d and %d bytes", len(a), len(b))
			}
			kernel := "/boot/vmlinuz-" + kver
			if _, err := os.Stat(filepath.Join(work, "a", "root", kernel)); err != nil {
				kernel = "/usr/lib/modules/" + kver + "/vmlinuz"
			}
			wants := []string{"kernel " + kver + " of the image tree: image " + kernel + ", modules /",
				"drivers: generic", "no modules.dep", "modules (load order): ", "virtio_blk"}
			if arch != runtime.GOARCH {
				wants = append(wants, "arch "+arch+": the image tree's kernel is an "+arch+" kernel")
			}
			for _, want := range wants {
				if !strings.Contains(string(log), want) {
					t.Errorf("build log lacks %q", want)
				}
			}
		})
	}
}

// TestBuildSysrootKeepsHostOut builds from image trees whose links lead
// out of them, as a careless or hostile tree's may: absolute and climbing
// links to host files, links to host directories, a loop. A link resolves
// inside the tree or the build fails saying which file; no byte of the
// host's files reaches the image or the messages.
func TestBuildSysrootKeepsHostOut(t *testing.T) {
	noDefaultConfig(t)
	const kv = "6.1.0-test-amd64"
	const secret = "HOST-SECRET-5f2b9c"
	// The host side: a modules tree, a config and an init, each file
	// marked with the secret.
	host := t.TempDir()
	hostMods := filepath.Join(host, "modules", kv)
	if err := os.CopyFS(hostMods, os.DirFS(testModulesDir)); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(hostMods, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && (strings.HasSuffix(p, ".ko") || strings.HasSuffix(p, ".ko.xz")) {
			os.WriteFile(p, []byte(secret), 0o644)
		}
		return err
	})
	if err := os.WriteFile(filepath.Join(hostMods, "modules.dep"), []byte("kernel/"+secret+"/virtio_blk.ko.xz:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "gokdump.toml"), []byte("target = \"LABEL="+secret+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostInit := writeTestInit(t, host)
	if f, err := os.OpenFile(hostInit, os.O_APPEND|os.O_WRONLY, 0); err == nil {
		f.WriteString(secret)
		f.Close()
	}
	climb := strings.Repeat("../", 20)
	const noFile = "no such file or directory (its links lead to " // the host's path, taken in the tree

	for _, tt := range []struct {
		name string
		link string // in the tree, relative to its root
		to   string // the link's target
		fail string // what the error says; "" if the build succeeds
	}{
		{"module, absolute", "usr/lib/modules/" + kv + "/kernel/drivers/block/virtio_blk.ko.xz",
			hostMods + "/kernel/drivers/block/virtio_blk.ko.xz", noFile},
		{"module, climbing", "usr/lib/modules/" + kv + "/kernel/drivers/virtio/virtio.ko",
			climb + hostMods + "/kernel/drivers/virtio/virtio.ko", noFile},
		{"directory, absolute", "usr/lib/modules/" + kv + "/kernel", hostMods + "/kernel", noFile},
		{"directory, climbing", "usr/lib/modules/" + kv + "/kernel/drivers", climb + hostMods + "/kernel/drivers", noFile},
		{"modules tree", "usr/lib/modules/" + kv, hostMods, "no kernel in the image tree"},
		// Read in the tree, modules.dep is missing, and the fallback to
		// the modules' .modinfo finds this tree's modules are no ELF files.
		{"modules.dep", "usr/lib/modules/" + kv + "/modules.dep", hostMods + "/modules.dep", "malformed module index"},
		{"loop", "usr/lib/modules/" + kv + "/kernel/drivers/block/virtio_blk.ko.xz", "loop.ko", "too many levels of symbolic links"},
		{"config", "etc/gokdump.toml", filepath.Join(host, "gokdump.toml"), ""},
		{"init", "usr/lib/gokdump/init", hostInit, "no capture init found in the image tree"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := imageTree(t, kv)
			link := filepath.Join(root, tt.link)
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.to, link); err != nil {
				t.Fatal(err)
			}
			if tt.name == "loop" {
				if err := os.Symlink("virtio_blk.ko.xz", filepath.Join(filepath.Dir(link), "loop.ko")); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "initrd.img")
			var stdout, stderr bytes.Buffer
			code := run([]string{"build", "--sysroot", root, "-o", out, "--compress", "none"}, &stdout, &stderr)
			t.Logf("exit %d: %s", code, stderr.String())
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("a host file was read: %s", stderr.String())
			}
			if b, err := os.ReadFile(out); err == nil && bytes.Contains(b, []byte(secret)) {
				t.Errorf("a host file is in the image (exit %d)", code)
			}
			switch {
			case tt.fail == "" && code != 0:
				t.Errorf("exit %d\n%s", code, stderr.String())
			case tt.fail != "" && (code != 1 || !strings.Contains(stderr.String(), tt.fail)):
				t.Errorf("exit %d, stderr %q; want failure saying %q", code, stderr.String(), tt.fail)
			}
		})
	}
}

// TestBuildSysrootList: the file list of an image tree names each file by
// its path with the tree's links resolved in the tree, so gen_init_cpio,
// which follows links on this machine, reads the same files; a tree at a
// path the list cannot hold is refused before anything is written.
func TestBuildSysrootList(t *testing.T) {
	noDefaultConfig(t)
	root := imageTree(t, "6.1.0-test-amd64")
	var stdout, stderr bytes.Buffer
	if err := runBuild(context.Background(), &buildFlags{sysroot: root, list: true}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	mods := filepath.Join(root, "usr", "lib", "modules", "6.1.0-test-amd64")
	for _, want := range []string{
		"file /etc/gokdump.toml " + filepath.Join(root, "etc", "gokdump", "real.toml") + " 0600 0 0\n",
		"file /init " + filepath.Join(root, "usr", "lib", "gokdump", "init") + " 0755 0 0\n",
		"file /lib/modules/6.1.0-test-amd64/kernel/drivers/block/virtio_blk.ko.xz " + mods + "/kernel/drivers/block/virtio_blk.ko.xz 0644 0 0\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("list lacks %q:\n%s", want, stdout.String())
		}
	}

	// A tree, or a --format dir output, at a path the list cannot hold.
	spaced := filepath.Join(t.TempDir(), "my trees", "root")
	if err := os.MkdirAll(filepath.Dir(spaced), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root, spaced); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "my image")
	for _, f := range []*buildFlags{{sysroot: spaced, list: true}, {sysroot: imageTree(t, "6.1.0-test-amd64"), format: formatDir, out: out}} {
		stdout.Reset()
		err := runBuild(context.Background(), f, &stdout, &stderr)
		if !errors.Is(err, builder.ErrListName) || stdout.Len() != 0 {
			t.Errorf("%+v: %v, stdout %q", *f, err, stdout.String())
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--format dir wrote the tree although its list cannot be written: %v", err)
	}
}
