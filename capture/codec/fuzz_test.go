package codec

import (
	"bytes"
	"slices"
	"testing"
)

// The fuzz targets decode into pages of fuzzPage bytes (the smallest
// block size) the first fuzzMax bytes of their input, seeded with pages
// that compress to fewer. Go's fuzzer minimizes each input that finds new
// coverage with runs in the square of its length, counting none until it
// is done: with the input cut, bytes past fuzzMax never matter and are
// dropped first, so minimizing stays short and the targets run thousands
// of inputs per second.
const (
	fuzzPage = 1024
	fuzzMax  = 384
)

// fuzzDecompress checks that no input makes Decompress panic or write
// outside the page, and that success means a whole page.
func fuzzDecompress(f *testing.F, c Codec, page int, seeds [][]byte) {
	for _, s := range seeds {
		if len(s) <= fuzzMax {
			f.Add(s)
		}
	}
	d := NewDecompressor()
	buf := make([]byte, page+16)
	again := make([]byte, page)
	guard := bytes.Repeat([]byte{0xa5}, 16)
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:min(len(data), fuzzMax)]
		for i := range buf {
			buf[i] = 0xa5
		}
		dst := buf[:page:page]
		err := d.Decompress(dst, data, c.Flag())
		if !bytes.Equal(buf[page:], guard) {
			t.Fatal("wrote past the page")
		}
		if err == nil && c == Zstd {
			// A second decode of the same input gives the same page.
			if err := d.Decompress(again, data, c.Flag()); err != nil || !bytes.Equal(again, dst) {
				t.Fatalf("second decode: %v", err)
			}
		}
	})
}

// fuzzPages returns the sample pages cut to fuzzPage bytes, in name order.
func fuzzPages() [][]byte {
	pages := samplePages()
	var out [][]byte
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range pages {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, pages[name][:fuzzPage])
	}
	return out
}

func compressedSeeds(f *testing.F, c Codec) [][]byte {
	comp, err := NewCompressor(c, fuzzPage)
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, p := range fuzzPages() {
		if out, ok := comp.Compress(nil, p); ok {
			seeds = append(seeds, bytes.Clone(out))
		}
	}
	return seeds
}

func FuzzDecompressZlib(f *testing.F) {
	fuzzDecompress(f, Zlib, fuzzPage, compressedSeeds(f, Zlib))
}

func FuzzDecompressSnappy(f *testing.F) {
	fuzzDecompress(f, Snappy, fuzzPage, compressedSeeds(f, Snappy))
}

func FuzzDecompressZstd(f *testing.F) {
	fuzzDecompress(f, Zstd, fuzzPage, compressedSeeds(f, Zstd))
}

// FuzzDecompressLZO decodes into 4 KiB pages: the golden pages are
// makedumpfile's, of a 4 KiB-page machine.
func FuzzDecompressLZO(f *testing.F) {
	seeds := readLZOGolden(f)
	seeds = append(seeds, []byte{22, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0},
		[]byte{19, 'a', 'b', 0xe4, 0x00, 0x11, 0, 0})
	fuzzDecompress(f, LZO, pageSize, seeds)
}

// FuzzRoundTrip compresses arbitrary pages and checks they come back.
// The input, at most 256 bytes, is repeated over the page.
func FuzzRoundTrip(f *testing.F) {
	for _, p := range fuzzPages() {
		f.Add(p[:64])
	}
	comps := map[Codec]*Compressor{}
	for _, c := range []Codec{Zlib, Snappy, Zstd} {
		comps[c], _ = NewCompressor(c, fuzzPage)
	}
	d := NewDecompressor()
	page, got := make([]byte, fuzzPage), make([]byte, fuzzPage)
	var out []byte
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:min(len(data), 256)]
		clear(page)
		// Repeat the input over the page so short inputs compress.
		for i := 0; len(data) > 0 && i < fuzzPage; i += len(data) {
			copy(page[i:], data)
		}
		for c, comp := range comps {
			var ok bool
			out, ok = comp.Compress(out[:0], page)
			if !ok {
				continue
			}
			if err := d.Decompress(got, out, c.Flag()); err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			if !bytes.Equal(got, page) {
				t.Fatalf("%v: round trip differs", c)
			}
		}
	})
}
