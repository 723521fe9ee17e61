package builder

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// maxUnpacked bounds UnpackedSize's count: an initramfs is tens of MiB.
const maxUnpacked = 4 << 30

// UnpackedSize returns how many bytes the initramfs at path unpacks to (the
// newc archive the kernel reads into its rootfs), reading zstd, gzip or
// uncompressed images. The capture kernel holds both at once while it
// unpacks, so the crashkernel= estimate counts it.
func UnpackedSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return 0, fmt.Errorf("builder: %s: %w", path, err)
		}
		defer d.Close()
		r = d
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		d, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("builder: %s: %w", path, err)
		}
		defer d.Close()
		r = d
	case bytes.HasPrefix(magic, []byte("0707")):
	default:
		return 0, fmt.Errorf("builder: %s: not a zstd, gzip or newc initramfs", path)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxUnpacked+1))
	if err != nil {
		return n, fmt.Errorf("builder: unpack %s: %w", path, err)
	}
	if n > maxUnpacked {
		return n, fmt.Errorf("builder: %s unpacks to more than %d bytes", path, int64(maxUnpacked))
	}
	return n, nil
}
