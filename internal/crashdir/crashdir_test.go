package crashdir

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
)

var t0 = time.Date(2026, 11, 27, 12, 37, 7, 0, time.UTC)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  int
		ok   bool
	}{
		{"2026-11-27-12:37:07", 0, true},
		{"2026-11-27-12:37:07-1", 1, true},
		{"2026-11-27-12:37:07-999", 999, true},
		{"2026-11-27-12.37.07", 0, true},
		{"2026-11-27-12.37.07-2", 2, true},
		{"2026-11-27-12.37:07", 0, false},
		{"2026-11-27-12:37:07-0", 0, false},
		{"2026-11-27-12:37:07-01", 0, false},
		{"2026-11-27-12:37:07-1000", 0, false},
		{"2026-11-27-12:37:07-", 0, false},
		{"2026-11-27-12:37:07-+1", 0, false},
		{"2026-11-27-12:37:07x", 0, false},
		{"2026-11-27-12:37:7", 0, false},
		{"2026-13-27-12:37:07", 0, false},
		{"127.0.0.1-2026-11-27-12:37:07", 0, false},
		{"lost+found", 0, false},
		{"", 0, false},
	} {
		tm, seq, ok := ParseName(tc.name)
		if ok != tc.ok || (ok && (seq != tc.seq || !tm.Equal(t0))) {
			t.Errorf("ParseName(%q) = %v, %d, %v; want seq %d ok %v", tc.name, tm, seq, ok, tc.seq, tc.ok)
		}
		if ok && Name(tm, seq) != tc.name && nameIn(TimeLayoutFAT, tm, seq) != tc.name {
			t.Errorf("Name(ParseName(%q)) = %q", tc.name, Name(tm, seq))
		}
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func TestOpenBaseCreate(t *testing.T) {
	root := t.TempDir()
	b, err := OpenBase(root, "var/crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Path(); got != filepath.Join(root, "var/crash") {
		t.Errorf("Path() = %q", got)
	}
	for _, p := range []string{"var", "var/crash"} {
		if m := mode(t, filepath.Join(root, p)); !m.IsDir() || m.Perm() != 0o700 {
			t.Errorf("%s: mode %v, want drwx------", p, m)
		}
	}
	var names []string
	for i := 0; i < 3; i++ {
		d, err := b.Create(t0)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, d.Name())
		if m := mode(t, d.Path()); m.Perm() != 0o700 {
			t.Errorf("%s: mode %v", d.Path(), m)
		}
		d.Close()
	}
	want := []string{"2026-11-27-12:37:07", "2026-11-27-12:37:07-1", "2026-11-27-12:37:07-2"}
	if !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}

	// ".." cannot climb out of root.
	b2, err := OpenBase(root, "../../x")
	if err != nil {
		t.Fatal(err)
	}
	if b2.Path() != filepath.Join(root, "x") {
		t.Errorf("../../x opened as %s", b2.Path())
	}
	b2.Close()

	// The path-based Create still works.
	p, err := Create(filepath.Join(root, "other"), t0)
	if err != nil || filepath.Base(p) != want[0] {
		t.Errorf("Create: %q, %v", p, err)
	}
}

func TestOpenBaseRefusesSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "var", "crash")); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBase(root, "var/crash/deeper")
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked component: %v, want a symlink refusal", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("something was created through the symlink: %v", ents)
	}
	// A file where a directory should be.
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBase(root, "file/x"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file component: %v", err)
	}
	// The root itself may be a symlink: it is trusted.
	link := filepath.Join(t.TempDir(), "mnt")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBase(link, "ok")
	if err != nil {
		t.Fatalf("symlinked root: %v", err)
	}
	b.Close()
}

// TestSwappedBase: once open, the base cannot be redirected by replacing
// its path with a symlink; the dump goes where the walk went.
func TestSwappedBase(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	b, err := OpenBase(root, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := os.Rename(filepath.Join(root, "crash"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "crash")); err != nil {
		t.Fatal(err)
	}
	d, err := b.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.CreateFile(VMCoreIncomplete)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("dump")
	if err := d.Commit(f, VMCore); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("dump went through the swapped-in symlink: %v", ents)
	}
	if b, err := os.ReadFile(filepath.Join(root, "moved", Name(t0, 0), VMCore)); err != nil || string(b) != "dump" {
		t.Errorf("dump not in the directory walked to: %q %v", b, err)
	}
}

