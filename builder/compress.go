package builder

import (
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names accepted in Options.Compress.
const (
	CompressZstd = "zstd"
	CompressGzip = "gzip"
	CompressNone = "none"
)

// ErrCompression means an unknown compression name.
var ErrCompression = errors.New("unknown compression")

// maxZstdWindow bounds the zstd window. The kernel's initramfs
// decompressor allocates the whole window up front, in the capture
// kernel's small reserved memory.
const maxZstdWindow = 8 << 20

// zstdWindow returns the smallest power-of-two window that covers n bytes,
// within zstd's minimum and maxZstdWindow: a window larger than the data
// would only cost the capture kernel memory.
func zstdWindow(n int) int {
	w := zstd.MinWindowSize
	if n > w {
		w = 1 << bits.Len(uint(n-1))
	}
	return min(w, maxZstdWindow)
}

// compress writes data to w compressed as named. Both compressors run on
// one goroutine with fixed settings and no timestamps, so the output
// depends on data only.
func compress(w io.Writer, data []byte, how string) error {
	switch how {
	case CompressNone:
		_, err := w.Write(data)
		return err
	case CompressGzip:
		zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return fmt.Errorf("builder: gzip: %w", err)
		}
		// The zero header (no name, no mtime) keeps the output reproducible.
		if _, err := zw.Write(data); err != nil {
			return fmt.Errorf("builder: gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("builder: gzip: %w", err)
		}
		return nil
	case CompressZstd:
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow(len(data))),
			zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithEncoderCRC(true))
		if err != nil {
			return fmt.Errorf("builder: zstd: %w", err)
		}
		zw.ResetContentSize(w, int64(len(data)))
		if _, err := zw.Write(data); err != nil {
			zw.Close()
			return fmt.Errorf("builder: zstd: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("builder: zstd: %w", err)
		}
		return nil
	}
	return fmt.Errorf("builder: %w %q (want %s, %s or %s)", ErrCompression, how, CompressZstd, CompressGzip, CompressNone)
}
