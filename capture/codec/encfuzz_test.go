package codec

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// encFuzzPage makes a page of size from fuzz data: the data repeated over
// the page, each repetition changed by its number when vary is set, so
// that pages have matches at many distances and literals between them.
func encFuzzPage(data []byte, size int, vary bool) []byte {
	page := make([]byte, size)
	if len(data) == 0 {
		return page
	}
	for i := range page {
		b := data[i%len(data)]
		if vary {
			b ^= byte(i / len(data))
		}
		page[i] = b
	}
	return page
}

var fuzzSizes = [...]int{512, 4096, 16384, 65536}

// FuzzZstdPage encodes pages made of arbitrary data and checks that
// every frame decodes to the page with klauspost's decoder and with C
// libzstd's ZSTD_decompress (see cDecoder; skipped when python3 or the
// library is missing), and that the encoder never claims a frame not
// smaller than the page.
func FuzzZstdPage(f *testing.F) {
	for _, p := range zstdTestPages(512) {
		f.Add(p, uint8(0))
	}
	f.Add([]byte("0123456789abcdef"), uint8(1|4))
	f.Add([]byte{0, 0, 0, 1}, uint8(2))
	cdec, _ := startCDecoder()
	encs := map[int]*zstdPageEnc{}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		size := fuzzSizes[sel&3]
		page := encFuzzPage(data, size, sel&4 != 0)
		e := encs[size]
		if e == nil {
			e = newZstdPageEnc(size)
			encs[size] = e
		}
		frame := e.encode(page)
		if frame == nil {
			return
		}
		if len(frame) >= size {
			t.Fatalf("frame of %d bytes for a page of %d", len(frame), size)
		}
		got, err := dec.DecodeAll(frame, nil)
		if err != nil || !bytes.Equal(got, page) {
			t.Fatalf("klauspost: %v (%d bytes)", err, len(got))
		}
		if cdec != nil {
			got, err := cdec.decode(true, frame, size)
			if err != nil || !bytes.Equal(got, page) {
				t.Fatalf("libzstd: %v (%d bytes)", err, len(got))
			}
		}
	})
}

// FuzzLZOPage encodes pages made of arbitrary data and checks that every
// block decodes to the page with the package's decoder and with liblzo2's
// lzo1x_decompress_safe (see cDecoder; skipped when python3 or the
// library is missing).
func FuzzLZOPage(f *testing.F) {
	for _, p := range zstdTestPages(512) {
		f.Add(p, uint8(0))
	}
	f.Add([]byte("0123456789abcdef"), uint8(1|4))
	cdec, _ := startCDecoder()
	e := &lzoEnc{}
	d := NewDecompressor()
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		size := fuzzSizes[sel&3]
		page := encFuzzPage(data, size, sel&4 != 0)
		block := e.encode(page)
		if block == nil {
			return
		}
		if len(block) >= size {
			t.Fatalf("block of %d bytes for a page of %d", len(block), size)
		}
		got := make([]byte, size)
		if err := d.Decompress(got, block, FlagLZO); err != nil || !bytes.Equal(got, page) {
			t.Fatalf("decode: %v", err)
		}
		if cdec != nil {
			got, err := cdec.decode(false, block, size)
			if err != nil || !bytes.Equal(got, page) {
				t.Fatalf("lzo1x_decompress_safe: %v (%d bytes)", err, len(got))
			}
		}
	})
}
