package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const newKVer = "6.12.0-new-amd64"

// rebuildMachine is a fake machine whose modules tree also has newKVer,
// with a config naming its virtio disk, and rebuild building with the test
// init.
func rebuildMachine(t *testing.T) (m *fakeMachine, cfg string) {
	m = newFakeMachine(t)
	if err := os.CopyFS(filepath.Join(m.modules, newKVer), os.DirFS(filepath.Join(m.modules, runningKVer))); err != nil {
		t.Fatal(err)
	}
	old := rebuildBuildArgs
	rebuildBuildArgs = []string{"--init", m.initPath, "--arch", "amd64", "--compress", "none"}
	t.Cleanup(func() { rebuildBuildArgs = old })
	return m, m.config("target = \"LABEL=GOKDUMP\"\n")
}

// imageModules lists the modules packed in an uncompressed image.
func imageModules(t *testing.T, image string) []string {
	t.Helper()
	b, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	if r, ok := archiveFiles(t, b)["/etc/gokdump.modules"]; ok {
		b := make([]byte, r.FileSize)
		r.ReadAt(b, 0)
		for _, l := range strings.Fields(string(b)) {
			mods = append(mods, strings.TrimSuffix(filepath.Base(l), ".ko"))
		}
	}
	return mods
}

// The kernel hooks run rebuild --kver NEW for a kernel that is not running:
// the image is host-only all the same, its drivers from NEW's tree.
func TestRebuildNewKernelIsHostOnly(t *testing.T) {
	_, cfg := rebuildMachine(t)
	img := filepath.Join(t.TempDir(), "gokdump-new.img")
	code, stdout, stderr := gokdump("rebuild", "--kver", newKVer, "--no-load", "-o", img, "--config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	mods := imageModules(t, img)
	if !slices.Contains(mods, "virtio_blk") || slices.Contains(mods, "xfs") {
		t.Errorf("not host-only: %q\n%s", mods, stderr)
	}
	rec, err := readRecord(img)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Drivers != driversHostOnly || rec.Target != "LABEL=GOKDUMP" || rec.Kver != newKVer ||
		!slices.Contains(rec.Detected, "virtio_blk") || !slices.Contains(rec.Detected, "ext4") {
		t.Errorf("record %+v", rec)
	}
}

func TestRebuildIfNeededComparesDrivers(t *testing.T) {
	m, cfg := rebuildMachine(t)
	img := filepath.Join(t.TempDir(), "gokdump.img")
	rebuild := func(why string) {
		t.Helper()
		var out, errs bytes.Buffer
		f := rebuildFlags{ifNeeded: true, noLoad: true, image: img, config: configFlag{path: cfg, set: true}, drivers: driversAuto}
		if err := runRebuild(f, &out, &errs); err != nil {
			t.Fatalf("%v:\n%s%s", err, out.String(), errs.String())
		}
		stdout := out.String()
		if why == "" {
			if !strings.Contains(stdout, img+" is up to date") {
				t.Errorf("rebuilt an image that is up to date:\n%s", stdout)
			}
			return
		}
		if !strings.Contains(stdout, "building "+img+", drivers hostonly") || !strings.Contains(stdout, why) {
			t.Errorf("stdout lacks %q:\n%s", why, stdout)
		}
		if rec, err := readRecord(img); err != nil || rec.Drivers != driversHostOnly {
			t.Errorf("record %+v, %v", rec, err)
		}
	}
	rebuild("is missing")
	rebuild("")
	// A generic image put in its place, newer than every input: rebuilt.
	later := time.Now().Add(time.Minute)
	if code, _, stderr := gokdump(append([]string{"build", "--force", "-o", img, "--config", cfg, "--drivers", "generic"}, rebuildBuildArgs...)...); code != 0 {
		t.Fatal(stderr)
	}
	os.Chtimes(img, later, later)
	rebuild("changed since rebuild built it")
	rebuild("")
	// The record of a generic image: rebuilt host-only.
	edit := func(f func(*imageRecord)) {
		t.Helper()
		rec, err := readRecord(img)
		if err != nil {
			t.Fatal(err)
		}
		f(rec)
		b, _ := json.Marshal(rec)
		os.WriteFile(recordPath(img), b, 0o600)
	}
	edit(func(r *imageRecord) { r.Drivers, r.Detected = driversGeneric, nil })
	rebuild(img + " has drivers generic")
	edit(func(r *imageRecord) { r.Detected = []string{"ahci", "ext4"} })
	rebuild("the target's drivers are now ")
	os.Remove(recordPath(img))
	rebuild("no record of how")
	rebuild("")

	// The target unplugged: the host-only image built for it is kept, and
	// no other is built in its place.
	os.Remove(filepath.Join(m.dev, "vda1"))
	var out, errs bytes.Buffer
	f := rebuildFlags{ifNeeded: true, noLoad: true, image: img, config: configFlag{path: cfg, set: true}, drivers: driversAuto}
	if err := runRebuild(f, &out, &errs); err != nil || !strings.Contains(errs.String(), "; keeping "+img) {
		t.Errorf("target gone, --if-needed: %v\n%s%s", err, out.String(), errs.String())
	}
	f.ifNeeded = false
	if err := runRebuild(f, &out, &errs); err == nil || !strings.Contains(err.Error(), "find target LABEL=GOKDUMP") {
		t.Errorf("target gone: %v", err)
	}
}

func TestRebuildRefusesSilentFallbacks(t *testing.T) {
	_, cfg := rebuildMachine(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing config", []string{"--config", filepath.Join(dir, "gokdmp.toml")}, "no such file"},
		{"kernel without modules", []string{"--kver", "6.99.0-nomods", "--config", cfg}, "pass --drivers none"},
		{"bad drivers", []string{"--drivers", "some", "--config", cfg}, `--drivers "some"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(dir, tt.name+".img")
			code, stdout, stderr := gokdump(append([]string{"rebuild", "--no-load", "-o", img}, tt.args...)...)
			if code == exitOK || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d:\n%s%s", code, stdout, stderr)
			}
			if _, err := os.Stat(img); err == nil {
				t.Error("built an image anyway")
			}
		})
	}
	// --drivers none says that no drivers is what is wanted.
	img := filepath.Join(dir, "none.img")
	if code, stdout, stderr := gokdump("rebuild", "--no-load", "-o", img, "--kver", "6.99.0-nomods", "--drivers", "none", "--config", cfg); code != exitOK {
		t.Errorf("--drivers none: exit %d:\n%s%s", code, stdout, stderr)
	}
}

func TestBuildWarnsWithoutTarget(t *testing.T) {
	m, withTarget := rebuildMachine(t)
	config := func(content string) string {
		p := filepath.Join(t.TempDir(), "gokdump.toml")
		m.write(p, content)
		return p
	}
	for _, tt := range []struct {
		name string
		args []string
		warn string
	}{
		{"no config", []string{"--no-config"}, "warning: no config is packed"},
		{"config without target", []string{"--config", config("keep = 3\n")}, "names no target"},
		{"target", []string{"--config", withTarget}, ""},
		{"target in kernel_args", []string{"--config", config("kernel_args = \"gokdump.target=LABEL=GOKDUMP\"\n")}, ""},
	} {
		_, summary, err := m.build(tt.args...)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := strings.Contains(summary, "warning: "); got != (tt.warn != "") || !strings.Contains(summary, tt.warn) {
			t.Errorf("%s: want warning %q:\n%s", tt.name, tt.warn, summary)
		}
	}
}
