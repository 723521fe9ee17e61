package codec

import (
	"testing"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkPageEncoders compares the page encoders with what they
// replaced, on pages of the real 6.1 vmcore: the zstd page encoder with
// klauspost's at SpeedFastest with all literals entropy coded (the
// default before it), the LZO writer. Each reports its output ÷ input.
func BenchmarkPageEncoders(b *testing.B) {
	pages := realPages(b, 4096)
	old, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		b.Fatal(err)
	}
	z, l := newZstdPageEnc(pageSize), &lzoEnc{}
	var dst []byte
	for _, tc := range []struct {
		name string
		enc  func(p []byte) int
	}{
		{"zstd", func(p []byte) int { return len(z.encode(p)) }},
		{"zstd-klauspost-fastest", func(p []byte) int { dst = old.EncodeAll(p, dst[:0]); return len(dst) }},
		{"lzo", func(p []byte) int { return len(l.encode(p)) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var out int64
			b.SetBytes(pageSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n := tc.enc(pages[i%len(pages)])
				if n == 0 || n >= pageSize {
					n = pageSize
				}
				out += int64(n)
			}
			b.ReportMetric(float64(out)/float64(int64(b.N)*pageSize), "ratio")
		})
	}
}
