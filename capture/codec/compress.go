package codec

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Compressor compresses pages with one codec. It is not safe for
// concurrent use: give each worker goroutine its own.
type Compressor struct {
	codec   Codec
	bound   int    // worst-case output size for one page
	scratch []byte // output when the caller's dst is too small
	zstd    *zstd.Encoder
	zpage   *zstdPageEnc
	lzo     *lzoEnc
	zlib    *zlib.Writer
	zbuf    appendWriter
}

// NewCompressor returns a Compressor for pages of up to pageSize bytes.
func NewCompressor(c Codec, pageSize int) (*Compressor, error) {
	if pageSize <= 0 || pageSize > 1<<20 {
		return nil, fmt.Errorf("codec: page size %d out of range", pageSize)
	}
	cp := &Compressor{codec: c}
	switch c {
	case None:
		return cp, nil
	case Zstd:
		if pageSize <= zstdMaxPage {
			// The page encoder (zstdenc.go), built for one frame a page.
			cp.zpage = newZstdPageEnc(pageSize)
			cp.bound = pageSize
			break
		}
		// Pages past 64 KiB (no Linux page is that large): klauspost's
		// encoder at its fastest level, no CRC (each page is one tiny frame and the
		// descriptor already bounds its size), one goroutine, small
		// tables: the capture kernel has little memory to spare.
		// Literals are entropy-coded even in a page without matches, as
		// C zstd does at level 1: at this level the encoder otherwise
		// stores such a page raw, and on kernel memory that costs 5 %
		// of the dump for 10-25 % of the speed (BENCHMARKS.md).
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true),
			zstd.WithEncoderCRC(false),
			zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			return nil, fmt.Errorf("codec: zstd: %w", err)
		}
		cp.zstd = enc
		cp.bound = pageSize + pageSize/8 + 64
	case Zlib:
		// Level 1 is zlib's Z_BEST_SPEED, what makedumpfile -c uses.
		w, err := zlib.NewWriterLevel(&cp.zbuf, 1)
		if err != nil {
			return nil, fmt.Errorf("codec: zlib: %w", err)
		}
		cp.zlib = w
		cp.bound = pageSize + pageSize/8 + 64
	case Snappy:
		cp.bound = s2.MaxEncodedLen(pageSize)
	case LZO:
		if pageSize > zstdMaxPage {
			return nil, fmt.Errorf("%w: lzo pages of %d bytes (at most %d)", ErrUnsupported, pageSize, zstdMaxPage)
		}
		// LZO1X-1, byte for byte what liblzo2 and makedumpfile -l
		// write (lzoenc.go).
		cp.lzo = &lzoEnc{}
		cp.bound = pageSize
	default:
		return nil, fmt.Errorf("%w: cannot compress with %v", ErrUnsupported, c)
	}
	cp.scratch = make([]byte, 0, cp.bound)
	return cp, nil
}

// Codec returns the codec c compresses with.
func (c *Compressor) Codec() Codec { return c.codec }

// Flag returns the page descriptor flag for c's output.
func (c *Compressor) Flag() uint32 { return c.codec.Flag() }

// Bound returns the capacity of dst that lets Compress work in place
// without copying.
func (c *Compressor) Bound() int { return c.bound }

// Compress compresses page. The result is written into dst's storage when
// cap(dst) allows (dst[:0] onwards; give it Bound bytes of capacity to
// avoid a copy) and is otherwise only valid until the next call. ok is
// false when the result would not be smaller than the page, or for
// codec None: store the page raw, with flags 0.
func (c *Compressor) Compress(dst, page []byte) (out []byte, ok bool) {
	if c.codec == None || len(page) == 0 {
		return nil, false
	}
	buf := dst[:0]
	inScratch := cap(buf) < c.bound
	if inScratch {
		buf = c.scratch[:0]
	}
	switch c.codec {
	case Zstd:
		if c.zpage != nil {
			out = c.zpage.encode(page)
			if out == nil {
				return nil, false
			}
			out = append(buf, out...)
			break
		}
		out = c.zstd.EncodeAll(page, buf)
	case LZO:
		out = c.lzo.encode(page)
		if out == nil {
			return nil, false
		}
		out = append(buf, out...)
	case Snappy:
		out = s2.EncodeSnappy(buf, page)
	case Zlib:
		c.zbuf.b = buf
		c.zlib.Reset(&c.zbuf)
		if _, err := c.zlib.Write(page); err != nil {
			return nil, false
		}
		if err := c.zlib.Close(); err != nil {
			return nil, false
		}
		out = c.zbuf.b
		c.zbuf.b = nil
	}
	if len(out) >= len(page) {
		return nil, false
	}
	if inScratch && cap(dst) >= len(out) {
		out = append(dst[:0], out...)
	}
	return out, true
}

// appendWriter is an io.Writer that appends to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
