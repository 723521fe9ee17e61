package codec

import (
	"bytes"
	"maps"
	"slices"
	"testing"
)

// TestLZOEncode: pages of every size and kind decode with the package's
// decoder and with liblzo2's lzo1x_decompress_safe (as makedumpfile and
// crash read them), and take no more room in all than liblzo2's
// lzo1x_1_compress gives them.
func TestLZOEncode(t *testing.T) {
	c := needCDecoder(t)
	d := NewDecompressor()
	for _, size := range []int{64, 512, 4096, 16384, 49152, 65536} {
		e := &lzoEnc{}
		ours, theirs := 0, 0
		pages := zstdTestPages(size)
		for _, name := range slices.Sorted(maps.Keys(pages)) {
			page := pages[name]
			want, err := c.compressLZO(page)
			if err != nil {
				t.Fatal(err)
			}
			got := e.encode(page)
			if got == nil {
				if len(want) < size {
					t.Errorf("%d/%s: not compressed where liblzo takes %d bytes", size, name, len(want))
				}
				ours += size
				theirs += min(len(want), size)
				continue
			}
			ours += len(got)
			theirs += min(len(want), size)
			back := make([]byte, size)
			if err := d.Decompress(back, got, FlagLZO); err != nil || !bytes.Equal(back, page) {
				t.Errorf("%d/%s: decode: %v", size, name, err)
			}
			if back, err := c.decode(false, got, size); err != nil || !bytes.Equal(back, page) {
				t.Errorf("%d/%s: lzo1x_decompress_safe: %v", size, name, err)
			}
		}
		// On tiny blocks lzo1x_1's longer first literal run can win by
		// a byte or two; pages are 4 KiB and more.
		if ours > theirs && size >= 4096 {
			t.Errorf("%d-byte pages: %d bytes in all, liblzo %d", size, ours, theirs)
		}
	}
}

// TestLZOCompressor: the Compressor writes LZO pages that decode, in
// dst when it has the room, without allocating, and refuses what is
// not smaller than the page.
func TestLZOCompressor(t *testing.T) {
	comp, err := NewCompressor(LZO, pageSize)
	if err != nil {
		t.Fatal(err)
	}
	if comp.Flag() != FlagLZO || !LZO.CanCompress() {
		t.Fatalf("flag %#x", comp.Flag())
	}
	d := NewDecompressor()
	got := make([]byte, pageSize)
	for name, page := range samplePages() {
		dst := make([]byte, 0, comp.Bound())
		out, ok := comp.Compress(dst, page)
		if name == "random" {
			if ok {
				t.Errorf("random page compressed to %d bytes", len(out))
			}
			continue
		}
		if !ok || len(out) >= pageSize {
			t.Fatalf("%s: ok %v, %d bytes", name, ok, len(out))
		}
		if &out[0] != &dst[:1][0] {
			t.Errorf("%s: output not in dst", name)
		}
		if err := d.Decompress(got, out, FlagLZO); err != nil || !bytes.Equal(got, page) {
			t.Errorf("%s: %v", name, err)
		}
		small, ok := comp.Compress(nil, page)
		if !ok || !bytes.Equal(small, out) {
			t.Errorf("%s: without dst: different output", name)
		}
	}
	if raceEnabled {
		return
	}
	page := samplePages()["words"]
	dst := make([]byte, 0, comp.Bound())
	if n := testing.AllocsPerRun(100, func() { comp.Compress(dst, page) }); n != 0 {
		t.Errorf("Compress: %v allocations per page", n)
	}
	if _, err := NewCompressor(LZO, 1<<17); err == nil {
		t.Error("LZO compressor for 128 KiB pages")
	}
}

// TestLZOEncodeReal compares with liblzo2's lzo1x_1_compress on the
// pages of a real vmcore: every page decodes with lzo1x_decompress_safe,
// and the pages take no more room in all.
func TestLZOEncodeReal(t *testing.T) {
	if testing.Short() {
		t.Skip("reads thousands of pages of a real vmcore")
	}
	pages := realPages(t, 4000)
	c := needCDecoder(t)
	e := &lzoEnc{}
	ours, theirs := 0, 0
	for i, page := range pages {
		want, err := c.compressLZO(page)
		if err != nil {
			t.Fatal(err)
		}
		theirs += min(len(want), pageSize)
		got := e.encode(page)
		if got == nil {
			ours += pageSize
			continue
		}
		ours += len(got)
		if back, err := c.decode(false, got, pageSize); err != nil || !bytes.Equal(back, page) {
			t.Fatalf("page %d: lzo1x_decompress_safe: %v", i, err)
		}
	}
	t.Logf("%d pages: %d bytes, liblzo's lzo1x_1 %d", len(pages), ours, theirs)
	if ours > theirs {
		t.Errorf("larger than liblzo: %d > %d bytes", ours, theirs)
	}
}
