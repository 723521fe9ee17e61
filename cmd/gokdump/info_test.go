package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestInfoTruncated: info on a dump cut short says how many pages are
// past the end, never "complete"; --verify names the first bad page and
// fails.
func TestInfoTruncated(t *testing.T) {
	im := fixture.Core{Loads: []fixture.Load{fixture.RAM(0, 64, 64), fixture.RAM(256, 100, 100)}}.Build()
	path := filepath.Join(t.TempDir(), "vmcore")
	if err := im.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runInfo(path, false, true, &out); err != nil {
		t.Fatalf("whole file: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "elf, complete\n") || !strings.Contains(out.String(), "verify:      every page reads") {
		t.Errorf("whole file:\n%s", out.String())
	}
	if err := os.Truncate(path, int64(im.LoadOff[1])+30*4096); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runInfo(path, false, false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "format:      elf, truncated: 70 of 164 pages beyond the end of the file\n") ||
		strings.Contains(out.String(), "complete") {
		t.Errorf("cut file:\n%s", out.String())
	}
	out.Reset()
	err := runInfo(path, false, true, &out)
	if !errors.Is(err, errVerify) || !regexp.MustCompile(`verify: +.*70 of 164 pages`).MatchString(out.String()) {
		t.Errorf("--verify: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := runInfo(path, true, false, &out); err != nil {
		t.Fatal(err)
	}
	var in anydump.Info
	if err := json.Unmarshal(out.Bytes(), &in); err != nil || in.Complete || in.Check == nil || in.Check.Beyond != 70 {
		t.Errorf("--json: %v\n%s", err, out.String())
	}
}

// TestInfoEscapes: text from the dump reaches the terminal with its
// control characters escaped — a task name in the panic context can be
// set by any process.
func TestInfoEscapes(t *testing.T) {
	evil := "\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\r"
	in := &anydump.Info{
		Path: "vmcore", Format: "kdump", Complete: true, Release: "6.1" + evil, Version: evil, Machine: evil,
		Panic:    "Kernel panic - not syncing: " + evil,
		PanicLog: []string{"[    1.000000] CPU: 0 PID: 1 Comm: " + evil, "[    1.000001] é ok"},
	}
	var out bytes.Buffer
	writeInfo(&out, in, "")
	s := out.String()
	for _, c := range []string{"\x1b", "\x07", "\x9b", "\r", "\u202e"} {
		if strings.Contains(s, c) {
			t.Errorf("output holds %q:\n%q", c, s)
		}
	}
	for _, want := range []string{`\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\x0d`, "é ok"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	in.Panic, in.LogError = "", "printk: "+evil
	out.Reset()
	writeInfo(&out, in, "")
	if !strings.Contains(out.String(), `log:         unreadable (detail: printk: \x1b[2J`) {
		t.Errorf("log error:\n%s", out.String())
	}
}

// TestDmesgNoLog: a dump without a readable log makes dmesg fail.
func TestDmesgNoLog(t *testing.T) {
	im := fixture.Core{Loads: []fixture.Load{fixture.RAM(0, 4, 4)}}.Build()
	path := filepath.Join(t.TempDir(), "vmcore")
	if err := im.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"dmesg", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "gokdump dmesg: ") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestInfoMissing: a dump saved from a cut vmcore lists the memory the
// cut took, in both formats, and is not called complete.
func TestInfoMissing(t *testing.T) {
	core := testVmcore(t, 300, 1764246000)
	// Keep the headers and 100 of the 300 pages.
	if err := os.Truncate(core, 4096+100*4096); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"kdump", "elf"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "dump")
			args := []string{"save", "--quiet", "-d", "0", "--format", format, "--vmcore", core}
			if format == "elf" {
				args = append(args, "--compress", "none")
			}
			args = append(args, out)
			if code, _, stderr := gokdump(args...); code != exitIncomplete {
				t.Fatalf("save: exit %d, want %d:\n%s", code, exitIncomplete, stderr)
			}
			saved := out
			if _, err := os.Stat(saved); err != nil {
				saved = out + ".incomplete"
			}
			var b bytes.Buffer
			if err := runInfo(saved, false, false, &b); err != nil {
				t.Fatal(err)
			}
			stdout := b.String()
			for _, want := range []string{"INCOMPLETE", "missing:     200 pages (0.8 MiB) the capture could not read: pfn 0x64-0x12b"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("info lacks %q:\n%s", want, stdout)
				}
			}
			if strings.Contains(stdout, "complete\n") && !strings.Contains(stdout, "INCOMPLETE") {
				t.Errorf("called complete:\n%s", stdout)
			}
		})
	}
}
