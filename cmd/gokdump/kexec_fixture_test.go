package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// kexecFixture writes files (relative path → contents) into a temporary
// directory, points the kexec commands' sysfs and procfs at its sys and proc
// subdirectories, and returns the directory.
func kexecFixture(t *testing.T, files map[string]string) string {
	t.Helper()
	root := fixture.Tree(t, files)
	oldSys, oldProc := kexecSysfsRoot, kexecProcRoot
	kexecSysfsRoot, kexecProcRoot = filepath.Join(root, "sys"), filepath.Join(root, "proc")
	// A config naming a target the fake machine has, and no load record.
	cfg := filepath.Join(root, "gokdump.toml")
	if err := os.WriteFile(cfg, []byte("target = \"LABEL=DUMPS\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	oldCfg, oldFind, oldState := statusConfigPath, statusFindTarget, loadStatePath
	statusConfigPath, loadStatePath = cfg, filepath.Join(root, "run", "loaded.json")
	statusFindTarget = func(spec string) (string, error) { return "/dev/fake1", nil }
	t.Cleanup(func() {
		kexecSysfsRoot, kexecProcRoot = oldSys, oldProc
		statusConfigPath, statusFindTarget, loadStatePath = oldCfg, oldFind, oldState
	})
	return root
}

// fakeVmlinuz is the smallest x86-64 bzImage kexec.ParseBzImage accepts,
// needing 40 MiB to decompress.
func fakeVmlinuz() string { return string(fixture.BzImage("6.99.0-fake #1")) }
