package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"golang.org/x/sys/unix"
)

// gokdump runs the command line and returns its exit code and output.
func gokdump(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// sameBytes fails the test unless path holds want.
func sameBytes(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed: %d bytes, was %d", path, len(got), len(want))
	}
}

// noLeftovers fails the test if dir holds anything but names.
func noLeftovers(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+e.Name()+" ") {
			t.Errorf("left behind in %s: %s", dir, e.Name())
		}
	}
}

func TestSaveRefusesItsInput(t *testing.T) {
	core := testVmcore(t, 48, 1764246000)
	orig, _ := os.ReadFile(core)
	dir := filepath.Dir(core)
	hard := filepath.Join(dir, "hard")
	if err := os.Link(core, hard); err != nil {
		t.Fatal(err)
	}
	soft := filepath.Join(t.TempDir(), "soft")
	os.Symlink(core, soft)
	// The input reached through a directory link: replacing the link
	// would cut the input's path.
	linkDir := filepath.Join(t.TempDir(), "cores")
	os.Symlink(dir, linkDir)

	for _, tt := range []struct {
		name, vmcore, out, want string
	}{
		{"same path", core, core, "is the input"},
		{"hard link", core, hard, "is the input"},
		{"output is a symlink to the input", core, soft, "is the input"},
		{"input is a symlink to the output", soft, core, "is the input"},
		{"output is the input's directory", core, dir, "on the way to the input"},
		{"output is a link on the input's path", filepath.Join(linkDir, "vmcore"), linkDir, "on the way to the input"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := gokdump("save", "-f", "--quiet", "--vmcore", tt.vmcore, tt.out)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
			}
			sameBytes(t, core, orig)
			noLeftovers(t, dir, "vmcore", "hard")
		})
	}
}

func TestSaveChecksBeforeWriting(t *testing.T) {
	core := testVmcore(t, 48, 1764246000)
	dir := t.TempDir()
	out := filepath.Join(dir, "dump")
	old := bytes.Repeat([]byte("an older dump "), 1000)
	if err := os.WriteFile(out, old, 0o600); err != nil {
		t.Fatal(err)
	}
	notCore := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notCore, []byte("not a vmcore\n"), 0o600)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-f", "--format", "ELF"}, exitUsage, `--format "ELF": want kdump or elf`},
		{[]string{"-f", "--workers", "20000"}, exitUsage, "--workers 20000: want 0 (one per CPU) to "},
		{[]string{"-f", "--workers", "-1"}, exitUsage, "--workers -1"},
		{[]string{"-f", "-d", "99"}, exitUsage, "-d: "},
		{[]string{"-f", "--compress", "lz4"}, exitUsage, "--compress: "},
		{[]string{"-f", "--format", "elf", "--compress", "zlib"}, exitUsage, "not compressed"},
		{[]string{"-f", "--vmcore", filepath.Join(dir, "absent")}, exitFailed, "no such file"},
		{[]string{"-f", "--vmcore", notCore}, exitFailed, notCore + " is not a crash dump"},
		{nil, exitFailed, "exists (-f replaces it"},
	} {
		args := append([]string{"save", "--quiet", "--vmcore", core}, tt.args...)
		code, _, stderr := gokdump(append(args, out)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, stderr, tt.code, tt.want)
		}
		sameBytes(t, out, old)
		noLeftovers(t, dir, "dump", "absent")
	}
	// A new OUT is not created by a run that fails.
	fresh := filepath.Join(dir, "fresh")
	if code, _, _ := gokdump("save", "--format", "ELF", "--vmcore", core, fresh); code != exitUsage {
		t.Errorf("exit %d", code)
	}
	if code, _, _ := gokdump("save", "--vmcore", filepath.Join(dir, "absent"), fresh); code != exitFailed {
		t.Errorf("exit %d", code)
	}
	noLeftovers(t, dir, "dump")
	if code, _, stderr := gokdump("save", "--vmcore", core, filepath.Join(dir, "nodir", "dump")); code != exitFailed || !strings.Contains(stderr, "nodir") {
		t.Errorf("missing directory: exit %d, %q", code, stderr)
	}
}

func TestSaveReplacesOnlyWhenDone(t *testing.T) {
	core := testVmcore(t, 48, 1764246000)
	dir := t.TempDir()
	out := filepath.Join(dir, "dump")
	if code, _, stderr := gokdump("save", "--quiet", "-d", "1", "--vmcore", core, out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	first, _ := os.ReadFile(out)
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// -d 31 on the same input is another file; -f replaces the first.
	if code, _, stderr := gokdump("save", "--quiet", "-f", "-d", "31", "--format", "elf", "--vmcore", core, out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	second, _ := os.ReadFile(out)
	if bytes.Equal(first, second) || !bytes.HasPrefix(second, []byte("\x7fELF")) {
		t.Error("-f did not replace the dump")
	}
	noLeftovers(t, dir, "dump")
}

// A full disk leaves a readable dump flagged incomplete: exit 3, and an
// existing OUT is not replaced by it.
func TestSaveIncomplete(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	core := testVmcore(t, 3000, 1764246000)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(2<<20)); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		for range 50 {
			if unix.Unmount(dir, 0) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	out := filepath.Join(dir, "dump")
	old := []byte("an older dump")
	os.WriteFile(out, old, 0o600)
	code, _, stderr := gokdump("save", "--quiet", "-f", "-d", "0", "--compress", "none", "--vmcore", core, out)
	if code != exitIncomplete || !strings.Contains(stderr, out+".incomplete is incomplete but readable") {
		t.Fatalf("exit %d, want %d: %s", code, exitIncomplete, stderr)
	}
	sameBytes(t, out, old)
	noLeftovers(t, dir, "dump", "dump.incomplete")
	os.Remove(out)
	os.Remove(out + ".incomplete")

	code, _, stderr = gokdump("save", "--quiet", "-d", "0", "--compress", "none", "--vmcore", core, out)
	if code != exitIncomplete || !strings.Contains(stderr, out+" is incomplete but readable") {
		t.Fatalf("exit %d, want %d: %s", code, exitIncomplete, stderr)
	}
	d, err := anydump.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Incomplete {
		t.Error("not flagged incomplete")
	}
	d.Close()
	noLeftovers(t, dir, "dump")
}

func TestHelpTellsExitCodes(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "save"}, {"help", "savecore"}} {
		code, stdout, _ := gokdump(args...)
		if code != exitOK || !strings.Contains(stdout, "exit codes: 0 ") || !strings.Contains(stdout, "3 saved, but") {
			t.Errorf("%q: exit %d:\n%s", args, code, stdout)
		}
	}
	if _, stdout, _ := gokdump("help", "savecore"); !strings.Contains(stdout, "4 no flattened stream on DEVICE") {
		t.Errorf("savecore help:\n%s", stdout)
	}
}
