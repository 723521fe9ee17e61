package vmtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/fixture"
)

// extProgram is a program of another module that runs vmtest on the
// kernel it is given, for a second, and prints the report.
const extProgram = `package main

import (
	"context"
	"os"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

func main() {
	rep, _ := vmtest.Run(context.Background(), vmtest.Options{Kernel: os.Args[1], NoKConfig: true,
		Accel: "tcg", MemMiB: 256, Timeout: time.Second})
	rep.WriteJSON(os.Stdout)
}
`

// TestAnotherModule: a program of another Go module imports the package
// (its go.mod requires gokdump, here replaced by this checkout, as a
// released version would be found in the module cache), builds without
// a network, and runs from its own directory, which is no gokdump
// checkout: Run compiles both inits from the gokdump module the program
// requires. (Its guest is given one second: the run ends in phase boot.)
func TestAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and two inits, boots QEMU for a second")
	}
	goCmd := fixture.NeedTool(t, "go")
	fixture.NeedTool(t, "qemu-system-x86_64")
	fixture.NeedTool(t, "mkfs.ext4")
	root, err := builder.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	kernel := ""
	for _, k := range fixture.KernelImages(t) {
		kernel = k
	}
	dir := t.TempDir()
	gomod := "module example.com/kernelci\n\ngo 1.26\n\nrequire " + builder.ModulePath + " v0.0.0\n\nreplace " + builder.ModulePath + " => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(extProgram)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(goCmd, "build", "-o", "kernelci", ".")
	build.Dir = dir
	// Requirements completed from the module cache; nothing downloaded.
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in another module: %v\n%s", err, out)
	}
	run := exec.Command(filepath.Join(dir, "kernelci"), kernel)
	run.Dir = dir
	run.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	var r Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, init := range []struct{ got, pkg, installed string }{
		{r.CaptureInit, "initramfs", "/usr/lib/gokdump/init"},
		{r.Stage1Init, stage1Package, "/usr/lib/gokdump/vmtest-init"},
	} {
		if _, err := os.Stat(init.installed); err == nil {
			continue // gokdump is installed on this machine: Run takes that
		}
		if init.got != "compiled from "+filepath.Join(root, init.pkg) {
			t.Errorf("init %q, want compiled from %s in %s", init.got, init.pkg, root)
		}
	}
	if r.Result != Fail || r.FailedPhase != PhaseBoot || !strings.Contains(r.Error, "timeout") {
		t.Errorf("result %s in phase %q: %s; want a failure in phase boot after the one-second timeout", r.Result, r.FailedPhase, r.Error)
	}
}