func TestCreateFileCommit(t *testing.T) {
	root := t.TempDir()
	b, err := OpenBase(root, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := b.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A symlink planted under our file name is not followed.
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	if err := os.Symlink(victim, filepath.Join(d.Path(), DmesgFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateFile(DmesgFile); err == nil {
		t.Error("CreateFile over a symlink succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Error("symlink target changed")
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := d.CreateFile(bad); err == nil {
			t.Errorf("CreateFile(%q) succeeded", bad)
		}
	}
	f, err := d.CreateFile(VMCoreIncomplete)
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, f.Name()); m.Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", m)
	}
	if _, err := d.CreateFile(VMCoreIncomplete); err == nil {
		t.Error("second CreateFile of the same name succeeded")
	}
	// While open it is in progress; Commit never replaces a vmcore.
	ds, err := b.Scan()
	if err != nil || len(ds) != 1 || ds[0].State != InProgress {
		t.Fatalf("Scan while writing: %v %v", ds, err)
	}
	os.WriteFile(filepath.Join(d.Path(), VMCore), []byte("older"), 0o600)
	if err := d.Commit(f, VMCore); err == nil {
		t.Error("Commit replaced an existing vmcore")
	}
	if b, _ := os.ReadFile(filepath.Join(d.Path(), VMCore)); string(b) != "older" {
		t.Error("existing vmcore changed")
	}
}

// layout makes dump directories under base: name → files in it
// ("name->target" makes a symlink, a trailing "/" a directory).
func layout(t *testing.T, base string, dirs map[string][]string) {
	t.Helper()
	for dir, files := range dirs {
		p := filepath.Join(base, dir)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			fp := filepath.Join(p, f)
			switch {
			case strings.Contains(f, "->"):
				name, target, _ := strings.Cut(f, "->")
				os.Symlink(target, filepath.Join(p, name))
			case strings.HasSuffix(f, "/"):
				os.Mkdir(fp, 0o700)
			default:
				os.WriteFile(fp, []byte(f), 0o600)
			}
		}
	}
}

func TestScanPrune(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, VMCore), []byte("not ours"), 0o600)
	base := filepath.Join(root, "crash")
	layout(t, base, map[string][]string{
		"2026-01-01-00:00:00":   {VMCore, DmesgFile, KexecDmesgFile},
		"2026-01-02-00:00:00":   {VMCoreIncomplete, DmesgFile},
		"2026-01-02-00:00:00-1": {DmesgFile},
		"2026-01-03-00:00:00":   {VMCore, "notes.txt"},                    // foreign
		"2026-01-04-00:00:00":   {VMCore + "->" + outside + "/" + VMCore}, // a link only: not a dump
		"2026-01-05-00:00:00":   {},                                       // empty: not a dump
		"2026-01-06-00:00:00":   {VMCore},
		"not-a-dump":            {VMCore},
		"2026-01-07-00:00:00":   {VMCore, VMCoreIncomplete}, // foreign: never left by us
	})
	// A symlink with a dump name pointing outside: neither scanned nor pruned.
	os.Symlink(outside, filepath.Join(base, "2025-01-01-00:00:00"))

	ds, err := Scan(base)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		s := d.Name + " " + string(d.State)
		if len(d.Foreign) > 0 {
			s += " foreign"
		}
		got = append(got, s)
	}
	want := []string{
		"2026-01-01-00:00:00 complete",
		"2026-01-02-00:00:00 incomplete",
		"2026-01-02-00:00:00-1 no-dump",
		"2026-01-03-00:00:00 complete foreign",
		"2026-01-06-00:00:00 complete",
		"2026-01-07-00:00:00 complete foreign",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Scan:\n got %q\nwant %q", got, want)
	}
	if ds[0].File != filepath.Join(base, ds[0].Name, VMCore) || ds[0].Size != int64(len(VMCore)) || !ds[0].Dmesg {
		t.Errorf("first dump: %+v", ds[0])
	}
	if ds, err := Scan(filepath.Join(root, "missing")); err != nil || ds != nil {
		t.Errorf("Scan of a missing base: %v %v", ds, err)
	}

	b, err := OpenBase(root, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A dump in progress, newest: it counts and is never removed.
	d, err := b.Create(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.CreateFile(VMCoreIncomplete)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	removed, err := b.Prune(2)
	if err != nil {
		t.Fatal(err)
	}
	var rm []string
	for _, r := range removed {
		rm = append(rm, r.Name)
	}
	// Ours: 01-01, 01-02, 01-02-1, 01-06, 02-01 (in progress): keep 2.
	if want := []string{"2026-01-01-00:00:00", "2026-01-02-00:00:00", "2026-01-02-00:00:00-1"}; !slices.Equal(rm, want) {
		t.Errorf("Prune removed %q, want %q", rm, want)
	}
	left, _ := os.ReadDir(base)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	for _, n := range []string{"2026-01-03-00:00:00", "2026-01-04-00:00:00", "2026-01-05-00:00:00", "2026-01-06-00:00:00",
		"2026-01-07-00:00:00", "not-a-dump", "2025-01-01-00:00:00", d.Name()} {
		if !slices.Contains(names, n) {
			t.Errorf("Prune removed %s", n)
		}
	}
	if b, err := os.ReadFile(filepath.Join(outside, VMCore)); err != nil || string(b) != "not ours" {
		t.Errorf("file outside the base touched: %q %v", b, err)
	}
	// keep 1: the in-progress dump stays even though it is the only one kept.
	if removed, err := b.Prune(1); err != nil || len(removed) != 1 || removed[0].Name != "2026-01-06-00:00:00" {
		t.Errorf("Prune(1): %v %v", removed, err)
	}
	if removed, err := b.Prune(0); err != nil || removed != nil {
		t.Errorf("Prune(0) removed %v (%v)", removed, err)
	}
}

func TestPruneKeepsForeignThatAppears(t *testing.T) {
	root := t.TempDir()
	b, err := OpenBase(root, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	layout(t, b.Path(), map[string][]string{"2026-01-01-00:00:00": {VMCore}, "2026-01-02-00:00:00": {VMCore}})
	// Something not ours lands in the old directory after the scan: the
	// directory stays (only our file in it goes).
	if err := b.remove("2026-01-01-00:00:00"); err != nil {
		t.Fatal(err)
	}
	layout(t, b.Path(), map[string][]string{"2026-01-02-00:00:00": {"late"}})
	if err := b.remove("2026-01-02-00:00:00"); err == nil {
		t.Error("removed a directory holding a foreign file")
	}
	if _, err := os.Stat(filepath.Join(b.Path(), "2026-01-02-00:00:00", "late")); err != nil {
		t.Error(err)
	}
	if !errors.Is(func() error { _, err := os.Stat(filepath.Join(b.Path(), "2026-01-01-00:00:00")); return err }(), os.ErrNotExist) {
		t.Error("the first directory is still there")
	}
}

// TestCreateOnVFAT: FAT refuses ':' in names; the dump directory is then
// named in TimeLayoutFAT, and Scan finds it. Needs root, a loop device
// and mkfs.vfat; skipped otherwise.
func TestCreateOnVFAT(t *testing.T) {
	mkfs := fixture.NeedTool(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.vfat: %v %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	b, err := OpenBase(mnt, "var/crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var names []string
	for i := 0; i < 2; i++ {
		d, err := b.Create(t0)
		if err != nil {
			t.Fatal(err)
		}
		f, err := d.CreateFile(VMCoreIncomplete)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(f, VMCore); err != nil {
			t.Fatal(err)
		}
		names = append(names, d.Name())
		d.Close()
	}
	if want := []string{"2026-11-27-12.37.07", "2026-11-27-12.37.07-1"}; !slices.Equal(names, want) {
		t.Errorf("names on vfat %q, want %q", names, want)
	}
	ds, err := b.Scan()
	if err != nil || len(ds) != 2 || ds[0].State != Complete || !ds[0].Time.Equal(t0) {
		t.Errorf("Scan on vfat: %v %v", ds, err)
	}
}

// Crash times from a corrupt dump or trailer never make a name ParseName
// cannot read: they fall back to the current time.
func TestAbsurdTimes(t *testing.T) {
	b, err := OpenBase(t.TempDir(), "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tm := range []time.Time{
		time.Unix(253402300800, 0), // 10000-01-01
		time.Unix(1<<62, 0),
		time.Unix(-1, 0),
		time.Unix(-1<<40, 0),
	} {
		if Nameable(tm) {
			t.Errorf("Nameable(%v) = true", tm)
		}
		if _, _, ok := ParseName(Name(tm, 0)); !ok {
			t.Errorf("Name(%v) = %q does not parse", tm, Name(tm, 0))
		}
		d, err := b.Create(tm)
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok := ParseName(d.Name())
		if !ok || time.Since(got) > time.Hour {
			t.Errorf("Create(%v) made %q, not named for now", tm, d.Name())
		}
		d.Close()
	}
	for _, tm := range []time.Time{time.Unix(0, 0), t0, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
		if !Nameable(tm) {
			t.Errorf("Nameable(%v) = false", tm)
		}
		if got, _, ok := ParseName(Name(tm, 0)); !ok || !got.Equal(tm) {
			t.Errorf("Name(%v) = %q reads back as %v, %v", tm, Name(tm, 0), got, ok)
		}
	}
}

func TestStagePublishDiscard(t *testing.T) {
	root := t.TempDir()
	b, err := OpenBase(root, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Create(t0); err != nil { // the name is taken
		t.Fatal(err)
	}
	st, err := b.Stage()
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, st.Path()); m.Perm() != 0o700 || !strings.HasPrefix(filepath.Base(st.Path()), ".") {
		t.Errorf("staging dir %s mode %v", st.Path(), m)
	}
	f, err := st.CreateFile(VMCoreIncomplete)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("dump")
	if ds, _ := b.Scan(); len(ds) != 0 {
		t.Errorf("Scan sees the staging dir or the empty one: %v", ds)
	}
	if err := b.Publish(st, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(f, VMCore); err != nil {
		t.Fatal(err)
	}
	if st.Name() != "2026-11-27-12:37:07-1" {
		t.Errorf("published as %q", st.Name())
	}
	if b, err := os.ReadFile(filepath.Join(root, "crash", "2026-11-27-12:37:07-1", VMCore)); err != nil || string(b) != "dump" {
		t.Errorf("published dump: %q %v", b, err)
	}
	if err := b.Publish(st, t0); err == nil {
		t.Error("published a dump directory twice")
	}
	st.Close()

	st, err = b.Stage()
	if err != nil {
		t.Fatal(err)
	}
	f, _ = st.CreateFile(VMCoreIncomplete)
	f.Close()
	if err := b.Discard(st); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "crash", ".*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}
