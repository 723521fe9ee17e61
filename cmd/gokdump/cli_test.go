package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/crashdir"
)

func TestInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Bool("json", false, "")
	fs.Bool("f", false, "")
	fs.Int("d", 31, "")
	fs.String("o", "", "")
	for _, tt := range []struct{ in, want []string }{
		{[]string{"DUMP", "--json"}, []string{"--json", "--", "DUMP"}},
		{[]string{"OUT", "-d", "1"}, []string{"-d", "1", "--", "OUT"}},
		{[]string{"-f", "OUT", "-d=1"}, []string{"-f", "-d=1", "--", "OUT"}},
		{[]string{"-o", "-", "x"}, []string{"-o", "-", "--", "x"}},
		{[]string{"-", "-d", "-1"}, []string{"-d", "-1", "--", "-"}},
		{[]string{"a", "--", "-d", "b"}, []string{"--", "a", "-d", "b"}},
		{[]string{"--nope", "a"}, []string{"--nope", "--", "a"}},
		{[]string{"a", "-d"}, []string{"-d", "--", "a"}},
	} {
		if got := interspersed(fs, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Flags after the arguments work as before them, for every command that
// takes arguments; what is wrong with a command line is said.
func TestCommandLines(t *testing.T) {
	core := testVmcore(t, 48, 1764246000)
	out := filepath.Join(t.TempDir(), "dump")
	if code, _, stderr := gokdump("save", out, "-d", "1", "--quiet", "--vmcore", core); code != exitOK {
		t.Fatalf("save OUT -d 1: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := gokdump("info", out, "--json")
	var in map[string]any
	if code != exitOK || json.Unmarshal([]byte(stdout), &in) != nil || in["dump_level"] != float64(1) {
		t.Errorf("info DUMP --json: exit %d: %s%s", code, stdout, stderr)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage: gokdump COMMAND"},
		{[]string{"frob"}, exitUsage, `unknown command "frob"; 'gokdump help' lists them`},
		{[]string{"help", "frob"}, exitUsage, `no command "frob"`},
		{[]string{"info"}, exitUsage, "gokdump info: missing DUMP | DIR\n'gokdump help info' shows"},
		{[]string{"info", "a", "b"}, exitUsage, `takes DUMP | DIR, got 2 arguments: ["a" "b"]`},
		{[]string{"savecore", "dev"}, exitUsage, "missing DIR"},
		{[]string{"save", "out", "--frob"}, exitUsage, "gokdump save: unknown flag: -frob\n"},
		{[]string{"save", "out", "-d", "x"}, exitUsage, `invalid value "x" for flag -d`},
		{[]string{"build"}, exitUsage, "-o PATH is required"},
		{[]string{"status", "extra"}, exitUsage, `takes no arguments, got ["extra"]`},
		{[]string{"load", "--dry-run", "--initrd", ""}, exitUsage, `--initrd "": name the image, or --no-initrd`},
		{[]string{"load", "--dry-run", "--initrd=", "--no-initrd"}, exitUsage, "--no-initrd and --initrd: give one"},
		{[]string{"info", filepath.Join(t.TempDir(), "nothing")}, exitFailed, "nothing does not exist\n  detail: stat "},
	} {
		code, stdout, stderr := gokdump(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("%q: exit %d, want %d; stdout %q; stderr:\n%s", tt.args, code, tt.code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"help"}, {"help", "save"}, {"save", "-h"}, {"info", "--help"}} {
		if code, stdout, _ := gokdump(args...); code != exitOK || !strings.Contains(stdout, "usage: gokdump") {
			t.Errorf("%q: exit %d:\n%s", args, code, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		code, stdout, stderr := gokdump(args...)
		if code != exitOK || !strings.HasPrefix(stdout, "gokdump ") || !strings.Contains(stdout, "\ngo:      go1.") {
			t.Errorf("%q: exit %d:\n%s%s", args, code, stdout, stderr)
		}
	}
	// What the Makefile sets wins; the toolchain's VCS stamp is used
	// otherwise.
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"}, {Key: "-trimpath", Value: "true"}, {Key: "CGO_ENABLED", Value: "0"},
		{Key: "-ldflags", Value: "-s -w"}, {Key: "GOARCH", Value: "amd64"},
	}}
	var b bytes.Buffer
	writeVersion(&b, bi)
	for _, want := range []string{"gokdump devel\n", "commit:  0123abcd, with uncommitted changes, committed 2026-12-01T10:00:00Z\n",
		"go:      go1.26.0 ", "build:   -trimpath=true CGO_ENABLED=0 -ldflags=-s -w\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	version, commit = "v1.2.3", "fedcba98"
	defer func() { version, commit = "", "" }()
	b.Reset()
	writeVersion(&b, bi)
	if !strings.HasPrefix(b.String(), "gokdump v1.2.3\ncommit:  fedcba98,") {
		t.Errorf("with ldflags:\n%s", b.String())
	}
}

// TestExplainedErrors: one line in the user's terms, the chain as detail.
func TestExplainedErrors(t *testing.T) {
	chain := fmt.Errorf("printk: read prb: %w", fmt.Errorf("printk: read 8 bytes at 0xffffffff85a622c0: %w",
		fmt.Errorf("kmem: walk 0xffffffff85a622c0 (level 4 entry 0x0): %w", vmcore.ErrHole)))
	var b bytes.Buffer
	printError(&b, "dmesg", fmt.Errorf("/var/crash/x/vmcore: %w", explainLog(chain)))
	want := "gokdump dmesg: /var/crash/x/vmcore: the kernel log's pages are not in this dump\n" +
		"  detail: printk: read prb: printk: read 8 bytes at 0xffffffff85a622c0: kmem: walk 0xffffffff85a622c0 (level 4 entry 0x0): vmcore: address not in dump\n"
	if b.String() != want {
		t.Errorf("got:\n%swant:\n%s", b.String(), want)
	}
	excluded := fmt.Errorf("printk: %w", fmt.Errorf("diskdump: pfn 0x10: %w: %w", diskdump.ErrExcluded, vmcore.ErrHole))
	if first, _ := summarize(explainLog(excluded)); !strings.Contains(first, "excluded them") {
		t.Errorf("excluded: %s", first)
	}
	// An error nobody explained is printed as it is, on one line.
	b.Reset()
	printError(&b, "x", errors.New("plain"))
	if b.String() != "gokdump x: plain\n" {
		t.Errorf("%q", b.String())
	}
}

// TestInfoDir: a dump directory is read as its dump; the directory above
// lists them.
func TestInfoDir(t *testing.T) {
	base := t.TempDir()
	core := testVmcore(t, 48, 1764246000)
	when := []time.Time{time.Unix(1764246000, 0), time.Unix(1764249600, 0)}
	for i, tm := range when {
		d := filepath.Join(base, crashdir.Name(tm, 0))
		os.Mkdir(d, 0o700)
		name := crashdir.VMCore
		if i == 1 {
			name = crashdir.VMCoreIncomplete
		}
		if code, _, stderr := gokdump("save", "-q", "-d", "1", "--vmcore", core, filepath.Join(d, name)); code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if i == 0 {
			os.WriteFile(filepath.Join(d, crashdir.DmesgFile), []byte("log\n"), 0o600)
		}
	}
	first := filepath.Join(base, crashdir.Name(when[0], 0))
	code, stdout, stderr := gokdump("info", first)
	if code != exitOK || !strings.Contains(stdout, "dump:        "+filepath.Join(first, crashdir.VMCore)+"\n") {
		t.Errorf("info DIR: exit %d:\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = gokdump("info", base)
	for _, want := range []string{
		"2025-11-27 12:20:00      complete", filepath.Join(first, crashdir.VMCore),
		"2025-11-27 13:20:00      incomplete", crashdir.VMCoreIncomplete + " (no vmcore-dmesg.txt)",
		"'gokdump info " + filepath.Join(base, crashdir.Name(when[1], 0)) + "' tells what happened",
	} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("info BASE: exit %d, lacks %q:\n%s%s", code, want, stdout, stderr)
		}
	}
	code, stdout, _ = gokdump("info", "--json", base)
	var list struct {
		Dir   string `json:"dir"`
		Dumps []struct {
			Name, State, File string
			Size              int64
			Dmesg             bool
			Time              time.Time
		} `json:"dumps"`
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &list) != nil || list.Dir != base || len(list.Dumps) != 2 ||
		list.Dumps[0].State != "complete" || !list.Dumps[0].Dmesg || list.Dumps[1].State != "incomplete" ||
		!list.Dumps[1].Time.Equal(when[1]) || list.Dumps[0].Size == 0 {
		t.Errorf("info --json BASE: exit %d:\n%s", code, stdout)
	}
	// A directory of nothing says so.
	code, _, stderr = gokdump("info", t.TempDir())
	if code != exitFailed || !strings.Contains(stderr, "holds no dump") {
		t.Errorf("empty: exit %d: %s", code, stderr)
	}
	// dmesg takes a dump directory too.
	if code, _, stderr := gokdump("dmesg", first); code != exitFailed || !strings.Contains(stderr, filepath.Join(first, crashdir.VMCore)+": the dump's VMCOREINFO lacks") {
		t.Errorf("dmesg DIR: exit %d: %s", code, stderr)
	}
}

// TestSavecoreSymlinkedDir: DIR given on the command line may be a
// symbolic link (/var/crash often is); savecore follows it and says so.
func TestSavecoreSymlinkedDir(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "disk")
	os.WriteFile(dev, flattenedDump(t, true), 0o600)
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(dir, "crash")
	os.Symlink(real, link)
	code, stdout, stderr := gokdump("savecore", dev, filepath.Join(link, "sub"))
	if code != exitOK || !strings.Contains(stdout, link+" leads to "+real) {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if m, _ := filepath.Glob(filepath.Join(real, "sub", "*", crashdir.VMCore)); len(m) != 1 {
		t.Errorf("dump not under the link's target: %v", m)
	}
	// A link below DIR, where the dump directory goes, is not followed:
	// what is planted on the target is not trusted.
	planted := filepath.Join(dir, "planted")
	os.Mkdir(planted, 0o700)
	base2 := filepath.Join(dir, "base2")
	os.Mkdir(base2, 0o700)
	os.Symlink(planted, filepath.Join(base2, crashdir.Name(time.Unix(1795782722, 0), 0)))
	if code, stdout, stderr := gokdump("savecore", dev, base2); code != exitOK || strings.Contains(stdout, "leads to") {
		t.Errorf("exit %d: %s%s", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(planted); len(ents) != 0 {
		t.Errorf("savecore wrote through a link planted in DIR: %v", ents)
	}
	if m, _ := filepath.Glob(filepath.Join(base2, "*", crashdir.VMCore)); len(m) != 1 {
		t.Errorf("saved %v", m)
	}
}
