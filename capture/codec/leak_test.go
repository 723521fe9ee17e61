package codec

import (
	"runtime"
	"testing"
)

func TestNoGoroutineLeak(t *testing.T) {
	page := samplePages()["text"]
	comp, _ := NewCompressor(Zstd, pageSize)
	out, _ := comp.Compress(nil, page)
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		d := NewDecompressor()
		if err := d.Decompress(make([]byte, pageSize), out, FlagZstd); err != nil {
			t.Fatal(err)
		}
		c, _ := NewCompressor(Zstd, pageSize)
		c.Compress(nil, page)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("%d goroutines before, %d after 50 codecs", before, after)
	}
}
