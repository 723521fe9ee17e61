package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/fixture"
)

// samePages fails unless the dumps at a and b hold the same pages with
// the same contents.
func samePages(t *testing.T, a, b string) int {
	t.Helper()
	da, err := anydump.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := anydump.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pa, pb := make([]byte, da.PageSize), make([]byte, db.PageSize)
	var pfnsA, pfnsB []uint64
	for pfn, err := range da.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		pfnsA = append(pfnsA, pfn)
	}
	for pfn, err := range db.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		pfnsB = append(pfnsB, pfn)
	}
	if len(pfnsA) != len(pfnsB) {
		t.Fatalf("%s holds %d pages, %s %d", a, len(pfnsA), b, len(pfnsB))
	}
	for i, pfn := range pfnsA {
		if pfnsB[i] != pfn {
			t.Fatalf("page %d: pfn %#x in %s, %#x in %s", i, pfn, a, pfnsB[i], b)
		}
		_, ea := da.ReadPhys(pa, pfn*uint64(da.PageSize))
		_, eb := db.ReadPhys(pb, pfn*uint64(db.PageSize))
		if ea != nil || eb != nil || !bytes.Equal(pa, pb) {
			t.Fatalf("pfn %#x differs: %v, %v", pfn, ea, eb)
		}
	}
	return len(pfnsA)
}

