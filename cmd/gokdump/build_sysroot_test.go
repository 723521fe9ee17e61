package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
		"init: " + filepath.Join(root, "usr", "lib", "gokdump", "init") + " (flag)",
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
		{[]string{"--sysroot", two, "--kver", "5.10"}, "no kernel modules in the image tree: 5.10"},
		{[]string{"--sysroot", noInit}, "no capture init in the image tree at /usr/lib/gokdump/init"},
		{[]string{"--sysroot", t.TempDir()}, "no kernel modules in the image tree"},
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

// TestBuildSysrootDebianPackage is the image builder's case: a kernel
// package unpacked with dpkg -x (so no depmod output) by an unprivileged
// user, who then builds from it, twice, in two directories: the two
// images must be the same bytes.
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
	initPath := writeTestInit(t, base)
	for _, p := range []string{bin, initPath} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, deb := range debs {
		deb, _ := filepath.Abs(deb)
		t.Run(filepath.Base(filepath.Dir(deb)), func(t *testing.T) {
			work := filepath.Join(base, filepath.Base(filepath.Dir(deb)))
			// As that user: unpack the package twice, install the init and a
			// config into each tree, and build from each.
			script := `set -e
id -u
deb=$1 work=$2 bin=$3 init=$4
mkdir -p "$work"
for t in a b; do
	mkdir -p "$work/$t"
	dpkg -x "$deb" "$work/$t/root"
	mkdir -p "$work/$t/root/usr/lib/gokdump" "$work/$t/root/etc"
	cp "$init" "$work/$t/root/usr/lib/gokdump/init"
	printf 'target = "LABEL=DUMPS"\n' >"$work/$t/root/etc/gokdump.toml"
	(cd "$work/$t" && "$bin" build --sysroot root -o initrd.img 2>build.log)
done
`
			cmd := exec.Command("sh", "-c", script, "sh", deb, work, bin, initPath)
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
			for _, want := range []string{"drivers: generic", "no modules.dep", "modules (load order): ", "virtio_blk"} {
				if !strings.Contains(string(log), want) {
					t.Errorf("build log lacks %q", want)
				}
			}
		})
	}
}
