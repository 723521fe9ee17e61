package builder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestUnpackedSize(t *testing.T) {
	dir := t.TempDir()
	initPath := writeInit(t, dir, 100_000, 7)
	for _, c := range []string{CompressZstd, CompressGzip, CompressNone} {
		var b bytes.Buffer
		res, err := Build(context.Background(), &b, Options{Init: initPath, Compress: c, Arch: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "img."+c)
		os.WriteFile(img, b.Bytes(), 0o600)
		n, err := UnpackedSize(img)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if n != res.CPIOSize {
			t.Errorf("%s: unpacked %d, archive %d", c, n, res.CPIOSize)
		}
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not an initramfs"), 0o600)
	if _, err := UnpackedSize(junk); err == nil {
		t.Error("junk accepted")
	}
}
