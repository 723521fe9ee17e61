package qemutests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// want is what a dump must hold.
type want struct {
	format     anydump.Format
	userAll    bool // every USER marker (else none)
	cacheAll   bool // every CACHE marker (else none)
	incomplete bool
}

// checkDump opens a dump with our reader and checks release, notes and
// markers, then has drgn open it when the debug vmlinux is at hand.
func checkDump(t *testing.T, r *harness.Run, file string, w want) {
	t.Helper()
	d, err := anydump.Open(file)
	if err != nil {
		t.Fatalf("open dump: %v", err)
	}
	format, incomplete := d.Format, d.Incomplete
	if d.VMCOREINFO == nil {
		t.Error("dump has no VMCOREINFO")
	} else if got := d.VMCOREINFO.OSRelease(); got != r.Kernel.KVer {
		t.Errorf("VMCOREINFO OSRELEASE = %q, want %q", got, r.Kernel.KVer)
	}
	if len(d.PRStatus) == 0 {
		t.Error("dump has no NT_PRSTATUS note")
	}
	d.Close()
	if format != w.format {
		t.Errorf("dump format %s, want %s", format, w.format)
	}
	if incomplete != w.incomplete {
		t.Errorf("dump incomplete = %v, want %v", incomplete, w.incomplete)
	}
	if n := countMarkers(t, file, guest.MarkerPrefix("KMSG", r.ID)); n != 1 {
		t.Errorf("kmsg marker found %d times (distinct), want 1", n)
	}
	for _, m := range []struct {
		kind string
		all  bool
		n    int
	}{{"USER", w.userAll, r.Spec.AnonMiB}, {"CACHE", w.cacheAll, r.Spec.CacheMiB}} {
		got := countMarkers(t, file, guest.MarkerPrefix(m.kind, r.ID))
		wantN := 0
		if m.all {
			wantN = m.n
		}
		if got != wantN {
			t.Errorf("%s markers: %d of %d in the dump, want %d", m.kind, got, m.n, wantN)
		}
	}
	if r.Kernel.VMLinux != "" {
		drgnCheck(t, r, file)
	}
}

// drgnCheck opens a dump with drgn and checks it reads tasks and the log.
func drgnCheck(t *testing.T, r *harness.Run, file string) {
	t.Helper()
	drgn := "/usr/bin/python3" // a pyenv python3 on PATH has no drgn module
	out, err := exec.Command(drgn, "-m", "drgn", "-q", "-c", file, "-s", r.Kernel.VMLinux,
		filepath.Join(repoRoot, "qemu-tests", "testdata", "drgn_check.py"),
		guest.Marker("KMSG", r.ID, 0)).CombinedOutput()
	if err != nil {
		t.Fatalf("drgn on %s: %v\n%s", filepath.Base(file), err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	tasks, _ := strconv.Atoi(got["tasks"])
	switch {
	case got["comm"] != "swapper/0":
		t.Errorf("drgn: init_task.comm = %q\n%s", got["comm"], out)
	case got["release"] != r.Kernel.KVer:
		t.Errorf("drgn: release %q, want %q", got["release"], r.Kernel.KVer)
	case tasks < 10:
		t.Errorf("drgn: %d tasks\n%s", tasks, out)
	case got["marker"] != "True" || got["panic"] != "True":
		t.Errorf("drgn: kernel log lacks the kmsg marker or the panic\n%s", out)
	}
}

// checkDmesgFile checks vmcore-dmesg.txt in the dump directory: private,
// and holding the kmsg marker and the panic.
func checkDmesgFile(t *testing.T, r *harness.Run, dir string) {
	t.Helper()
	mode, ok := ls(t, r, dir)[crashdir.DmesgFile]
	if !ok {
		t.Errorf("no %s in %s", crashdir.DmesgFile, dir)
		return
	}
	if mode&0o777 != 0o600 {
		t.Errorf("%s mode %o, want 600", crashdir.DmesgFile, mode&0o777)
	}
	b, err := os.ReadFile(extract(t, r, dir+"/"+crashdir.DmesgFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{guest.Marker("KMSG", r.ID, 0), "Kernel panic - not syncing: sysrq triggered crash"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s lacks %q", crashdir.DmesgFile, s)
		}
	}
}
