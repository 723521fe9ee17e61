package crashdir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// memDev is a device in memory.
type memDev []byte

func (m memDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, errors.New("out of range")
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, errors.New("short")
	}
	return n, nil
}

func (m memDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("past the end of the device")
	}
	return copy(m[off:], p), nil
}

func TestRawDmesg(t *testing.T) {
	for _, size := range []int64{1 << 20, 1<<20 + 512, 64<<20 + 4095} {
		dev := make(memDev, size)
		text := bytes.Repeat([]byte("[    0.000000] Linux version 6.1\n"), 1000)
		start, err := WriteRawDmesg(dev, size, text, 1700000000)
		if err != nil {
			t.Fatal(err)
		}
		if start%RawBlock != 0 || start != RawDmesgStart(size, len(text)) {
			t.Errorf("size %d: start %#x, RawDmesgStart %#x", size, start, RawDmesgStart(size, len(text)))
		}
		if !bytes.Equal(dev[:start], make([]byte, start)) {
			t.Errorf("size %d: wrote below the log start", size)
		}
		d, err := ReadRawDmesg(dev, size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Text, text) || d.CrashTime != 1700000000 || d.Start != start {
			t.Errorf("size %d: read back %d bytes, crash time %d, start %#x", size, len(d.Text), d.CrashTime, d.Start)
		}
		// Cleared: no trailer.
		if err := ClearRawDmesg(dev, size); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadRawDmesg(dev, size); !errors.Is(err, ErrNoRawDmesg) {
			t.Errorf("size %d: after ClearRawDmesg: %v", size, err)
		}
	}
	// Empty log: still a valid trailer.
	dev := make(memDev, 1<<20)
	if _, err := WriteRawDmesg(dev, 1<<20, nil, 0); err != nil {
		t.Fatal(err)
	}
	if d, err := ReadRawDmesg(dev, 1<<20); err != nil || len(d.Text) != 0 {
		t.Errorf("empty log: %v %v", d, err)
	}
}

func TestRawDmesgRefused(t *testing.T) {
	// A log taking more than a quarter of the device is not written.
	dev := make(memDev, 64<<10)
	if _, err := WriteRawDmesg(dev, int64(len(dev)), make([]byte, 20<<10), 0); err == nil {
		t.Error("oversized log written")
	}
	if _, err := ReadRawDmesg(dev, int64(len(dev))); !errors.Is(err, ErrNoRawDmesg) {
		t.Errorf("blank device: %v", err)
	}
	if _, err := ReadRawDmesg(dev, 100); !errors.Is(err, ErrNoRawDmesg) {
		t.Errorf("tiny device: %v", err)
	}
}

func TestRawDmesgDamaged(t *testing.T) {
	const size = 1 << 20
	good := make(memDev, size)
	if _, err := WriteRawDmesg(good, size, []byte("kernel log\n"), 1); err != nil {
		t.Fatal(err)
	}
	foot := footerOffset(size)
	for name, mutate := range map[string]func(memDev){
		"text":    func(d memDev) { d[RawDmesgStart(size, 11)] ^= 1 },
		"magic":   func(d memDev) { d[foot] ^= 1 },
		"length":  func(d memDev) { d[foot+32] ^= 0x40 },
		"footcrc": func(d memDev) { d[foot+56] ^= 1 },
	} {
		d := append(memDev(nil), good...)
		mutate(d)
		if _, err := ReadRawDmesg(d, size); !errors.Is(err, ErrNoRawDmesg) {
			t.Errorf("%s damaged: %v, want ErrNoRawDmesg", name, err)
		}
	}
}

func FuzzReadRawDmesg(f *testing.F) {
	const size = 64 << 10
	dev := make(memDev, size)
	WriteRawDmesg(dev, size, []byte("log\n"), 7)
	f.Add([]byte(dev[footerOffset(size):][:rawFooterUsed]))
	f.Fuzz(func(t *testing.T, foot []byte) {
		d := make(memDev, size)
		copy(d[footerOffset(size):], foot)
		r, err := ReadRawDmesg(d, size)
		if err == nil && (r.Start < 0 || r.Start+int64(len(r.Text)) > footerOffset(size)) {
			t.Fatalf("accepted a log at %#x+%d", r.Start, len(r.Text))
		}
	})
}

// TestRawDmesgFile: the trailer on a real file the size of a small disk.
func TestRawDmesgFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteRawDmesg(f, 8<<20, []byte("hello\n"), 3); err != nil {
		t.Fatal(err)
	}
	d, err := ReadRawDmesg(f, 8<<20)
	if err != nil || string(d.Text) != "hello\n" {
		t.Fatalf("%v %v", d, err)
	}
}
