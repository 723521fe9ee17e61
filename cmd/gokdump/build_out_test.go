package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestBuildOutputs: an existing image is not replaced without --force;
// --format dir replaces only a tree it wrote, with --force; --list gives
// a list whose every file exists, generated ones where -o says.
func TestBuildOutputs(t *testing.T) {
	noDefaultConfig(t)
	initPath := writeTestInit(t, t.TempDir())
	cfg := filepath.Join(t.TempDir(), "gokdump.toml")
	os.WriteFile(cfg, []byte("target = \"LABEL=DUMPS\"\n"), 0o600)
	base := []string{"build", "--init", initPath, "--arch", "amd64", "--config", cfg, "--kernel-modules", testModulesDir,
		"--drivers", "none", "--module", "virtio_blk", "--compress", "none"}
	dir := t.TempDir()
	img := filepath.Join(dir, "capture.img")
	if code, _, stderr := gokdump(append(base, "-o", img)...); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	first := mustRead(t, img)
	os.WriteFile(img, []byte("precious"), 0o600)
	code, _, stderr := gokdump(append(base, "-o", img)...)
	if code != exitFailed || !strings.Contains(stderr, img+" exists (-f replaces it") {
		t.Errorf("existing image: exit %d: %s", code, stderr)
	}
	sameBytes(t, img, []byte("precious"))
	if code, _, stderr := gokdump(append(base, "-o", img, "--force")...); code != exitOK {
		t.Errorf("--force: exit %d: %s", code, stderr)
	}
	sameBytes(t, img, first)

	// --format dir.
	tree := filepath.Join(dir, "capture")
	if code, _, stderr := gokdump(append(base, "--format", "dir", "-o", tree)...); code != exitOK {
		t.Fatalf("dir: exit %d: %s", code, stderr)
	}
	code, _, stderr = gokdump(append(base, "--format", "dir", "-o", tree)...)
	if code != exitFailed || !strings.Contains(stderr, "is not empty (--force replaces") {
		t.Errorf("dir again: exit %d: %s", code, stderr)
	}
	os.WriteFile(filepath.Join(tree, "mine"), []byte("x"), 0o600)
	code, _, stderr = gokdump(append(base, "--format", "dir", "--force", "-o", tree)...)
	if code != exitOK || !strings.Contains(stderr, "replaced "+tree) {
		t.Errorf("dir --force: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(tree, "mine")); err == nil {
		t.Error("the old tree's file is still there")
	}
	if _, err := os.Stat(filepath.Join(tree, "init")); err != nil {
		t.Error(err)
	}
	noLeftovers(t, dir, "capture.img", "capture", "capture.list")
	// Not a tree of ours: never removed, even with --force.
	other := filepath.Join(dir, "other")
	os.MkdirAll(filepath.Join(other, "photos"), 0o700)
	code, _, stderr = gokdump(append(base, "--format", "dir", "--force", "-o", other)...)
	if code != exitFailed || !strings.Contains(stderr, "is no image tree gokdump wrote") {
		t.Errorf("dir --force over another directory: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(other, "photos")); err != nil {
		t.Error("another directory was touched")
	}

	// --list: -o is where the generated files go, and every file line
	// names a file that holds what the image holds.
	gen := filepath.Join(dir, "generated")
	code, stdout, stderr := gokdump(append(base, "--list", "-o", gen)...)
	if code != exitOK || !strings.Contains(stderr, "the list takes "+builder.ModuleListPath+" from "+gen+" (") ||
		!strings.Contains(stderr, "init: "+initPath+" (--init)") {
		t.Fatalf("--list: exit %d: %s", code, stderr)
	}
	files := archiveFiles(t, first)
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || (f[0] != "file" && f[0] != "dir" && f[0] != "nod") {
			t.Fatalf("not a gen_init_cpio line: %q", l)
		}
		if f[0] != "file" {
			continue
		}
		n++
		r, ok := files[f[1]]
		got, err := os.ReadFile(f[2])
		want := make([]byte, r.FileSize)
		if ok {
			r.ReadAt(want, 0)
		}
		if !ok || err != nil || string(got) != string(want) {
			t.Errorf("%s from %s: in the image %v, %v", f[1], f[2], ok, err)
		}
	}
	if n == 0 || strings.Contains(stdout, "<generated>") {
		t.Errorf("list:\n%s", stdout)
	}
	// -o of a directory that holds something: refused.
	if code, _, stderr := gokdump(append(base, "--list", "-o", gen)...); code != exitFailed || !strings.Contains(stderr, "not empty") {
		t.Errorf("--list into a full directory: exit %d: %s", code, stderr)
	}
	if code, _, stderr := gokdump(append(base, "--list", "-o", "-")...); code != exitUsage {
		t.Errorf("--list -o -: exit %d: %s", code, stderr)
	}
	// Without -o: a new directory, named.
	code, _, stderr = gokdump(append(base, "--list")...)
	i := strings.Index(stderr, " from ")
	if code != exitOK || i < 0 {
		t.Fatalf("--list: exit %d: %s", code, stderr)
	}
	tmp := strings.Fields(stderr[i+6:])[0]
	if _, err := os.Stat(filepath.Join(tmp, strings.TrimPrefix(builder.ModuleListPath, "/"))); err != nil {
		t.Errorf("generated file not in %s: %v", tmp, err)
	}
	os.RemoveAll(tmp)
}

// TestBuildEmptyFlags: --sysroot "" (an unset variable) is not the host.
func TestBuildEmptyFlags(t *testing.T) {
	for _, args := range [][]string{{"--sysroot", "", "--list"}, {"-o", ""}, {"--config=", "--list"}} {
		code, _, stderr := gokdump(append([]string{"build"}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "given empty (an unset variable?)") {
			t.Errorf("%q: exit %d: %s", args, code, stderr)
		}
	}
}

// TestBuildConfigErrorNamesTheFile: a config error, also one between two
// keys, names the file given and its line, once.
func TestBuildConfigErrorNamesTheFile(t *testing.T) {
	noDefaultConfig(t)
	bad := filepath.Join(t.TempDir(), "bad3.toml")
	os.WriteFile(bad, []byte("target = \"LABEL=x\"\nfailure_action = \"fallback\"\n"), 0o600)
	code, _, stderr := gokdump("build", "--init", writeTestInit(t, t.TempDir()), "--arch", "amd64", "--config", bad,
		"--drivers", "none", "-o", filepath.Join(t.TempDir(), "img"))
	if code != exitFailed || !strings.Contains(stderr, bad+" is not a valid configuration") ||
		!strings.Contains(stderr, "detail: config: "+bad+":2: failure_action: \"fallback\" needs fallback_target") ||
		strings.Contains(stderr, "gokdump.toml:") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// TestBuildPacksHooks: build packs every hook the config names (once,
// even when it is both a pre and a post hook) at its path, mode 0700, and
// refuses a dynamically linked one before writing anything.
func TestBuildPacksHooks(t *testing.T) {
	noDefaultConfig(t)
	initPath := writeTestInit(t, t.TempDir())
	hookDir := t.TempDir()
	hook := filepath.Join(hookDir, "notify")
	os.WriteFile(hook, mustRead(t, writeTestInit(t, t.TempDir())), 0o755)
	fail := filepath.Join(hookDir, "on-failure")
	os.WriteFile(fail, mustRead(t, writeTestInit(t, t.TempDir())), 0o755)
	cfg := filepath.Join(t.TempDir(), "gokdump.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("target = \"LABEL=DUMPS\"\npre_hooks = [%q]\npost_hooks = [%q]\nfailure_hook = %q\n", hook, hook, fail)), 0o600)
	img := filepath.Join(t.TempDir(), "capture.img")
	args := []string{"build", "--init", initPath, "--arch", "amd64", "--config", cfg, "--drivers", "none", "--compress", "none", "-o", img}
	code, _, stderr := gokdump(args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "hooks (mode 0700): "+hook+" "+fail+"\n") {
		t.Errorf("summary does not list the hooks:\n%s", stderr)
	}
	files := archiveFiles(t, mustRead(t, img))
	for _, h := range []string{hook, fail} {
		r, ok := files[h]
		if !ok {
			t.Errorf("%s not packed", h)
			continue
		}
		if r.Mode&0o7777 != 0o700 {
			t.Errorf("%s: mode %#o, want 0700", h, r.Mode&0o7777)
		}
	}

	// A dynamic executable (the host's own ls) cannot run in the image.
	ls := fixture.NeedTool(t, "ls")
	if out, _ := exec.Command("file", "-L", ls).Output(); len(out) > 0 && !bytes.Contains(out, []byte("dynamically linked")) {
		t.Skipf("%s is not dynamically linked here", ls)
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf("target = \"LABEL=DUMPS\"\npost_hooks = [%q]\n", ls)), 0o600)
	img2 := filepath.Join(t.TempDir(), "capture.img")
	code, _, stderr = gokdump(append(args[:len(args)-1], img2)...)
	if code != exitFailed || !strings.Contains(stderr, ls+": not a usable hook: dynamically linked") ||
		!strings.Contains(stderr, "CGO_ENABLED=0") {
		t.Errorf("dynamic hook: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(img2); err == nil {
		t.Error("an image was written with a hook that cannot run")
	}
}
