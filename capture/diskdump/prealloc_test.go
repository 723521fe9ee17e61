package diskdump

import (
	"bytes"
	"os"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

func TestPreallocate(t *testing.T) {
	fh := fixture.CreateFile(t, "f")
	fh.WriteAt([]byte("head"), 0)
	if err := preallocate(fh, 8192, 100000); err != nil {
		t.Fatal(err)
	}
	fi, _ := fh.Stat()
	if fi.Size() != 8192+100000 {
		t.Errorf("size %d after preallocate", fi.Size())
	}
	b, _ := os.ReadFile(fh.Name())
	if string(b[:4]) != "head" || !bytes.Equal(b[4:], make([]byte, len(b)-4)) {
		t.Error("preallocate changed data")
	}

	// The fallback for file systems without fallocate.
	m := &memFile{}
	m.WriteAt([]byte("head"), 0)
	if err := writeZeros(m, 8192, 3<<20+5); err != nil {
		t.Fatal(err)
	}
	if len(m.b) != 8192+3<<20+5 || string(m.b[:4]) != "head" {
		t.Errorf("writeZeros: %d bytes", len(m.b))
	}

	// Outputs that are not files reserve nothing, or through Preallocate.
	if err := preallocate(m, 0, 1<<40); err != nil {
		t.Error(err)
	}
	d := newFullDisk(fixture.CreateFile(t, "g"), 8192)
	if err := preallocate(d, 0, 4096); err != nil || d.used != 4096 {
		t.Errorf("Preallocator: %v, used %d", err, d.used)
	}
	if err := preallocate(d, 4096, 8192); err == nil {
		t.Error("Preallocator past the limit: no error")
	}
}
