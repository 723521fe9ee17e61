package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/crashdir"
)

func TestMemTotal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(p, []byte("MemFree:  100 kB\nMemTotal:       2048000 kB\n"), 0o644)
	if n, err := memTotal(p); err != nil || n != 2048000<<10 {
		t.Errorf("memTotal = %d, %v", n, err)
	}
	os.WriteFile(p, []byte("MemFree: 1 kB\n"), 0o644)
	if _, err := memTotal(p); err == nil {
		t.Error("memTotal without MemTotal succeeded")
	}
}

func TestStale(t *testing.T) {
	dir := t.TempDir()
	target, in := filepath.Join(dir, "img"), filepath.Join(dir, "config")
	if !stale(target, []string{in}) {
		t.Error("a missing target is not stale")
	}
	os.WriteFile(in, nil, 0o644)
	os.WriteFile(target, nil, 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(in, old, old)
	if stale(target, []string{in, filepath.Join(dir, "absent")}) {
		t.Error("a target newer than its inputs is stale")
	}
	os.Chtimes(target, old.Add(-time.Hour), old.Add(-time.Hour))
	if !stale(target, []string{in}) {
		t.Error("a target older than an input is not stale")
	}
}

func TestTestRefusesUnlessReadyAndYes(t *testing.T) {
	trigger := filepath.Join(t.TempDir(), "sysrq-trigger")
	old := sysrqTrigger
	sysrqTrigger = trigger
	t.Cleanup(func() { sysrqTrigger = old })

	kexecFixture(t, map[string]string{
		"sys/kernel/kexec_crash_size": "134217728", "sys/kernel/kexec_crash_loaded": "0", "proc/cmdline": "crashkernel=128M",
	})
	var out bytes.Buffer
	if err := runTest(true, &out); err == nil || !strings.Contains(err.Error(), "would not be caught") {
		t.Errorf("not loaded: %v", err)
	}
	kexecFixture(t, map[string]string{
		"sys/kernel/kexec_crash_size": "134217728", "sys/kernel/kexec_crash_loaded": "1", "proc/cmdline": "crashkernel=128M",
	})
	if err := runTest(false, &out); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("without --yes: %v", err)
	}
	if _, err := os.Stat(trigger); err == nil {
		t.Fatal("crashed without --yes")
	}
}

// flattenedDump writes a small kdump-compressed dump as a flattened
// stream, as the capture writes it to a raw device.
func flattenedDump(t *testing.T, complete bool) []byte {
	t.Helper()
	var b bytes.Buffer
	fw := diskdump.NewFlattenWriter(&b)
	w, err := diskdump.NewWriter(fw, diskdump.Header{
		Sysname: "Linux", Nodename: "(none)", Release: "6.99.0", Version: "#1", Machine: "x86_64",
		Domainname: "(none)", BlockSize: 4096, MaxMapnr: 64, NrCPUs: 1, DumpLevel: 1,
		Timestamp: time.Unix(1795782722, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	ram, dumpable := make([]byte, 8), make([]byte, 8)
	for i := range ram {
		ram[i] = 0xff
	}
	dumpable[0] = 0x0f // pfns 0..3
	if err := w.SetBitmaps(0, ram, dumpable); err != nil {
		t.Fatal(err)
	}
	if err := w.StartPages(); err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte("gokdump!"), 512)
	for pfn := uint64(0); pfn < 4; pfn++ {
		if pfn == 3 && !complete {
			break
		}
		if err := w.WritePage(pfn, page, 0); err != nil {
			t.Fatal(err)
		}
	}
	if complete {
		err = w.Close()
	} else {
		err = w.Abort(os.ErrClosed)
	}
	if err != nil && complete {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSavecore(t *testing.T) {
	for _, complete := range []bool{true, false} {
		dir := t.TempDir()
		dev := filepath.Join(dir, "disk")
		// A raw device is bigger than the stream; what follows is junk.
		stream := append(flattenedDump(t, complete), bytes.Repeat([]byte{0xaa}, 1<<20)...)
		if err := os.WriteFile(dev, stream, 0o600); err != nil {
			t.Fatal(err)
		}
		// The log the capture leaves at the end of the device.
		df, _ := os.OpenFile(dev, os.O_RDWR, 0)
		if _, err := crashdir.WriteRawDmesg(df, int64(len(stream)), []byte("[    1.000000] the log\n"), 1795782722); err != nil {
			t.Fatal(err)
		}
		df.Close()
		var out bytes.Buffer
		err := runSavecore(dev, filepath.Join(dir, "crash"), complete, &out)
		if complete != (err == nil) {
			t.Fatalf("complete=%v: savecore: %v", complete, err)
		}
		name := crashdir.VMCore
		if !complete {
			name = crashdir.VMCoreIncomplete
		}
		m, _ := filepath.Glob(filepath.Join(dir, "crash", "*", name))
		if len(m) != 1 {
			t.Fatalf("complete=%v: %s not saved (%v)", complete, name, m)
		}
		if log, err := os.ReadFile(filepath.Join(filepath.Dir(m[0]), crashdir.DmesgFile)); err != nil || string(log) != "[    1.000000] the log\n" {
			t.Errorf("complete=%v: log %q, %v", complete, log, err)
		}
		if name := filepath.Base(filepath.Dir(m[0])); !strings.HasPrefix(name, time.Unix(1795782722, 0).UTC().Format("2006-01-02-15:04")) {
			t.Errorf("dump dir %s not named for the crash time", name)
		}
		d, err := anydump.Open(m[0])
		if err != nil {
			t.Fatal(err)
		}
		if d.Incomplete == complete {
			t.Errorf("complete=%v: dump flagged incomplete %v", complete, d.Incomplete)
		}
		buf := make([]byte, 4096)
		if _, err := d.ReadPhys(buf, 4096); err != nil || !bytes.HasPrefix(buf, []byte("gokdump!")) {
			t.Errorf("page 1: %v %q", err, buf[:8])
		}
		d.Close()
		if fi, err := os.Stat(m[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v %v", fi.Mode(), err)
		}
		head := make([]byte, 16)
		f, _ := os.Open(dev)
		f.Read(head)
		f.Close()
		if cleared := !diskdump.IsFlattened(head); cleared != complete {
			t.Errorf("complete=%v: device header cleared %v", complete, cleared)
		}
	}
	if err := runSavecore(filepath.Join(t.TempDir(), "nothing"), t.TempDir(), false, &bytes.Buffer{}); err == nil {
		t.Error("savecore of a missing device succeeded")
	}
}
