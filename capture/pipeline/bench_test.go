package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// benchVmcore is the real vmcore the benchmarks read: $GOKDUMP_BENCH_VMCORE
// or the 6.1 dump the QEMU tests keep.
func benchVmcore(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("GOKDUMP_BENCH_VMCORE"); p != "" {
		return p
	}
	return fixture.RealDump(tb, "6.1").Path
}

func BenchmarkSave(b *testing.B) {
	path := benchVmcore(b)
	for _, tc := range []struct {
		name    string
		level   filter.Level
		workers int
	}{
		{"d31", 31, 0}, {"d1", 1, 0}, {"d31-w1", 31, 1}, {"d1-w1", 1, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src, err := vmcore.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			out, err := os.Create(filepath.Join(b.TempDir(), "out"))
			if err != nil {
				b.Fatal(err)
			}
			defer out.Close()
			var in int64
			for i := 0; i < b.N; i++ {
				out.Truncate(0)
				st, err := Save(src, out, Options{Level: tc.level, Codec: codec.Zstd, Workers: tc.workers})
				if err != nil {
					b.Fatal(err)
				}
				in = st.BytesIn
			}
			b.SetBytes(in)
		})
	}
}
