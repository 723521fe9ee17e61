package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/crashdir"
)

const crashT = 1764246000 // CRASHTIME of the dumps below: 2025-11-27 12:20:00 UTC

// flattenedCore saves a synthetic vmcore crashed at crashTime (none if 0)
// as the capture writes a raw device: a flattened kdump stream.
func flattenedCore(t *testing.T, crashTime int64, mem ...memRange) []byte {
	t.Helper()
	if mem == nil {
		mem = []memRange{{0, 96}}
	}
	src, err := vmcore.Open(testVmcoreAt(t, crashTime, mem...))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var b bytes.Buffer
	fw := diskdump.NewFlattenWriter(&b)
	if _, err := pipeline.Save(src, fw, pipeline.Options{Level: filter.Level(1), Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawDevice writes stream to a file as to a raw device 1 MiB larger,
// with a log trailer unless log is "".
func rawDevice(t *testing.T, stream []byte, log string, logTime int64) string {
	t.Helper()
	dev := filepath.Join(t.TempDir(), "disk")
	img := append(append([]byte(nil), stream...), bytes.Repeat([]byte{0xaa}, 1<<20)...)
	if err := os.WriteFile(dev, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if log != "" {
		f, _ := os.OpenFile(dev, os.O_RDWR, 0)
		defer f.Close()
		if _, err := crashdir.WriteRawDmesg(f, int64(len(img)), []byte(log), logTime); err != nil {
			t.Fatal(err)
		}
	}
	return dev
}

// flatRecords splits a flattened stream into its header and records
// (each with its 16-byte record header), the end record excluded.
func flatRecords(t *testing.T, s []byte) (hdr []byte, recs [][]byte) {
	t.Helper()
	hdr, s = s[:4096], s[4096:]
	for {
		off, size := int64(binary.BigEndian.Uint64(s)), int64(binary.BigEndian.Uint64(s[8:]))
		if off == -1 && size == -1 {
			return hdr, recs
		}
		recs = append(recs, s[:16+size])
		s = s[16+size:]
	}
}

// savecore runs savecore and returns its exit code and output.
func savecore(t *testing.T, dev, dir string, clear bool) (int, string) {
	t.Helper()
	var out bytes.Buffer
	err := runSavecore(dev, dir, clear, &out)
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
	}
	return exitCode(err), out.String()
}

// dumpDirs lists the dump directories in base, and fails on leftovers.
func dumpDirs(t *testing.T, base string) []crashdir.Dump {
	t.Helper()
	ds, err := crashdir.Scan(base)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(base, ".*")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
	return ds
}

func head(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 16)
	f.ReadAt(b, 0)
	return b
}

func TestSavecoreNamesForTheDumpAndIsIdempotent(t *testing.T) {
	stream := flattenedCore(t, crashT)
	dev := rawDevice(t, stream, "", 0) // makedumpfile -F: no trailer
	base := filepath.Join(t.TempDir(), "crash")
	if code, out := savecore(t, dev, base, false); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	ds := dumpDirs(t, base)
	if len(ds) != 1 || ds[0].Name != "2025-11-27-12:20:00" || ds[0].State != crashdir.Complete {
		t.Fatalf("dumps %v", ds)
	}
	saved, _ := os.ReadFile(ds[0].File)
	code, out := savecore(t, dev, base, false)
	if code != exitOK || !strings.Contains(out, "already saved as "+ds[0].File) {
		t.Errorf("rerun: exit %d:\n%s", code, out)
	}
	if ds := dumpDirs(t, base); len(ds) != 1 {
		t.Errorf("rerun made another copy: %v", ds)
	}
	// Already saved and complete: --clear may erase the stream now.
	if code, out := savecore(t, dev, base, true); code != exitOK || !strings.Contains(out, "cleared "+dev) {
		t.Errorf("rerun --clear: exit %d:\n%s", code, out)
	}
	if diskdump.IsFlattened(head(t, dev)) {
		t.Error("stream not cleared")
	}
	code, out = savecore(t, dev, base, false)
	if code != exitNoDump || !strings.Contains(out, "no makedumpfile flattened stream at offset 0 of "+dev+" (found: zeros") {
		t.Errorf("after --clear: exit %d:\n%s", code, out)
	}
	sameBytes(t, ds[0].File, saved)
}

// Memory holes leave bitmap blocks unwritten: that is no gap.
func TestSavecoreMemoryHoles(t *testing.T) {
	stream := flattenedCore(t, crashT, memRange{0, 40}, memRange{1 << 20, 30}, memRange{3<<20 + 7, 20})
	// The test means something only if the stream leaves bitmap blocks out.
	var file memFile
	if err := diskdump.Unflatten(bytes.NewReader(stream), &file); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	bitmap1 := (1 + int64(le.Uint32(file[432:]))) * 4096
	_, recs := flatRecords(t, stream)
	var cov extents
	for _, r := range recs {
		cov.add(int64(binary.BigEndian.Uint64(r)), int64(len(r)-16))
	}
	if cov.missing(bitmap1, int64(le.Uint32(file[436:]))*4096) == 0 {
		t.Fatal("every bitmap block written")
	}
	dev := rawDevice(t, stream, "[    1.000000] the log\n", crashT)
	base := filepath.Join(t.TempDir(), "crash")
	if code, out := savecore(t, dev, base, true); code != exitOK || !strings.Contains(out, "cleared") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	ds := dumpDirs(t, base)
	if len(ds) != 1 || ds[0].State != crashdir.Complete {
		t.Fatalf("dumps %v", ds)
	}
	d, err := anydump.Open(ds[0].File)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := 0
	for _, err := range d.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if d.Incomplete || n == 0 {
		t.Errorf("incomplete %v, %d pages", d.Incomplete, n)
	}
}

// A trailer of another crash is not the dump's: the directory is named
// for the dump's crash, and the trailer is left on the device.
func TestSavecoreOtherCrashTrailer(t *testing.T) {
	stream := flattenedCore(t, crashT)
	for _, tt := range []struct {
		name    string
		logTime int64
		say     string
	}{
		{"older", crashT - 86400, "of an older crash (2025-11-26T12:20:00Z) than the dump (2025-11-27T12:20:00Z): ignored"},
		{"later", crashT + 600, "of a later crash (2025-11-27T12:30:00Z) than the dump (2025-11-27T12:20:00Z), whose dump is not on the device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev := rawDevice(t, stream, "[    1.000000] another crash's log\n", tt.logTime)
			base := filepath.Join(t.TempDir(), "crash")
			code, out := savecore(t, dev, base, true)
			if code != exitOK || !strings.Contains(out, tt.say) {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			ds := dumpDirs(t, base)
			if len(ds) != 1 || ds[0].Name != "2025-11-27-12:20:00" {
				t.Fatalf("dumps %v", ds)
			}
			if log, err := os.ReadFile(filepath.Join(ds[0].Dir, crashdir.DmesgFile)); err == nil && strings.Contains(string(log), "another crash") {
				t.Error("the other crash's log was saved as the dump's")
			}
			f, _ := os.Open(dev)
			fi, _ := f.Stat()
			if _, err := crashdir.ReadRawDmesg(f, fi.Size()); err != nil {
				t.Errorf("--clear erased the other crash's log: %v", err)
			}
			f.Close()
		})
	}
}

func TestSavecoreNothingToRecover(t *testing.T) {
	dir := t.TempDir()
	kdump := filepath.Join(dir, "vmcore.kdump")
	if code, _, stderr := gokdump("save", "--quiet", "--vmcore", testVmcore(t, 12, crashT), kdump); code != exitOK {
		t.Fatal(stderr)
	}
	for _, tt := range []struct {
		name  string
		data  []byte
		found string
	}{
		{"empty", nil, "nothing: it is empty"},
		{"short text", []byte("hello\n"), "unrecognised data beginning 68 65 6c 6c 6f 0a; 6 bytes in all"},
		{"zeros", make([]byte, 1<<16), "zeros"},
		{"ext4", append(extSuper("DUMPS"), make([]byte, 1<<16)...), `ext4 filesystem LABEL="DUMPS"`},
		{"kdump file", nil, "a kdump-compressed dump, already rebuilt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev := kdump
			if tt.name != "kdump file" {
				dev = filepath.Join(t.TempDir(), "dev")
				os.WriteFile(dev, tt.data, 0o600)
			}
			base := filepath.Join(t.TempDir(), "crash")
			code, out := savecore(t, dev, base, true)
			if code != exitNoDump || !strings.Contains(out, "(found: "+tt.found) {
				t.Errorf("exit %d:\n%s", code, out)
			}
			if _, err := os.Stat(base); err == nil {
				t.Error("made the dump directory for nothing")
			}
		})
	}
	// An error that is not "nothing here" exits 1.
	if code, out := savecore(t, filepath.Join(dir, "absent"), dir, false); code != exitFailed {
		t.Errorf("missing device: exit %d:\n%s", code, out)
	}
	if code, _, _ := gokdump("savecore", "only-one-arg"); code != exitUsage {
		t.Errorf("usage: exit %d", code)
	}
	if code, _, _ := gokdump("savecore", kdump, dir); code != exitNoDump {
		t.Errorf("command exit %d, want %d", code, exitNoDump)
	}
}

// A stream missing records never becomes a complete vmcore, and its
// device is not cleared.
func TestSavecoreMissingRecords(t *testing.T) {
	stream := flattenedCore(t, crashT)
	hdr, recs := flatRecords(t, stream)
	if len(recs) < 4 {
		t.Fatalf("only %d records", len(recs))
	}
	var everyOther, cut []byte
	everyOther = append(everyOther, hdr...)
	for i, r := range recs {
		if i%2 == 0 {
			everyOther = append(everyOther, r...)
		}
	}
	everyOther = append(everyOther, bytes.Repeat([]byte{0xff}, 16)...)
	cut = stream[:len(stream)-16-len(recs[len(recs)-1])/2] // no end record
	// Without the records of the 2nd bitmap the dump opens and holds no
	// page at all.
	var file memFile
	if err := diskdump.Unflatten(bytes.NewReader(stream), &file); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	bitmap2 := (1+int64(le.Uint32(file[432:])))*4096 + int64(le.Uint32(file[436:]))/2*4096
	noBitmap := append([]byte(nil), hdr...)
	for _, r := range recs {
		if off := int64(binary.BigEndian.Uint64(r)); off < bitmap2 || off >= bitmap2+4096 {
			noBitmap = append(noBitmap, r...)
		}
	}
	noBitmap = append(noBitmap, bytes.Repeat([]byte{0xff}, 16)...)
	for _, tt := range []struct {
		name   string
		stream []byte
		say    string
	}{
		{"every other record", everyOther, "missing records: "},
		{"cut short", cut, "cut short or damaged"},
		{"no 2nd bitmap", noBitmap, "past the data of the 0 pages the 2nd bitmap counts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev := rawDevice(t, tt.stream, "[    1.000000] the log\n", crashT)
			before, _ := os.ReadFile(dev)
			base := filepath.Join(t.TempDir(), "crash")
			code, out := savecore(t, dev, base, true)
			if code != exitIncomplete || !strings.Contains(out, tt.say) || !strings.Contains(out, "left as it is") {
				t.Fatalf("exit %d, want %d:\n%s", code, exitIncomplete, out)
			}
			sameBytes(t, dev, before)
			ds := dumpDirs(t, base)
			if len(ds) != 1 || ds[0].State != crashdir.Incomplete || ds[0].Name != "2025-11-27-12:20:00" {
				t.Fatalf("dumps %v", ds)
			}
			d, err := anydump.Open(ds[0].File)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Incomplete {
				t.Error("rebuilt dump not flagged incomplete")
			}
			d.Close()
			if log, _ := os.ReadFile(filepath.Join(ds[0].Dir, crashdir.DmesgFile)); string(log) != "[    1.000000] the log\n" {
				t.Errorf("log %q", log)
			}
			// Again: recognised, still incomplete.
			code, out = savecore(t, dev, base, true)
			if code != exitIncomplete || !strings.Contains(out, "already saved") {
				t.Errorf("rerun: exit %d:\n%s", code, out)
			}
			if len(dumpDirs(t, base)) != 1 {
				t.Error("rerun made another copy")
			}
			sameBytes(t, dev, before)
		})
	}
}

