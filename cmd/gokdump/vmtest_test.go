package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

// kdumpConfig is a configuration with everything gokdump vmtest needs of
// an x86 kernel with its drivers built in.
var kdumpConfig = filepath.Join(repoRoot, "qemu-tests", "vmtest", "testdata", "kdump-amd64.config")

func TestVMTestUsage(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	os.WriteFile(kernel, fixture.BzImage("6.9.0-test #1"), 0o644)
	for _, args := range [][]string{
		{},
		{"--kernel", kernel, "extra"},
		{"--kernel", kernel, "--disk", "scsi"},
		{"--kernel", kernel, "--crash", "reboot"},
		{"--kernel", kernel, "--dump-level", "32"},
		{"--kernel", kernel, "--mem", "128M"},
		{"--kernel", kernel, "--mem", "1000"},
		{"--kernel", kernel, "--mem", "1.5K"},
		{"--kernel", kernel, "--cpus", "0"},
		{"--kernel", kernel, "--arch", "sparc"},
		{"--kernel", kernel, "--accel", "hvf"},
		{"--kernel", kernel, "--timeout", "-1s"},
		{"--kernel", kernel, "--crashkernel", "128M 64M"},
		{"--kernel", kernel, "--drgn", " "},
		{"--kernel", kernel, "--kconfig", kdumpConfig, "--no-kconfig"},
		{"--kernel", kernel, "--check-config", kdumpConfig},
		{"--check-config", kdumpConfig, "--disk", "sata"},
	} {
		code, stdout, stderr := gokdump(append([]string{"vmtest"}, args...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "'gokdump help vmtest'") {
			t.Errorf("vmtest %q: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
}

// TestVMTestCheckConfig: --check-config lists the options and exits 0 when
// kdump can work, 1 naming what is missing when it cannot (here
// CONFIG_CRASH_DUMP), 5 when the file is no configuration.
func TestVMTestCheckConfig(t *testing.T) {
	code, stdout, stderr := gokdump("vmtest", "--check-config", kdumpConfig)
	if code != exitOK || !strings.Contains(stdout, "ok   CONFIG_CRASH_DUMP") || !strings.Contains(stdout, "every option kdump needs is set") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	b := mustRead(t, kdumpConfig)
	cut := filepath.Join(t.TempDir(), ".config")
	os.WriteFile(cut, bytes.Replace(b, []byte("CONFIG_CRASH_DUMP=y\n"), []byte("# CONFIG_CRASH_DUMP is not set\n"), 1), 0o644)
	code, stdout, stderr = gokdump("vmtest", "--check-config", cut)
	if code != exitFailed || !strings.Contains(stdout, "MISS CONFIG_CRASH_DUMP") || !strings.Contains(stdout, "missing for kdump: CONFIG_CRASH_DUMP\n") ||
		!strings.Contains(stderr, "lacks what kdump needs: CONFIG_CRASH_DUMP") {
		t.Errorf("without CONFIG_CRASH_DUMP: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = gokdump("vmtest", "--check-config", cut, "--json", "--disk", "virtio")
	var r vmtest.ConfigReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != exitFailed ||
		!reflect.DeepEqual(r.Missing, []string{"CONFIG_CRASH_DUMP", "CONFIG_VIRTIO_BLK"}) {
		t.Errorf("--json: exit %d, %v, %+v\n%s", code, err, r, stdout)
	}
	code, _, stderr = gokdump("vmtest", "--check-config", filepath.Join(repoRoot, "go.mod"))
	if code != exitSetup || !strings.Contains(stderr, "cannot be read as a kernel configuration") {
		t.Errorf("go.mod: exit %d %s", code, stderr)
	}
}

// TestVMTestExitCodes: a kernel that cannot do kdump exits 1 (phase
// config: nothing boots), one that cannot be tested 5; --junit is written
// either way, and validates.
func TestVMTestExitCodes(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	os.WriteFile(kernel, fixture.BzImage("6.9.0-test (me@here) #1 SMP"), 0o644)
	cut := filepath.Join(dir, "config")
	// Neither kexec system call: nothing could load the capture kernel.
	noKexec := bytes.Replace(mustRead(t, kdumpConfig), []byte("CONFIG_KEXEC_FILE=y\n"), nil, 1)
	os.WriteFile(cut, bytes.Replace(noKexec, []byte("CONFIG_KEXEC=y\n"), nil, 1), 0o644)
	junit := filepath.Join(dir, "out.xml")

	code, stdout, stderr := gokdump("vmtest", "--kernel", kernel, "--kconfig", cut, "--junit", junit, "--json")
	var r vmtest.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != exitFailed || r.Result != vmtest.Fail ||
		r.FailedPhase != vmtest.PhaseConfig || !strings.Contains(stderr, "kdump failed in phase config: the kernel's configuration lacks CONFIG_KEXEC_FILE") {
		t.Errorf("config failure: exit %d, %v, %+v\n%s", code, err, r, stderr)
	}
	doc := mustRead(t, junit)
	if err := fixture.CheckJUnit(doc); err != nil || !bytes.Contains(doc, []byte(`<failure message="kdump failed in phase config`)) {
		t.Errorf("junit: %v\n%s", err, doc)
	}

	code, stdout, stderr = gokdump("vmtest", "--kernel", filepath.Join(dir, "none"), "--junit", junit)
	if code != exitSetup || !strings.Contains(stdout, "ERROR: the test could not run") || !strings.Contains(stderr, "gokdump vmtest: the test could not run") {
		t.Errorf("setup error: exit %d\n%s%s", code, stdout, stderr)
	}
	doc = mustRead(t, junit)
	if err := fixture.CheckJUnit(doc); err != nil || !bytes.Contains(doc, []byte(`errors="1"`)) || !bytes.Contains(doc, []byte(`type="setup"`)) {
		t.Errorf("junit: %v\n%s", err, doc)
	}

	// A --junit that cannot be written is refused before the run.
	code, _, stderr = gokdump("vmtest", "--kernel", kernel, "--kconfig", cut, "--junit", filepath.Join(dir, "no", "such", "dir", "x.xml"))
	if code != exitSetup || !strings.Contains(stderr, "cannot be written") {
		t.Errorf("unwritable --junit: exit %d %s", code, stderr)
	}
}

// TestReadmeVMTestJSON: README's gokdump vmtest section documents every
// key of the --json report.
func TestReadmeVMTestJSON(t *testing.T) {
	readme := string(mustRead(t, filepath.Join(repoRoot, "README.md")))
	start := strings.Index(readme, "### gokdump vmtest")
	if start < 0 {
		t.Fatal("README has no section ### gokdump vmtest")
	}
	section := readme[start:]
	if end := strings.Index(section[4:], "\n## "); end > 0 {
		section = section[:end+4]
	}
	for _, key := range jsonKeys(reflect.TypeOf(vmtest.Report{})) {
		if !strings.Contains(section, "`"+key+"`") {
			t.Errorf("README's gokdump vmtest section does not document the JSON key %s", key)
		}
	}
}

// jsonKeys lists the JSON keys of a struct type and of the structs in it.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() == "time" {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			keys = append(keys, name)
			walk(f.Type)
		}
	}
	walk(t)
	return keys
}

// TestVMTestArch: --arch takes Go's and the kernel's names of both
// architectures vmtest boots; an arm64 kernel is tested like an x86 one
// (no refusal): one that is not what --arch says is a setup error (exit
// 5), and so is a riscv64 --arch, which the flag refuses first.
func TestVMTestArch(t *testing.T) {
	for _, tt := range []struct{ arch, want string }{
		{"", ""}, {"amd64", "amd64"}, {"x86_64", "amd64"}, {"arm64", "arm64"}, {"aarch64", "arm64"},
	} {
		f := vmtestFlags{arch: tt.arch, drgn: "drgn", disk: "nvme", crash: "sysrq", level: 31, accel: "auto",
			timeout: time.Minute, crashkernel: "128M", cpus: 1}
		o, err := f.options(streams{err: io.Discard})
		if err != nil || o.Arch != tt.want {
			t.Errorf("--arch %q: %q %v, want %q", tt.arch, o.Arch, err, tt.want)
		}
	}
	dir := t.TempDir()
	kernel := filepath.Join(dir, "Image")
	// An arm64 Image header ("ARM\x64" at 0x38) and a version banner.
	img := make([]byte, 1<<12)
	copy(img[0x38:], "ARM\x64")
	copy(img[0x800:], "Linux version 6.12.0-test (me@here) #1 SMP\x00")
	os.WriteFile(kernel, img, 0o644)
	code, stdout, stderr := gokdump("vmtest", "--kernel", kernel, "--arch", "x86_64", "--json")
	var r vmtest.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != exitSetup || r.Kernel.Arch != "arm64" ||
		!strings.Contains(r.Error, "is an arm64 kernel, not amd64") || strings.Contains(r.Error, "not supported") {
		t.Errorf("an arm64 Image with --arch x86_64: exit %d, %v, %+v\n%s", code, err, r, stderr)
	}
	if code, _, stderr := gokdump("vmtest", "--kernel", kernel, "--arch", "riscv64"); code != exitUsage || !strings.Contains(stderr, "--arch \"riscv64\"") {
		t.Errorf("--arch riscv64: exit %d %s", code, stderr)
	}
}
