package qemutests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

// want is what a dump must hold.
type want struct {
	format     anydump.Format
	userAll    bool // every USER marker (else none)
	cacheAll   bool // every CACHE marker (else none)
	incomplete bool
}

// facts are what checkDump found in a dump, for the kernel table.
type facts struct {
	pages uint64 // pages the dump holds
	user  int    // distinct USER markers in it
	// drgn is the drgn that read the dump (Debian 12's, or sid's where
	// Debian 12's cannot), "" when none was run.
	drgn matrix.Reader
}

// checkDump opens a dump with our reader and checks release, notes and
// markers, then has drgn open it when the debug vmlinux is at hand:
// Debian 12's drgn, or sid's newer one where the line does not need
// Debian 12's and it cannot read the dump.
func checkDump(t *testing.T, r *harness.Run, file string, w want) facts {
	t.Helper()
	var fx facts
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
	c, err := harness.TakeCensus(file, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	fx.pages, fx.user = c.Pages, c.Markers["USER"]
	if n := c.Markers["KMSG"]; n != 1 {
		t.Errorf("kmsg marker found %d times (distinct), want 1", n)
	}
	for _, m := range []struct {
		kind string
		all  bool
		n    int
	}{{"USER", w.userAll, r.Spec.AnonMiB}, {"CACHE", w.cacheAll, r.Spec.CacheMiB}} {
		got := c.Markers[m.kind]
		wantN := 0
		if m.all {
			wantN = m.n
		}
		if got != wantN {
			t.Errorf("%s markers: %d of %d in the dump, want %d", m.kind, got, m.n, wantN)
		}
	}
	if r.Kernel.VMLinux == "" {
		return fx
	}
	line := harness.LineNamed(r.Spec.Line)
	ok, why := drgnRead(t, matrix.DrgnOld, r, file)
	switch {
	case ok:
		fx.drgn = matrix.DrgnOld
	case line.Needs(matrix.DrgnOld):
		t.Errorf("drgn on %s: %s", filepath.Base(file), why)
	default:
		t.Logf("Debian 12's drgn cannot read %s (%s); sid's drgn instead", filepath.Base(file), firstLine(why))
		if ok, why := drgnRead(t, matrix.DrgnNew, r, file); !ok {
			t.Errorf("sid's drgn on %s: %s", filepath.Base(file), why)
		} else {
			fx.drgn = matrix.DrgnNew
		}
	}
	return fx
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
