package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gokdump/gokdump/builder"
)

// stage1Package is the stage-1 init's package in the module.
const stage1Package = "qemu-tests/stage1"

// Stage1Paths returns where a prebuilt stage-1 init for arch (a GOARCH;
// empty is the host's) is looked for, in order, for the gokdump
// executable exe: builder.InstalledPaths of gokdump-vmtest-init, installed
// as vmtest-init (bin/ and bin/<goarch>/ as make lays them out, then an
// install prefix's lib/gokdump/, then /usr/lib/gokdump/). The capture init
// is found as gokdump build finds it (builder.InstalledInitPaths).
func Stage1Paths(exe, arch string) []string {
	return builder.InstalledPaths(exe, arch, "gokdump-vmtest-init", "vmtest-init")
}

// sourceDir returns where to compile the inits from when none is
// installed: the checkout at or above dir, else the gokdump module that
// the Go module at dir requires (a program of another module that imports
// this package: go list -m names its directory in the module cache, or
// where a replace directive points), else dir (the builder and findStage1
// then say what they looked for).
func sourceDir(ctx context.Context, dir string) string {
	if root, err := builder.FindModuleRoot(dir); err == nil {
		return root
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return dir
	}
	cmd := exec.CommandContext(ctx, goCmd, "list", "-m", "-f", "{{.Dir}}", builder.ModulePath)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return dir
	}
	if root, err := builder.FindModuleRoot(strings.TrimSpace(string(out))); err == nil {
		return root
	}
	return dir
}

// ErrNoStage1 means no stage-1 init was found and none could be compiled.
var ErrNoStage1 = errors.New("no stage-1 init found")

// findStage1 returns the stage-1 init for arch: explicit, else an
// installed one, else one compiled into dir from the checkout at or
// above src. how says which, for the report.
func findStage1(ctx context.Context, explicit, exe, src, arch, dir string) (path, how string, err error) {
	if explicit != "" {
		if err := builder.CheckInit(explicit, arch); err != nil {
			return "", "", err
		}
		return explicit, explicit + " (given)", nil
	}
	var skipped []string
	for _, p := range Stage1Paths(exe, arch) {
		err := builder.CheckInit(p, arch)
		if err == nil {
			p = filepath.Clean(p)
			return p, p + " (installed)", nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			skipped = append(skipped, err.Error())
		}
	}
	root, err := builder.FindModuleRoot(src)
	if err == nil {
		if _, serr := os.Stat(filepath.Join(root, stage1Package)); serr != nil {
			err = serr
		}
	}
	if err != nil {
		msg := fmt.Sprintf("%v: looked for %s, and for a checkout of %s at or above %s", ErrNoStage1,
			strings.Join(Stage1Paths(exe, arch), ", "), builder.ModulePath, src)
		if len(skipped) > 0 {
			msg += "; skipped " + strings.Join(skipped, "; ")
		}
		return "", "", fmt.Errorf("%s: install gokdump with make install (or the Debian package), pass --stage1-init, or run from a checkout with Go installed: %w",
			msg, ErrNoStage1)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("%w: compiling it from %s needs the go command", ErrNoStage1, root)
	}
	out := filepath.Join(dir, "stage1-init")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./"+stage1Package)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go build ./%s in %s (GOARCH=%s): %w\n%s", stage1Package, root, arch, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := builder.CheckInit(out, arch); err != nil {
		return "", "", err
	}
	return out, "compiled from " + filepath.Join(root, stage1Package), nil
}