// TestSaveToStdout: "-" is standard output: a file there takes the dump
// itself; anything else needs --flat, whose stream is the same dump.
func TestSaveToStdout(t *testing.T) {
	core := testVmcore(t, 300, 1764246000)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	if code, _, stderr := gokdump("save", "-q", "-d", "1", "--vmcore", core, ref); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}

	// A pipe, a buffer: --flat, or a usage error that says so.
	code, stdout, stderr := gokdump("save", "-d", "1", "--vmcore", core, "-")
	if code != exitUsage || !strings.Contains(stderr, "add --flat") || stdout != "" {
		t.Errorf("save - to a buffer: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = gokdump("save", "--flat", "-d", "1", "--vmcore", core, "-")
	if code != exitOK || !strings.Contains(stderr, "standard output: level 1") {
		t.Fatalf("save --flat -: exit %d: %s", code, stderr)
	}
	if !diskdump.IsFlattened([]byte(stdout)) {
		t.Fatal("not a flattened stream")
	}
	flat := filepath.Join(dir, "flat")
	os.WriteFile(flat, []byte(stdout), 0o600)
	unflat := filepath.Join(dir, "unflat")
	out, _ := os.Create(unflat)
	if err := diskdump.Unflatten(bytes.NewReader([]byte(stdout)), out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	sameBytes(t, unflat, mustRead(t, ref))

	// A regular file as standard output: the dump itself.
	f, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	var e bytes.Buffer
	if code := runWith([]string{"save", "-d", "1", "--vmcore", core, "-"}, streams{nil, f, &e}); code != exitOK {
		t.Fatalf("save - > file: exit %d: %s", code, e.String())
	}
	f.Close()
	sameBytes(t, f.Name(), mustRead(t, ref))
	// Opened to append, pwrite would not write at the offsets.
	f, _ = os.OpenFile(filepath.Join(dir, "append"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	defer f.Close()
	e.Reset()
	if code := runWith([]string{"save", "--vmcore", core, "-"}, streams{nil, f, &e}); code != exitUsage || !strings.Contains(e.String(), "append") {
		t.Errorf("save - >> file: exit %d: %s", code, e.String())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSaveFlatFile: --flat to a file, read back by savecore.
func TestSaveFlatFile(t *testing.T) {
	core := testVmcore(t, 200, 1764246000)
	dir := t.TempDir()
	flat := filepath.Join(dir, "vmcore.flat")
	if code, _, stderr := gokdump("save", flat, "--flat", "-q", "-d", "1", "--vmcore", core); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Stat(flat); err != nil || fi.Mode().Perm() != 0o600 || !diskdump.IsFlattened(mustRead(t, flat)[:4096]) {
		t.Fatalf("%s: %v %v", flat, fi, err)
	}
	code, stdout, stderr := gokdump("savecore", flat, filepath.Join(dir, "crash"))
	if code != exitOK {
		t.Fatalf("savecore: exit %d: %s%s", code, stdout, stderr)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "crash", "*", "vmcore"))
	if len(m) != 1 {
		t.Fatalf("savecore saved %q", m)
	}
	direct := filepath.Join(dir, "direct")
	gokdump("save", "-q", "-d", "1", "--vmcore", core, direct)
	sameBytes(t, m[0], mustRead(t, direct))
}

// TestSaveRefilter filters a saved kdump file again: at a higher level
// (the source's level stays in), with another codec, and as ELF; every
// page left is the source's.
func TestSaveRefilter(t *testing.T) {
	core := testVmcore(t, 300, 1764246000)
	dir := t.TempDir()
	d0 := filepath.Join(dir, "d0.zlib")
	if code, _, stderr := gokdump("save", "-q", "-d", "0", "--compress", "zlib", "--vmcore", core, d0); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d1 := filepath.Join(dir, "d1")
	code, stdout, stderr := gokdump("save", "-d", "1", "--compress", "snappy", "--vmcore", d0, d1)
	if code != exitOK {
		t.Fatalf("re-filter: exit %d: %s", code, stderr)
	}
	// A third of the pages are zero: they stay in the file as zero pages.
	if !strings.Contains(stdout, "level 1, kdump snappy: 300 of 300 pages in the dump (200 with their contents, 100 zero pages sharing one), 0 left out") {
		t.Errorf("summary:\n%s", stdout)
	}
	samePages(t, d1, d0)
	in, _ := anydump.Open(d1)
	if in.KdumpFile.Header.DumpLevel != 1 || in.KdumpFile.Header.Compression().String() != "snappy" {
		t.Errorf("level %d, %v", in.KdumpFile.Header.DumpLevel, in.KdumpFile.Header.Compression())
	}
	in.Close()

	// ELF from kdump: the zero pages are left out.
	elfOut := filepath.Join(dir, "d1.elf")
	code, stdout, stderr = gokdump("save", "-d", "1", "--format", "elf", "--vmcore", d1, elfOut)
	if code != exitOK || !strings.Contains(stdout, "200 with their contents") {
		t.Fatalf("to ELF: exit %d: %s%s", code, stdout, stderr)
	}
	e, _ := anydump.Open(elfOut)
	e.Close()
	if e.Format != anydump.ELF {
		t.Errorf("format %s", e.Format)
	}

	// A lower level than the source's: the source's pages left out stay
	// out, and save says so.
	code, _, stderr = gokdump("save", "-d", "0", "--vmcore", d1, filepath.Join(dir, "d0again"))
	if code != exitOK || !strings.Contains(stderr, "was saved at dump level 1: the pages it left out stay out; saving at level 1") {
		t.Errorf("-d 0 of a level 1 dump: exit %d: %s", code, stderr)
	}
	samePages(t, filepath.Join(dir, "d0again"), d1)
	// --quiet hides the note (this core's warnings stay).
	code, stdout, stderr = gokdump("save", "-q", "-d", "0", "--vmcore", d1, filepath.Join(dir, "d0quiet"))
	if code != exitOK || stdout != "" || strings.Contains(stderr, "note:") {
		t.Errorf("quiet: exit %d, %q %q", code, stdout, stderr)
	}
	// A flattened stream is not a dump to filter: savecore first.
	flat := filepath.Join(dir, "flat")
	gokdump("save", "-q", "--flat", "-d", "1", "--vmcore", core, flat)
	if code, _, stderr := gokdump("save", "--vmcore", flat, filepath.Join(dir, "x")); code != exitFailed ||
		!strings.Contains(stderr, "is a flattened stream") || !strings.Contains(stderr, "gokdump savecore "+flat) {
		t.Errorf("flattened input: exit %d: %s", code, stderr)
	}
}

// TestSaveQuiet: --quiet prints neither notes nor the summary, but what
// the dump lacks is still said.
func TestSaveQuiet(t *testing.T) {
	core := testVmcore(t, 300, 1764246000)
	dir := t.TempDir()
	code, stdout, stderr := gokdump("save", "-d", "31", "--vmcore", core, filepath.Join(dir, "loud"))
	if code != exitOK || !strings.Contains(stdout, "level 31") || !strings.Contains(stderr, "workers") {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	// This core has no struct pages: the filter cannot judge classes
	// 2..16, which is a warning.
	if !strings.Contains(stderr, "warning:") {
		t.Fatalf("no warning for a core without struct pages:\n%s", stderr)
	}
	code, stdout, qerr := gokdump("save", "--quiet", "-d", "31", "--vmcore", core, filepath.Join(dir, "quiet"))
	if code != exitOK || stdout != "" {
		t.Errorf("quiet: exit %d, stdout %q", code, stdout)
	}
	for _, l := range strings.Split(strings.TrimSpace(qerr), "\n") {
		if !strings.Contains(l, "warning:") {
			t.Errorf("quiet printed a note: %q", l)
		}
	}
	if !strings.Contains(qerr, "warning:") {
		t.Errorf("quiet hid the warnings:\n%s", qerr)
	}
	// A cut vmcore: the missing memory is said, quiet or not.
	b := mustRead(t, core)
	cut := filepath.Join(dir, "cut")
	os.WriteFile(cut, b[:len(b)-100*4096], 0o600)
	code, _, stderr = gokdump("save", "-q", "-d", "1", "--vmcore", cut, filepath.Join(dir, "fromcut"))
	if code != exitIncomplete || !strings.Contains(stderr, "missing: 100 pages") || !strings.Contains(stderr, "incomplete but readable") {
		t.Errorf("cut: exit %d:\n%s", code, stderr)
	}
}

// TestSaveSummaryAgreesWithInfo: the pages save says are in the dump are
// those info counts, for both formats.
func TestSaveSummaryAgreesWithInfo(t *testing.T) {
	core := testVmcore(t, 900, 1764246000)
	inDump := regexp.MustCompile(`: ([0-9]+) of ([0-9]+) pages in the dump \(([0-9]+) with their contents`)
	infoPages := regexp.MustCompile(`pages: +([0-9]+) in the dump`)
	for _, args := range [][]string{{"-d", "1"}, {"-d", "0"}, {"-d", "1", "--format", "elf"}, {"-d", "31", "--format", "elf"}} {
		out := filepath.Join(t.TempDir(), "dump")
		code, stdout, stderr := gokdump(append(append([]string{"save", "--vmcore", core}, args...), out)...)
		m := inDump.FindStringSubmatch(stdout)
		if code != exitOK || m == nil {
			t.Fatalf("%q: exit %d:\n%s%s", args, code, stdout, stderr)
		}
		_, info, _ := gokdump("info", out)
		im := infoPages.FindStringSubmatch(info)
		if im == nil || im[1] != m[1] {
			t.Errorf("%q: save says %s pages in the dump, info:\n%s", args, m[1], info)
		}
		if kept, _ := strconv.Atoi(m[3]); args[1] == "1" && kept != 600 {
			t.Errorf("%q: %d kept, want 600 (a third of the pages are zero)", args, kept)
		}
	}
}

// TestSaveStats: --stats prints makedumpfile's rows, in hex too, and
// says why Original pages differs from makedumpfile's.
func TestSaveStats(t *testing.T) {
	core := testVmcore(t, 300, 1764246000)
	code, stdout, _ := gokdump("save", "-d", "1", "--stats", "--vmcore", core, filepath.Join(t.TempDir(), "dump"))
	words := strings.Join(strings.Fields(stdout), " ")
	for _, want := range []string{
		"Original pages (*) 300 0x000000000000012c 1.2 MiB",
		"Pages filled with zero 100 0x0000000000000064",
		"Remaining pages 200 0x00000000000000c8",
		"Pages in the dump file 300",
		"kernel image's pages a second time",
	} {
		if code != exitOK || !strings.Contains(words, want) {
			t.Errorf("exit %d; --stats lacks %q:\n%s", code, want, stdout)
		}
	}
}

// TestSaveOntoSymlink: -f does not write through a symbolic link; the
// refusal names the link and where it points.
func TestSaveOntoSymlink(t *testing.T) {
	core := testVmcore(t, 48, 1764246000)
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("an older dump"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	code, _, stderr := gokdump("save", "-f", "-q", "--vmcore", core, link)
	if code != exitFailed || !strings.Contains(stderr, link+" is a symbolic link to "+target) {
		t.Errorf("exit %d: %s", code, stderr)
	}
	sameBytes(t, target, []byte("an older dump"))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced")
	}
	noLeftovers(t, dir, "target", "link")
}

// TestSaveRealReaders: a real dump saved at level 1 (zlib) and filtered
// again to 31, with zstd, as ELF, and as a flattened stream: drgn opens
// them, makedumpfile -R rebuilds the stream and reads the kernel log from
// it, and savecore rebuilds the same file.
func TestSaveRealReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("saves whole dumps and runs drgn")
	}
	d := fixture.RealDump(t, "6.1")
	dir := t.TempDir()
	d1 := filepath.Join(dir, "d1.zlib")
	if code, _, stderr := gokdump("save", "-q", "-d", "1", "--compress", "zlib", "--vmcore", d.Path, d1); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d31 := filepath.Join(dir, "d31.zstd")
	code, stdout, stderr := gokdump("save", "--vmcore", d1, "-d", "31", d31)
	if code != exitOK {
		t.Fatalf("re-filter: exit %d: %s", code, stderr)
	}
	t.Logf("%s", stdout)
	// The same pages as filtering the vmcore itself at 31.
	direct := filepath.Join(dir, "direct")
	gokdump("save", "-q", "--vmcore", d.Path, "-d", "31", direct)
	n := samePages(t, d31, direct)
	t.Logf("re-filtered: %d pages, the same as from the vmcore", n)
	fixture.CheckWithDrgn(t, d31, d, true)

	elfOut := filepath.Join(dir, "d31.elf")
	if code, _, stderr := gokdump("save", "-q", "--vmcore", d1, "-d", "31", "--format", "elf", elfOut); code != exitOK {
		t.Fatalf("to ELF: exit %d: %s", code, stderr)
	}
	fixture.CheckWithDrgn(t, elfOut, d, true)

	flat := filepath.Join(dir, "d31.flat")
	if code, _, stderr := gokdump("save", "-q", "--flat", "--vmcore", d1, "-d", "31", "--compress", "zlib", flat); code != exitOK {
		t.Fatalf("--flat: exit %d: %s", code, stderr)
	}
	restored := filepath.Join(dir, "restored")
	in, _ := os.Open(flat)
	defer in.Close()
	cmd := fixture.NeedTool(t, "makedumpfile")
	c := exec.Command(cmd, "-R", restored)
	c.Stdin = in
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("makedumpfile -R: %v\n%s", err, out)
	}
	if log := fixture.MakedumpfileDmesg(t, restored); !bytes.Contains(log, []byte(d.Marker("KMSG", 0))) {
		t.Errorf("makedumpfile --dump-dmesg of the rebuilt stream lacks %s", d.Marker("KMSG", 0))
	}
	if code, out, stderr := gokdump("savecore", flat, filepath.Join(dir, "crash")); code != exitOK {
		t.Fatalf("savecore: exit %d: %s%s", code, out, stderr)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "crash", "*", "vmcore"))
	if len(m) != 1 {
		t.Fatalf("savecore saved %q", m)
	}
	sameBytes(t, m[0], mustRead(t, restored))
}
