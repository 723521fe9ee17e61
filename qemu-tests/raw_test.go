package qemutests

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/dumpdir"
	"github.com/gokdump/gokdump/capture/dumpfile"
	"github.com/gokdump/gokdump/capture/kdump"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// TestRawTarget crashes onto a virtio disk with no filesystem (target =
// "raw:/dev/vda"): the capture writes the kernel log at the end of the
// device and the dump from offset 0 as makedumpfile's flattened stream.
// On the host the stream is rebuilt with kdump.Unflatten (what gokdump
// savecore and makedumpfile -R do) and checked like any dump.
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

	file := filepath.Join(r.Spec.Dir, "vmcore")
	out, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := kdump.Unflatten(bufio.NewReaderSize(img, 1<<20), out); err != nil {
		t.Fatalf("unflatten the device: %v", err)
	}
	out.Close()
	checkDump(t, r, file, want{format: dumpfile.Kdump})
	if fi, _ := os.Stat(file); fi.Size() > o.Bytes {
		t.Errorf("rebuilt dump %d bytes, more than the %d-byte stream", fi.Size(), o.Bytes)
	}

	// The kernel log, at the end of the device, belongs to this crash.
	log, err := dumpdir.ReadRawDmesg(img, st.Size())
	if err != nil {
		t.Fatalf("kernel log trailer: %v", err)
	}
	in, err := dumpfile.ReadInfo(file)
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
