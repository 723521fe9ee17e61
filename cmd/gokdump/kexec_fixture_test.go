package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// kexecFixture writes files (relative path → contents) into a temporary
// directory, points the kexec commands' sysfs and procfs at its sys and proc
// subdirectories, and returns the directory.
func kexecFixture(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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

// fakeVmlinuz is the smallest x86-64 bzImage header kexec.ParseBzImage
// accepts, needing 40 MiB to decompress.
func fakeVmlinuz() string {
	b := make([]byte, 8192)
	le := binary.LittleEndian
	b[0x1f1] = 3                         // setup_sects
	le.PutUint16(b[0x1fe:], 0xaa55)      // boot_flag
	copy(b[0x202:], "HdrS")              // header
	le.PutUint16(b[0x206:], 0x020f)      // version 2.15
	b[0x211] = 1                         // loadflags: LOADED_HIGH
	le.PutUint32(b[0x230:], 2<<20)       // kernel_alignment
	le.PutUint16(b[0x236:], 3)           // xloadflags: 64-bit, above 4G
	le.PutUint32(b[0x238:], 2047)        // cmdline_size
	le.PutUint32(b[0x260:], 40<<20)      // init_size
	le.PutUint16(b[0x20e:], 0x600-0x200) // kernel_version
	copy(b[0x600:], "6.99.0-fake #1\x00")
	return string(b)
}
