package codec

import (
	"bytes"
	"testing"
)

// fuzzDecompress checks that no input makes Decompress panic or write
// outside the page, and that success means a whole page.
func fuzzDecompress(f *testing.F, c Codec, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	d := NewDecompressor()
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := make([]byte, pageSize+16)
		for i := range buf {
			buf[i] = 0xa5
		}
		dst := buf[:pageSize:pageSize]
		err := d.Decompress(dst, data, c.Flag())
		if !bytes.Equal(buf[pageSize:], bytes.Repeat([]byte{0xa5}, 16)) {
			t.Fatal("wrote past the page")
		}
		if err == nil && c == Zstd {
			// A second decode of the same input gives the same page.
			again := make([]byte, pageSize)
			if err := d.Decompress(again, data, c.Flag()); err != nil || !bytes.Equal(again, dst) {
				t.Fatalf("second decode: %v", err)
			}
		}
	})
}

func compressedSeeds(f *testing.F, c Codec) [][]byte {
	comp, err := NewCompressor(c, pageSize)
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, p := range samplePages() {
		if out, ok := comp.Compress(nil, p); ok {
			seeds = append(seeds, bytes.Clone(out))
		}
	}
	return seeds
}

func FuzzDecompressZlib(f *testing.F)   { fuzzDecompress(f, Zlib, compressedSeeds(f, Zlib)) }
func FuzzDecompressSnappy(f *testing.F) { fuzzDecompress(f, Snappy, compressedSeeds(f, Snappy)) }
func FuzzDecompressZstd(f *testing.F)   { fuzzDecompress(f, Zstd, compressedSeeds(f, Zstd)) }

func FuzzDecompressLZO(f *testing.F) {
	seeds := readLZOGolden(f)
	seeds = append(seeds, []byte{22, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0},
		[]byte{19, 'a', 'b', 0xe4, 0x00, 0x11, 0, 0})
	fuzzDecompress(f, LZO, seeds)
}

// FuzzRoundTrip compresses arbitrary pages and checks they come back.
func FuzzRoundTrip(f *testing.F) {
	for _, p := range samplePages() {
		f.Add(p[:512])
	}
	comps := map[Codec]*Compressor{}
	for _, c := range []Codec{Zlib, Snappy, Zstd} {
		comps[c], _ = NewCompressor(c, pageSize)
	}
	d := NewDecompressor()
	f.Fuzz(func(t *testing.T, data []byte) {
		page := make([]byte, pageSize)
		// Repeat the input over the page so short inputs compress.
		for i := 0; len(data) > 0 && i < pageSize; i += len(data) {
			copy(page[i:], data)
		}
		for c, comp := range comps {
			out, ok := comp.Compress(nil, page)
			if !ok {
				continue
			}
			got := make([]byte, pageSize)
			if err := d.Decompress(got, out, c.Flag()); err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			if !bytes.Equal(got, page) {
				t.Fatalf("%v: round trip differs", c)
			}
		}
	})
}
