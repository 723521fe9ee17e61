package diskdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/internal/fixture"
)

// flatRecord encodes one record header.
func flatRecord(off, size int64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(off))
	binary.BigEndian.PutUint64(b[8:], uint64(size))
	return b
}

func flatHeader() []byte {
	h := make([]byte, 4096)
	copy(h, "makedumpfile")
	binary.BigEndian.PutUint64(h[16:], 1)
	binary.BigEndian.PutUint64(h[24:], 1)
	return h
}

// TestFlattenRoundTrip: a dump written through FlattenWriter and
// rebuilt with Unflatten (and with makedumpfile -R) equals the same dump
// written to a file, byte for byte.
func TestFlattenRoundTrip(t *testing.T) {
	m := synthMachines["holes"]
	direct := fixture.CreateFile(t, "direct")
	if err := m.write(t, direct, codec.Snappy, 2); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(direct.Name())
	if err != nil {
		t.Fatal(err)
	}

	var stream bytes.Buffer
	fw := NewFlattenWriter(&stream)
	if err := m.write(t, fw, codec.Snappy, 2); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if fw.Bytes != int64(stream.Len()) {
		t.Errorf("Bytes = %d, stream has %d", fw.Bytes, stream.Len())
	}
	if !bytes.Equal(stream.Bytes()[:4096], flatHeader()) {
		t.Error("flattened header differs from makedumpfile's")
	}
	if end := stream.Bytes()[stream.Len()-16:]; !bytes.Equal(end, bytes.Repeat([]byte{0xff}, 16)) {
		t.Errorf("stream ends % x, want the end record", end)
	}
	if _, err := Open(bytes.NewReader(stream.Bytes()), int64(stream.Len())); !errors.Is(err, ErrFlattened) {
		t.Errorf("Open(flattened) = %v, want ErrFlattened", err)
	}

	rebuilt := fixture.CreateFile(t, "rebuilt")
	if err := Unflatten(bytes.NewReader(stream.Bytes()), rebuilt); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(rebuilt.Name())
	if !bytes.Equal(got, want) {
		t.Errorf("unflattened file (%d bytes) differs from the direct one (%d bytes)", len(got), len(want))
	}

	mdf := fixture.NeedTool(t, "makedumpfile")
	out := filepath.Join(t.TempDir(), "mdf-R")
	cmd := exec.Command(mdf, "-R", out)
	cmd.Stdin = bytes.NewReader(stream.Bytes())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makedumpfile -R: %v\n%s", err, b)
	}
	got, _ = os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Errorf("makedumpfile -R of our stream (%d bytes) differs from the direct file (%d bytes)", len(got), len(want))
	}
}

// TestUnflattenMakedumpfile: Unflatten of makedumpfile -F output equals
// makedumpfile -R's.
func TestUnflattenMakedumpfile(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a whole vmcore")
	}
	path := fixture.RealDump(t, "6.1").Path
	mdf := fixture.NeedTool(t, "makedumpfile")
	dir := t.TempDir()
	stream := filepath.Join(dir, "stream")
	sf, err := os.OpenFile(stream, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	cmd := exec.Command(mdf, "-F", "-l", "-d", "31", path)
	cmd.Stdout = sf
	if err := cmd.Run(); err != nil {
		t.Fatalf("makedumpfile -F: %v", err)
	}
	ref := filepath.Join(dir, "ref")
	cmd = exec.Command(mdf, "-R", ref)
	sf.Seek(0, 0)
	cmd.Stdin = sf
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makedumpfile -R: %v\n%s", err, b)
	}
	sf.Seek(0, 0)
	ours := fixture.CreateFile(t, "ours")
	if err := Unflatten(sf, ours); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(ref)
	b, _ := os.ReadFile(ours.Name())
	if !bytes.Equal(a, b) {
		t.Fatalf("Unflatten gives %d bytes, makedumpfile -R %d, contents differ", len(b), len(a))
	}
	if _, err := OpenFile(ours.Name()); err != nil {
		t.Error(err)
	}
}

