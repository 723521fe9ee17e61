package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// repoRoot is the checkout this test runs in.
const repoRoot = "../.."

func runMake(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "-C", repoRoot}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// otherArch is the architecture make builds besides the host's
// (OTHER_ARCH).
var otherArch = map[bool]string{true: "amd64", false: "arm64"}[runtime.GOARCH == "arm64"]

// TestMakeInstallPrefix: make install with PREFIX=/usr/local puts the
// programs, unit and docs under it, names its gokdump in the unit and the
// hooks, puts the kernel-install plugin where kernel-install looks, and
// the installed gokdump finds its init; make uninstall takes it all back
// but the config.
func TestMakeInstallPrefix(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	fixture.NeedTool(t, "make")
	dest, bin := t.TempDir(), t.TempDir()
	vars := []string{"DESTDIR=" + dest, "PREFIX=/usr/local", "BIN=" + bin, "VERSION=9.8.7-test", "COMMIT=0123456789abcdef"}
	runMake(t, append([]string{"install"}, vars...)...)
	at := func(p string) string { return filepath.Join(dest, p) }
	for p, mode := range map[string]os.FileMode{
		"/usr/local/bin/gokdump":                               0o755,
		"/usr/local/lib/gokdump/init":                          0o755,
		"/usr/local/lib/gokdump/vmtest-init":                   0o755,
		"/usr/local/lib/gokdump/" + otherArch + "/init":        0o755,
		"/usr/local/lib/gokdump/" + otherArch + "/init-s3":     0o755,
		"/usr/local/lib/gokdump/" + otherArch + "/vmtest-init": 0o755,
		"/usr/local/lib/systemd/system/gokdump.service":        0o644,
		"/etc/kernel/postinst.d/zz-gokdump":                    0o755,
		"/etc/kernel/postrm.d/zz-gokdump":                      0o755,
		"/usr/lib/kernel/install.d/60-gokdump.install":         0o755,
		"/usr/local/share/doc/gokdump/README.md":               0o644,
		"/usr/local/share/doc/gokdump/gokdump.toml.example":    0o644,
		"/etc/gokdump.toml":                                    0o600,
	} {
		fi, err := os.Stat(at(p))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", p, fi, err, mode)
		}
	}
	for _, gone := range []string{"/etc/systemd", "/usr/local/lib/kernel", "/usr/bin"} {
		if _, err := os.Stat(at(gone)); err == nil {
			t.Errorf("%s was written", gone)
		}
	}
	unit := string(mustRead(t, at("/usr/local/lib/systemd/system/gokdump.service")))
	for _, want := range []string{"\nExecStart=/usr/local/bin/gokdump rebuild --if-needed\n", "\nExecStop=/usr/local/bin/gokdump unload\n",
		"\nDocumentation=file:///usr/local/share/doc/gokdump/README.md\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "/usr/bin/gokdump") {
		t.Errorf("the unit names /usr/bin/gokdump:\n%s", unit)
	}
	for _, h := range []string{"/etc/kernel/postinst.d/zz-gokdump", "/usr/lib/kernel/install.d/60-gokdump.install"} {
		if s := string(mustRead(t, at(h))); !strings.Contains(s, "${GOKDUMP:-/usr/local/bin/gokdump}") || strings.Contains(s, "/usr/bin/gokdump") {
			t.Errorf("%s does not run /usr/local/bin/gokdump:\n%s", h, s)
		}
	}
	out, err := exec.Command(at("/usr/local/bin/gokdump"), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gokdump 9.8.7-test\ncommit:  0123456789abcdef") {
		t.Errorf("installed gokdump version: %v\n%s", err, out)
	}
	// The installed gokdump finds the installed init (PREFIX/lib/gokdump).
	out, err = exec.Command(at("/usr/local/bin/gokdump"), "build", "--list", "--no-config", "--drivers", "none",
		"-o", filepath.Join(t.TempDir(), "gen")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "init: "+at("/usr/local/lib/gokdump/init")+" (installed)") {
		t.Errorf("installed build --list: %v\n%s", err, out)
	}
	// ... and the other architecture's, under PREFIX/lib/gokdump/ARCH/.
	out, err = exec.Command(at("/usr/local/bin/gokdump"), "build", "--list", "--no-config", "--drivers", "none",
		"--arch", otherArch, "-o", filepath.Join(t.TempDir(), "gen")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "init: "+at("/usr/local/lib/gokdump/"+otherArch+"/init")+" (installed)") {
		t.Errorf("installed build --list --arch %s: %v\n%s", otherArch, err, out)
	}
	// The installed gokdump vmtest finds both installed inits: a run that
	// is cut short after a second of boot has built its images with them.
	if qemu, err := exec.LookPath("qemu-system-x86_64"); err == nil && qemu != "" {
		kernel := fixture.KernelImages(t)[0]
		cmd := exec.Command(at("/usr/local/bin/gokdump"), "vmtest", "--kernel", kernel, "--no-kconfig",
			"--accel", "tcg", "--timeout", "1s", "--json")
		cmd.Dir = t.TempDir() // no checkout to compile from
		out, err := cmd.Output()
		var rep struct {
			FailedPhase string `json:"failed_phase"`
			Stage1Init  string `json:"stage1_init"`
			CaptureInit string `json:"capture_init"`
		}
		var ee *exec.ExitError
		if jerr := json.Unmarshal(out, &rep); jerr != nil || !errors.As(err, &ee) || ee.ExitCode() != exitFailed || rep.FailedPhase != "boot" {
			t.Errorf("installed vmtest: %v, %v, failed phase %q\n%s", err, jerr, rep.FailedPhase, out)
		}
		if rep.Stage1Init != at("/usr/local/lib/gokdump/vmtest-init")+" (installed)" ||
			rep.CaptureInit != at("/usr/local/lib/gokdump/init")+" (installed)" {
			t.Errorf("installed vmtest used %q and %q", rep.Stage1Init, rep.CaptureInit)
		}
	} else {
		fixture.Missing(t, "qemu-system-x86_64 is not installed: gokdump vmtest's inits not tried")
	}
	// A second install keeps the admin's config.
	os.WriteFile(at("/etc/gokdump.toml"), []byte("target = \"LABEL=MINE\"\n"), 0o600)
	runMake(t, append([]string{"install"}, vars...)...)
	sameBytes(t, at("/etc/gokdump.toml"), []byte("target = \"LABEL=MINE\"\n"))

	runMake(t, append([]string{"uninstall"}, vars...)...)
	var left []string
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, strings.TrimPrefix(p, dest))
		}
		return nil
	})
	if !slices.Equal(left, []string{"/etc/gokdump.toml"}) {
		t.Errorf("after uninstall: %q", left)
	}
}

