package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow bounds the history a zstd frame may ask for. A page frame
// is a single segment of one page; anything wanting more is not ours.
const maxZstdWindow = 1 << 20

// Decompressor decompresses pages of any codec. It is not safe for
// concurrent use: give each goroutine its own. Per-codec state is created
// on first use and reused.
type Decompressor struct {
	zstd  *zstd.Decoder
	zlib  io.ReadCloser
	zsrc  bytes.Reader
	extra [1]byte
}

// NewDecompressor returns a Decompressor.
func NewDecompressor() *Decompressor { return &Decompressor{} }

// Decompress decodes src, stored with page descriptor flags, into dst. The
// page must decode to exactly len(dst) bytes (the dump's block size);
// flags 0 means src is the raw page. Errors wrap ErrCorrupt, ErrSize or
// ErrUnsupported.
func (d *Decompressor) Decompress(dst, src []byte, flags uint32) error {
	c, err := FromFlags(flags)
	if err != nil {
		return err
	}
	switch c {
	case None:
		if len(src) != len(dst) {
			return fmt.Errorf("%w: raw page of %d bytes, want %d", ErrSize, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	case Zlib:
		return d.zlibDecode(dst, src)
	case LZO:
		n, err := lzo1xDecode(dst, src)
		if err != nil {
			return err
		}
		if n != len(dst) {
			return fmt.Errorf("%w: lzo page decodes to %d bytes, want %d", ErrSize, n, len(dst))
		}
		return nil
	case Snappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
		}
		if n != len(dst) {
			return fmt.Errorf("%w: snappy page decodes to %d bytes, want %d", ErrSize, n, len(dst))
		}
		// The strict decoder: it refuses S2 extensions, as the C
		// libsnappy that crash and libkdumpfile use does.
		out, err := snappy.DecodeStrict(dst[:0], src)
		if err != nil {
			return fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
		}
		if len(out) != len(dst) || &out[0] != &dst[0] {
			return fmt.Errorf("%w: snappy page decodes to %d bytes, want %d", ErrSize, len(out), len(dst))
		}
		return nil
	case Zstd:
		return d.zstdDecode(dst, src)
	}
	return fmt.Errorf("%w: %v", ErrUnsupported, c)
}

func (d *Decompressor) zstdDecode(dst, src []byte) error {
	if d.zstd == nil {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(maxZstdWindow),
			// Never decode more than fits in dst.
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return fmt.Errorf("codec: zstd: %w", err)
		}
		d.zstd = dec
	}
	// With the cap limit, a frame longer than dst fails instead of growing
	// a new buffer.
	out, err := d.zstd.DecodeAll(src, dst[:0:len(dst)])
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return fmt.Errorf("%w: zstd page larger than %d bytes", ErrSize, len(dst))
		}
		return fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != len(dst) {
		return fmt.Errorf("%w: zstd page decodes to %d bytes, want %d", ErrSize, len(out), len(dst))
	}
	if len(out) > 0 && &out[0] != &dst[0] {
		return fmt.Errorf("%w: zstd output not in place", ErrCorrupt)
	}
	return nil
}

func (d *Decompressor) zlibDecode(dst, src []byte) error {
	d.zsrc.Reset(src)
	if d.zlib == nil {
		r, err := zlib.NewReader(&d.zsrc)
		if err != nil {
			return fmt.Errorf("%w: zlib: %v", ErrCorrupt, err)
		}
		d.zlib = r
	} else if err := d.zlib.(zlib.Resetter).Reset(&d.zsrc, nil); err != nil {
		return fmt.Errorf("%w: zlib: %v", ErrCorrupt, err)
	}
	n, err := io.ReadFull(d.zlib, dst)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: zlib page decodes to %d bytes, want %d", ErrSize, n, len(dst))
		}
		return fmt.Errorf("%w: zlib: %v", ErrCorrupt, err)
	}
	// The stream must end here; reading on also checks the Adler-32.
	m, err := d.zlib.Read(d.extra[:])
	if m > 0 {
		return fmt.Errorf("%w: zlib page longer than %d bytes", ErrSize, len(dst))
	}
	if err != io.EOF {
		if err == nil {
			err = io.ErrNoProgress
		}
		return fmt.Errorf("%w: zlib: %v", ErrCorrupt, err)
	}
	return nil
}