// Crash times no directory can be named for fall back to a sane name.
func TestSavecoreAbsurdCrashTime(t *testing.T) {
	for _, tt := range []struct {
		name              string
		dumpTime, logTime int64
		want              string
	}{
		{"trailer in year 10000, no CRASHTIME", 0, 253402300800 + 3600, ""},
		{"CRASHTIME in year 10000, trailer sane", 253402300800 + 3600, crashT, "2025-11-27-12:20:00"},
		{"negative CRASHTIME", -5, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := ""
			if tt.logTime != 0 {
				log = "[    1.000000] the log\n"
			}
			dev := rawDevice(t, flattenedCore(t, tt.dumpTime), log, tt.logTime)
			base := filepath.Join(t.TempDir(), "crash")
			if code, out := savecore(t, dev, base, false); code != exitOK {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			ds := dumpDirs(t, base)
			if len(ds) != 1 {
				t.Fatalf("dumps %v (names that do not parse are not listed)", ds)
			}
			if tt.want != "" && ds[0].Name != tt.want {
				t.Errorf("named %s, want %s", ds[0].Name, tt.want)
			}
			if tt.want == "" && time.Since(ds[0].Time) > time.Hour {
				t.Errorf("named %s, not for now", ds[0].Name)
			}
		})
	}
}

// memFile is a file in memory, for io.WriterAt.
type memFile []byte

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(*m) {
		*m = append(*m, make([]byte, end-len(*m))...)
	}
	return copy((*m)[off:], p), nil
}
