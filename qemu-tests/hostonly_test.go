package qemutests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestHostOnlyBuild builds the capture image the way an administrator
// does, on the machine that will crash: inside the first-stage guest,
// `gokdump build` with no --module reads /etc/gokdump.toml, finds the
// target (LABEL=GOKDUMP on a virtio disk) in sysfs, and picks the drivers
// behind it from the running kernel's /lib/modules. `gokdump load` then
// loads that image (the harness loads the kernel alone first, so no other
// initramfs is around), the guest panics, and the capture must reach the
// disk with only the modules host-only mode chose.
func TestHostOnlyBuild(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	k, err := harness.GetKernel(repoRoot, "6.1", true)
	if err != nil {
		t.Fatal(err)
	}
	_, captureInit, err := harness.Binaries(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	gokdump := filepath.Join(t.TempDir(), "gokdump")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", gokdump, "./cmd/gokdump")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build gokdump: %v\n%s", err, out)
	}

	// The harness packs the first stage's own modules (virtio_blk and
	// virtio_pci, for its disk); add depmod's index and a few modules a
	// wrong detection would ask for, but not the whole tree.
	stage1Mods, err := builder.ResolveModules(k.Modules, []string{"virtio_blk", "virtio_pci"})
	if err != nil {
		t.Fatal(err)
	}
	decoys, err := builder.ResolveModules(k.Modules, []string{"virtio_scsi", "xfs"})
	if err != nil {
		t.Fatal(err)
	}
	extra := []builder.File{
		file(t, "/bin/gokdump", gokdump, 0o755),
		file(t, "/bin/gokdump-init", captureInit, 0o755),
		{Path: "/etc/gokdump.toml", Data: []byte("target = \"LABEL=GOKDUMP\"\n"), Mode: 0o600},
	}
	moddir := "/lib/modules/" + k.KVer
	for _, ix := range []string{"modules.dep", "modules.builtin", "modules.softdep", "modules.alias", "modules.builtin.modinfo"} {
		extra = append(extra, file(t, moddir+"/"+ix, filepath.Join(k.Modules, ix), 0o644))
	}
	for _, m := range decoys.Modules {
		if !containsModule(stage1Mods, m.Name) {
			extra = append(extra, file(t, moddir+"/"+m.Path, filepath.Join(k.Modules, m.Path), 0o644))
		}
	}

	wantMods, err := builder.ResolveModules(k.Modules, []string{"virtio_blk", "virtio_pci", "ext4"})
	if err != nil {
		t.Fatal(err)
	}

	r := crash(t, harness.Spec{
		Line:            "6.1",
		Disk:            "virtio",
		Dbg:             true,
		NoCaptureInitrd: true,
		Stage1Extra:     extra,
		Commands: [][]string{
			{"/bin/gokdump", "build", "-o", "/capture/hostonly.img"},
			{"/bin/gokdump", "load", "--kernel", "/capture/vmlinuz", "--initrd", "/capture/hostonly.img"},
		},
	})
	for _, line := range []string{
		`gokdump build: drivers: hostonly \(the config names target LABEL=GOKDUMP and /lib/modules/` + regexp.QuoteMeta(k.KVer) + ` is the running kernel's\)`,
		`host-only: target LABEL=GOKDUMP is /dev/vda \(ext4\)`,
		`virtio_blk: driver virtio_blk of devices/pci0000:00/\S+/virtio\d+ \(vda\)`,
		`virtio_pci: driver virtio-pci of devices/pci0000:00/\S+ \(vda\)`,
		`modules \(load order\): ` + strings.Join(wantMods.Names(), " ") + `$`,
		`built in, skipped: ext4$`,
		`^initrd: +/capture/hostonly.img`,
		`loaded with kexec_file_load: a crash now boots this kernel`,
	} {
		if _, _, ok := r.Find(regexp.MustCompile(line)); !ok {
			failf(t, r, "console lacks %s", line)
		}
	}
	if l, _, ok := r.Find(regexp.MustCompile(`modules \(load order\):.*(scsi|xfs)`)); ok {
		t.Errorf("host-only packed a module the target does not need: %s", l.Text)
	}
	var said strings.Builder
	for _, l := range r.Log {
		if strings.HasPrefix(l.Text, "gokdump build:") || strings.HasPrefix(l.Text, "  ") {
			said.WriteString(l.Text + "\n")
		}
	}
	t.Logf("gokdump build in the guest said:\n%s", said.String())
	p := savedPath(t, r)
	t.Logf("phases:\n%s", r.PhaseReport())
	out := extract(t, r, p)
	checkDump(t, r, out, want{format: anydump.Kdump})
}

// file reads a host file into an image file.
func file(t *testing.T, path, src string, mode uint64) builder.File {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return builder.File{Path: path, Data: b, Mode: mode}
}

func containsModule(s *builder.ModuleSet, name string) bool {
	return strings.Contains(" "+strings.Join(s.Names(), " ")+" ", " "+name+" ")
}