func TestUnflattenBad(t *testing.T) {
	hdr := flatHeader()
	badType := flatHeader()
	binary.BigEndian.PutUint64(badType[16:], 2)
	end := flatRecord(-1, -1)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error // nil: accepted
		off    int64 // stream offset of the *FormatError
	}{
		{"empty stream", cat(hdr, end), nil, 0},
		{"one record", cat(hdr, flatRecord(100, 3), []byte("abc"), end), nil, 0},
		{"short header", hdr[:100], ErrTruncated, 0},
		{"not flattened", cat(make([]byte, 4096), end), ErrNotKdump, 0},
		{"wrong type", cat(badType, end), ErrUnsupported, 16},
		{"no end record", cat(hdr, flatRecord(0, 3), []byte("abc")), ErrTruncated, 4096 + 16 + 3},
		{"truncated record header", cat(hdr, flatRecord(0, 3)[:10]), ErrTruncated, 4096},
		{"truncated data", cat(hdr, flatRecord(0, 30), []byte("abc")), ErrTruncated, 4096},
		{"negative offset", cat(hdr, flatRecord(-5, 3), []byte("abc"), end), ErrCorrupt, 4096},
		{"size zero", cat(hdr, flatRecord(0, 0), end), ErrCorrupt, 4096},
		{"negative size", cat(hdr, flatRecord(0, -2), end), ErrCorrupt, 4096},
		{"huge offset", cat(hdr, flatRecord(1<<62, 3), []byte("abc"), end), ErrCorrupt, 4096},
		{"huge size", cat(hdr, flatRecord(0, 1<<62), []byte("abc"), end), ErrCorrupt, 4096},
		{"second record bad", cat(hdr, flatRecord(0, 3), []byte("abc"), flatRecord(0, -2), end), ErrCorrupt, 4096 + 16 + 3},
	} {
		f := fixture.CreateFile(t, "out")
		err := Unflatten(bytes.NewReader(tc.stream), f)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var fe *FormatError
		if !errors.Is(err, tc.want) || !errors.As(err, &fe) || fe.Off != tc.off {
			t.Errorf("%s: %v, want a *FormatError at stream offset %#x wrapping %v", tc.name, err, tc.off, tc.want)
		}
	}
	// The good record landed.
	f := fixture.CreateFile(t, "out")
	if err := Unflatten(bytes.NewReader(cat(hdr, flatRecord(2, 3), []byte("abc"), flatRecord(0, 1), []byte("x"), end)), f); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Name()); string(b) != "x\x00abc" {
		t.Errorf("unflattened %q", b)
	}
}

func TestFlattenWriter(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFlattenWriter(&buf)
	if n, err := fw.WriteAt(nil, 10); n != 0 || err != nil {
		t.Errorf("empty WriteAt: %d, %v", n, err)
	}
	if _, err := fw.WriteAt([]byte("x"), -1); err == nil {
		t.Error("negative offset accepted")
	}
	fw.WriteAt([]byte("hello"), 7)
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{flatHeader(), flatRecord(7, 5), []byte("hello"), flatRecord(-1, -1)}, nil)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("stream:\n% x\nwant\n% x", buf.Bytes()[4096:], want[4096:])
	}
	if _, err := fw.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt after Close accepted")
	}
}

// extentWriter records where writes land, without keeping their data
// (offsets reach a petabyte).
type extentWriter struct{ bytes, end int64 }

func (w *extentWriter) WriteAt(p []byte, off int64) (int, error) {
	w.bytes += int64(len(p))
	w.end = max(w.end, off+int64(len(p)))
	return len(p), nil
}

// FuzzUnflatten feeds Unflatten streams of a valid header followed by the
// input; an input starting with 'H' replaces the header's first 32 bytes
// instead. Every error is a *FormatError or an I/O error naming the stream
// offset, and the data written is the stream's own.
func FuzzUnflatten(f *testing.F) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	end := flatRecord(-1, -1)
	f.Add(end)
	f.Add(cat(flatRecord(0, 5), []byte("hello"), flatRecord(4096, 3), []byte("abc"), end))
	f.Add(cat(flatRecord(1<<40, 1), []byte("x"), flatRecord(0, 1), []byte("y"), end))
	f.Add(cat(flatRecord(0, 0), end))
	f.Add(cat(flatRecord(7, 30), []byte("short")))
	f.Add(cat([]byte("H"), flatHeader()[:32], end))
	hdr := flatHeader()
	f.Fuzz(func(t *testing.T, in []byte) {
		h := hdr
		if len(in) > 0 && in[0] == 'H' {
			h = bytes.Clone(hdr)
			n := copy(h[:32], in[1:])
			in = in[1+n:]
		}
		stream := cat(h, in)
		var w extentWriter
		err := Unflatten(bytes.NewReader(stream), &w)
		if w.bytes > int64(len(stream)) {
			t.Fatalf("wrote %d bytes from a stream of %d", w.bytes, len(stream))
		}
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error is no *FormatError: %v", err)
		}
		if fe != nil && (fe.Off < 0 || fe.Off > int64(len(stream))) {
			t.Fatalf("error at stream offset %#x of %d: %v", fe.Off, len(stream), err)
		}
	})
}
