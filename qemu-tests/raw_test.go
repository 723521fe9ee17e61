package qemutests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestRawTarget crashes onto a virtio disk with no filesystem (target =
// "raw:/dev/vda"): the capture writes the kernel log at the end of the
// device and the dump from offset 0 as makedumpfile's flattened stream.
// On the host gokdump savecore rebuilds the dump from the device image,
// and it is checked like any dump.
func TestRawTarget(t *testing.T) {
	t.Parallel()
	spec := harness.Spec{Line: "6.1", MemMiB: 512, AnonMiB: 16, CacheMiB: -1, Dbg: true,
		Config: "target = \"raw:/dev/vda\"\n",
		Disks:  []harness.Disk{{Bus: "virtio", FS: "raw", SizeMiB: 128}}}
	r := crash(t, spec)
	o := outcome(t, r, "saved")
	wantAction(t, o, "reboot", "Restarting system")
	if o.Path != "raw:/dev/vda" || o.Format != "kdump-flattened" || o.Level != 31 {
		t.Errorf("saved %q format %q level %d", o.Path, o.Format, o.Level)
	}
	img, err := os.Open(r.Disks[0])
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	st, _ := img.Stat()

	// After the reboot: gokdump savecore rebuilds the dump from the device.
	cli, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(r.Spec.Dir, "crash")
	if b, err := exec.Command(cli, "savecore", r.Disks[0], saved).CombinedOutput(); err != nil {
		t.Fatalf("gokdump savecore: %v\n%s", err, b)
	}
	files, _ := filepath.Glob(filepath.Join(saved, "*", crashdir.VMCore))
	if len(files) != 1 {
		t.Fatalf("savecore saved %v", files)
	}
	file := files[0]
	checkDump(t, r, file, want{format: anydump.Kdump})
	// The rebuilt file is sparse where the writer left bitmap bytes of
	// zeros unwritten: what it takes on disk, not its length, is what the
	// stream carried (give or take a block per record).
	if fi, err := os.Stat(file); err != nil {
		t.Fatal(err)
	} else if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > o.Bytes+o.Bytes/100+1<<20 {
		t.Errorf("rebuilt dump takes %d bytes on disk, more than the %d-byte stream", used, o.Bytes)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(file), crashdir.DmesgFile)); err != nil || !bytes.Contains(b, []byte(guest.Marker("KMSG", r.ID, 0))) {
		t.Errorf("savecore's %s lacks the kmsg marker (%v)", crashdir.DmesgFile, err)
	}

	// The kernel log, at the end of the device, belongs to this crash.
	log, err := crashdir.ReadRawDmesg(img, st.Size())
	if err != nil {
		t.Fatalf("kernel log trailer: %v", err)
	}
	in, err := anydump.ReadInfo(file)
	if err != nil {
		t.Fatal(err)
	}
	if log.CrashTime != in.CrashTime.Unix() || log.Start < o.Bytes {
		t.Errorf("trailer: crash time %d (dump %d), at %#x (stream ends at %#x)", log.CrashTime, in.CrashTime.Unix(), log.Start, o.Bytes)
	}
	for _, s := range []string{guest.Marker("KMSG", r.ID, 0), "Kernel panic - not syncing: sysrq triggered crash"} {
		if !bytes.Contains(log.Text, []byte(s)) {
			t.Errorf("the kernel log at the end of the device lacks %q", s)
		}
	}
}
