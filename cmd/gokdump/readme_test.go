package main

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/fixture"
)

// A README shell example is a ```sh block. One that must not run here is
// marked on the line before its fence:
//
//	<!-- README-test: skip KIND: why -->
//
// with KIND destructive (it changes this machine: writes /boot, loads a
// kernel, crashes it), slow (QEMU crash cycles, a kernel build: other
// tests run those), or network (it needs a server).
var skipMark = regexp.MustCompile(`^\s*<!-- README-test: skip (destructive|slow|network): (.+) -->\s*$`)

type example struct {
	line      int // of the fence
	text      string
	skip, why string
}

func readmeExamples(t *testing.T) []example {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []example
	var cur *example
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		trim := strings.TrimSpace(l)
		switch {
		case cur == nil && trim == "```sh":
			cur = &example{line: n}
			if m := skipMark.FindStringSubmatch(prev); m != nil {
				cur.skip, cur.why = m[1], m[2]
			} else if strings.Contains(prev, "README-test") {
				t.Errorf("README.md:%d: a README-test mark this test does not read: %q", n-1, prev)
			}
		case cur != nil && trim == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimPrefix(l, "   ") + "\n"
		}
		if trim != "" {
			prev = l
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a ```sh block never ends", cur.line)
	}
	return out
}

// TestReadmeExamples runs every shell example of the README that is not
// marked to be skipped, as written, in a scratch directory that looks like
// a checkout after make (bin/, configs/, scripts/), with the places the
// examples name replaced by scratch ones: /var/crash by a directory
// holding a real dump saved as a capture saves it (its crash time for the
// README's 2026-11-27-12:37:07), /srv/images/web-01 by an image tree with a
// Debian kernel (and ROOT set to it, as the examples that continue the one
// setting it expect). Each example must exit 0.
func TestReadmeExamples(t *testing.T) {
	examples := readmeExamples(t)
	if len(examples) == 0 {
		t.Fatal("no shell examples in README.md")
	}
	for _, e := range examples {
		for _, l := range strings.Split(e.text, "\n") {
			// Every gokdump command an example runs exists.
			for _, m := range regexp.MustCompile(`(?:^|[|;&(]\s*)gokdump ([a-z-]+)`).FindAllStringSubmatch(l, -1) {
				if _, ok := commands[m[1]]; !ok && m[1] != "help" {
					t.Errorf("README.md:%d: gokdump %s: no such command", e.line, m[1])
				}
			}
		}
	}
	if testing.Short() {
		t.Skip("builds gokdump, saves a real dump and builds images")
	}
	d := fixture.RealDump(t, "6.1")
	kernels := fixture.KernelImages(t)
	kroot := ""
	for _, k := range kernels {
		if fixture.Release(k) == d.KVer {
			kroot = filepath.Join(filepath.Dir(k), "..")
		}
	}
	if kroot == "" {
		fixture.Missing(t, "no kernel tree of %s in the cache", d.KVer)
	}

	scratch := t.TempDir()
	bin := filepath.Join(scratch, "bin")
	for pkg, name := range map[string]string{"./cmd/gokdump": "gokdump", "./initramfs": "gokdump-init"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, name), pkg)
		cmd.Dir, cmd.Env = repoRoot, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	abs, _ := filepath.Abs(repoRoot)

	// /var/crash: a dump directory as the capture leaves it.
	crash := filepath.Join(scratch, "crash")
	src := d.Open(t)
	when, _ := src.VMCOREINFO.CrashTime()
	stamp := crashdir.Name(time.Unix(when, 0), 0)
	dumpDir := filepath.Join(crash, stamp)
	os.MkdirAll(dumpDir, 0o700)
	if code, _, stderr := gokdump("save", "-q", "--vmcore", d.Path, filepath.Join(dumpDir, crashdir.VMCore)); code != exitOK {
		t.Fatalf("save: %s", stderr)
	}
	if code, log, stderr := gokdump("dmesg", d.Path); code != exitOK {
		t.Fatalf("dmesg: %s", stderr)
	} else {
		os.WriteFile(filepath.Join(dumpDir, crashdir.DmesgFile), []byte(log), 0o600)
	}

	// /srv/images/web-01: an image tree (usr-merged, as debootstrap makes
	// it) with the dump's kernel.
	tree := filepath.Join(scratch, "images", "web-01")
	os.MkdirAll(filepath.Join(tree, "usr", "lib"), 0o755)
	os.Symlink("usr/lib", filepath.Join(tree, "lib"))
	for from, to := range map[string]string{"boot": "boot", "lib/modules": "usr/lib/modules"} {
		if out, err := exec.Command("cp", "-al", filepath.Join(kroot, from), filepath.Join(tree, to)).CombinedOutput(); err != nil {
			t.Fatalf("cp -al: %v\n%s", err, out)
		}
	}
	if depmod, err := exec.LookPath("depmod"); err == nil {
		exec.Command(depmod, "-b", tree, d.KVer).Run() // else build reads each module's .modinfo
	}

	subst := strings.NewReplacer("/srv/images/web-01", tree, "/var/crash", crash, "2026-11-27-12:37:07", stamp)
	ran := 0
	for _, e := range examples {
		if e.skip != "" {
			t.Logf("README.md:%d: skipped (%s: %s)", e.line, e.skip, e.why)
			continue
		}
		dir := t.TempDir()
		for _, l := range []string{"configs", "scripts"} {
			os.Symlink(filepath.Join(abs, l), filepath.Join(dir, l))
		}
		os.Symlink(bin, filepath.Join(dir, "bin"))
		script := subst.Replace(e.text)
		// -u: an example that uses a variable an earlier one set (ROOT)
		// gets it as a reader's shell would have it, and no other.
		cmd := exec.Command("bash", "-e", "-u", "-o", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+dir, "ROOT="+tree)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README.md:%d: %v\n%s\noutput:\n%s", e.line, err, script, out)
			continue
		}
		ran++
		t.Logf("README.md:%d ran:\n%s", e.line, script)
	}
	if ran < 3 {
		t.Errorf("only %d examples ran", ran)
	}
}

// TestReadmeInStep: the README has a section for every command and names
// every flag of each; make help lists every target of the Makefile.
func TestReadmeInStep(t *testing.T) {
	readme := string(mustRead(t, filepath.Join(repoRoot, "README.md")))
	for name, c := range commands {
		if !strings.Contains(readme, "gokdump "+name) {
			t.Errorf("README.md never shows gokdump %s", name)
		}
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		c.setup(fs)
		fs.VisitAll(func(f *flag.Flag) {
			dash := "--" + f.Name
			if len(f.Name) == 1 {
				dash = "-" + f.Name
			}
			if !strings.Contains(readme, dash) {
				t.Errorf("README.md never names %s of gokdump %s", dash, name)
			}
		})
	}
	mk := string(mustRead(t, filepath.Join(repoRoot, "Makefile")))
	var targets []string
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(mk, -1) {
		targets = append(targets, m[1])
	}
	if !slices.Contains(targets, "build") || !slices.Contains(targets, "deb") {
		t.Fatalf("targets %q", targets)
	}
	out, err := exec.Command("make", "-s", "-C", repoRoot, "help").Output()
	if err != nil {
		fixture.Missing(t, "make help: %v", err)
	}
	for _, tg := range targets {
		if !regexp.MustCompile(`(?m)^  ` + tg + ` +\S`).Match(out) {
			t.Errorf("make help does not list %s:\n%s", tg, out)
		}
	}
}
