package codec

import (
	"bytes"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// realPages returns up to n non-zero pages spread over the real 6.1
// vmcore (fixture.RealDump).
func realPages(b testing.TB, n int) [][]byte {
	b.Helper()
	f := fixture.RealDump(b, "6.1").Open(b)
	var total uint64
	for _, r := range f.PhysRanges() {
		total += (r.FileEnd - r.Start) / pageSize
	}
	stride := max(total/uint64(4*n), 1)
	zero := make([]byte, pageSize)
	var pages [][]byte
	for _, r := range f.PhysRanges() {
		for a := r.Start; a+pageSize <= r.FileEnd && len(pages) < n; a += stride * pageSize {
			p := make([]byte, pageSize)
			if _, err := f.ReadPhys(p, a); err != nil {
				b.Fatal(err)
			}
			if !bytes.Equal(p, zero) {
				pages = append(pages, p)
			}
		}
	}
	if len(pages) == 0 {
		b.Skip("no pages")
	}
	return pages
}

func BenchmarkCompress(b *testing.B) {
	for _, c := range []Codec{Zlib, Snappy, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			pages := realPages(b, 4096)
			comp, err := NewCompressor(c, pageSize)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, comp.Bound())
			var in, out int64
			b.SetBytes(pageSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := pages[i%len(pages)]
				o, ok := comp.Compress(dst, p)
				in += pageSize
				if ok {
					out += int64(len(o))
				} else {
					out += pageSize
				}
			}
			b.ReportMetric(float64(out)/float64(in), "ratio")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	for _, c := range []Codec{Zlib, Snappy, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			pages := realPages(b, 4096)
			comp, _ := NewCompressor(c, pageSize)
			var comps [][]byte
			for _, p := range pages {
				if o, ok := comp.Compress(nil, p); ok {
					comps = append(comps, bytes.Clone(o))
				}
			}
			benchDecompress(b, c, comps)
		})
	}
	b.Run("lzo", func(b *testing.B) {
		benchDecompress(b, LZO, readLZOGolden(b))
	})
}

func benchDecompress(b *testing.B, c Codec, comps [][]byte) {
	d := NewDecompressor()
	dst := make([]byte, pageSize)
	b.SetBytes(pageSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Decompress(dst, comps[i%len(comps)], c.Flag()); err != nil {
			b.Fatal(err)
		}
	}
}