// TestMakeDist: the tarball holds the committed source and VERSION and
// COMMIT files, and nothing built or cached.
func TestMakeDist(t *testing.T) {
	if testing.Short() {
		t.Skip("archives the tree")
	}
	fixture.NeedTool(t, "git")
	runMake(t, "dist", "VERSION=9.8.7-dist", "COMMIT=feedface")
	tgz := filepath.Join(repoRoot, "out", "gokdump-9.8.7-dist.tar.gz")
	defer os.Remove(tgz)
	f, err := os.Open(tgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "gokdump-9.8.7-dist/")
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d", h.Name, h.Uid, h.Gid)
		}
		var b strings.Builder
		if name == "VERSION" || name == "COMMIT" {
			io.Copy(&b, tr)
		}
		files[name] = b.String()
	}
	for _, want := range []string{"go.mod", "Makefile", "README.md", "cmd/gokdump/main.go", "debian/rules", "configs/gokdump.toml"} {
		if _, ok := files[want]; !ok {
			t.Errorf("the tarball lacks %s", want)
		}
	}
	if files["VERSION"] != "9.8.7-dist\n" || files["COMMIT"] != "feedface\n" {
		t.Errorf("VERSION %q, COMMIT %q", files["VERSION"], files["COMMIT"])
	}
	for name := range files {
		if strings.HasPrefix(name, ".cache") || strings.HasPrefix(name, "bin/") || name == "gokdump" {
			t.Errorf("the tarball holds %s", name)
		}
	}
}

// TestDebianPackage builds the .deb (scripts/build-deb) and installs, checks
// and purges it in a Debian 12 chroot (scripts/test-deb).
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package and a chroot")
	}
	if os.Getuid() != 0 {
		fixture.Missing(t, "the Debian package test needs root (chroot)")
	}
	for _, tool := range []string{"dpkg-buildpackage", "dh", "debootstrap"} {
		fixture.NeedTool(t, tool)
	}
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "build-deb")).Output()
	if err != nil {
		t.Fatalf("build-deb: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out))
	defer os.Remove(deb)
	log, err := exec.Command(filepath.Join(repoRoot, "scripts", "test-deb"), deb).CombinedOutput()
	t.Logf("test-deb %s:\n%s", filepath.Base(deb), log)
	if err != nil {
		t.Fatalf("test-deb: %v", err)
	}
	for _, want := range []string{"ok: gokdump version: gokdump ", "ok: the unit runs /usr/bin/gokdump", "ok: nothing built, loaded or enabled",
		"ok: purge removed all it installed"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("test-deb did not say %q", want)
		}
	}
}
