package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/gokdump/gokdump/internal/fixture"
)

// zstdTestPages returns pages of size n that exercise the encoder's
// paths: repeat offsets, long and short matches, literals of every kind
// (none, raw, RLE, one and four Huffman streams), sequences under each
// table mode.
func zstdTestPages(n int) map[string][]byte {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	pages := map[string][]byte{}
	fill := func(name string, f func(p []byte)) {
		p := make([]byte, n)
		f(p)
		pages[name] = p
	}
	fill("zero", func([]byte) {})
	fill("ones", func(p []byte) {
		for i := range p {
			p[i] = 0xff
		}
	})
	fill("random", func(p []byte) {
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	})
	fill("skewed", func(p []byte) {
		// Literals only, of a distribution steep enough that Huffman
		// codes pass 11 bits and must be limited.
		a, b := 1, 1
		i := 0
		for s := 0; i < len(p) && s < 256; s++ {
			for k := 0; k < a && i < len(p); k++ {
				p[i] = byte(s)
				i++
			}
			a, b = b, a+b
		}
		r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	})
	fill("structs", func(p []byte) {
		// An array of 48-byte structures: list heads pointing at
		// themselves, counters, flags.
		for i := 0; i+48 <= len(p); i += 48 {
			self := 0xffff888003a40000 + uint64(i)
			binary.LittleEndian.PutUint64(p[i:], self)
			binary.LittleEndian.PutUint64(p[i+8:], self)
			binary.LittleEndian.PutUint32(p[i+16:], uint32(i/48))
			binary.LittleEndian.PutUint32(p[i+20:], 1)
			binary.LittleEndian.PutUint64(p[i+24:], uint64(r.IntN(4)))
		}
	})
	fill("pointers", func(p []byte) {
		for i := 0; i+8 <= len(p); i += 8 {
			binary.LittleEndian.PutUint64(p[i:], 0xffff8e7c40000000+uint64(r.IntN(1<<20))*64)
		}
	})
	fill("text", func(p []byte) {
		words := []string{"the ", "kernel ", "panic ", "page ", "dump ", "zone ", "free ", "slab "}
		for i := 0; i < len(p); {
			i += copy(p[i:], words[r.IntN(len(words))])
		}
	})
	fill("half", func(p []byte) {
		for i := range p[:len(p)/2] {
			p[i] = byte(r.Uint32())
		}
	})
	fill("runs", func(p []byte) {
		// Runs and a repeat one byte off: offsets 1, rep[0]-1 and
		// second repeat offsets.
		for i := 0; i < len(p); {
			v, k := byte(r.IntN(4)), 1+r.IntN(40)
			for ; k > 0 && i < len(p); k-- {
				p[i] = v
				i++
			}
		}
	})
	fill("unique", func(p []byte) {
		// A de Bruijn sequence of 16 symbols, from its middle (no runs
		// there): no four bytes repeat, but Huffman codes take four
		// bits. One match of four bytes after 8 literals, then literals
		// to the page's end: on a 64 KiB page the last 16-byte copies of
		// those reach just past 64 KiB of literals.
		db := deBruijn16x4()
		copy(p, append(db[30000:], db[:30000]...))
		copy(p[8:12], p[0:4])
	})
	fill("fewlits", func(p []byte) {
		// A few scattered bytes in zeros: few literals, raw.
		for k := 0; k < 6; k++ {
			p[r.IntN(len(p))] = byte(1 + r.IntN(255))
		}
	})
	return pages
}

// deBruijn16x4 returns the de Bruijn sequence of order 4 over 16 symbols
// (65536 bytes, every four-symbol string once), the symbols spread over
// the byte's bits.
func deBruijn16x4() []byte {
	const k, n = 16, 4
	a := make([]byte, k*n)
	var seq []byte
	var db func(t, p int)
	db = func(t, p int) {
		if t > n {
			if n%p == 0 {
				seq = append(seq, a[1:p+1]...)
			}
			return
		}
		a[t] = a[t-p]
		db(t+1, p)
		for j := a[t-p] + 1; j < k; j++ {
			a[t] = j
			db(t+1, t)
		}
	}
	db(1, 1)
	for i, s := range seq {
		seq[i] = s*17 ^ 0x5a
	}
	return seq
}

// decodeFrame decodes a frame with klauspost's decoder.
func decodeFrame(t testing.TB, frame []byte, size int) []byte {
	t.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := dec.DecodeAll(frame, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != size {
		t.Fatalf("decoded %d bytes, want %d", len(got), size)
	}
	return got
}

// checkFrameHeader checks what readers of dumps rely on: one frame, a
// single segment with the content size, no checksum, no dictionary.
func checkFrameHeader(t testing.TB, frame []byte, size int) {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		t.Fatalf("frame header: %v", err)
	}
	if !h.SingleSegment || !h.HasFCS || h.FrameContentSize != uint64(size) || h.HasCheckSum || h.DictionaryID != 0 {
		t.Errorf("frame header %+v, want a single segment of %d bytes, no checksum, no dictionary", h, size)
	}
}

func TestZstdPageRoundTrip(t *testing.T) {
	for _, size := range []int{100, 255, 256, 512, 4096, 16384, 65536} {
		e := newZstdPageEnc(size)
		for name, page := range zstdTestPages(size) {
			t.Run(fmt.Sprintf("%d/%s", size, name), func(t *testing.T) {
				frame := e.encode(page)
				if frame == nil {
					if name != "random" {
						t.Fatalf("not compressed")
					}
					return
				}
				if name == "random" {
					t.Errorf("random page compressed to %d bytes", len(frame))
				}
				if len(frame) >= size {
					t.Fatalf("frame of %d bytes for a page of %d", len(frame), size)
				}
				checkFrameHeader(t, frame, size)
				if got := decodeFrame(t, frame, size); !bytes.Equal(got, page) {
					t.Fatalf("round trip differs")
				}
			})
		}
	}
}

// TestZstdPageSmall: pages too small for a match and the empty page.
func TestZstdPageSmall(t *testing.T) {
	e := newZstdPageEnc(4096)
	if e.encode(nil) != nil {
		t.Error("empty page encoded")
	}
	for n := 1; n < 40; n++ {
		page := bytes.Repeat([]byte{'a'}, n)
		if frame := e.encode(page); frame != nil {
			if got := decodeFrame(t, frame, n); !bytes.Equal(got, page) {
				t.Errorf("%d bytes: round trip differs", n)
			}
		}
	}
	if e.encode(make([]byte, zstdMaxPage+1)) != nil {
		t.Error("page past zstdMaxPage encoded")
	}
}

// TestZstdPageTableAcrossPages: the match table is not cleared between
// pages, so stale entries must never match, also when the position bias
// wraps around.
func TestZstdPageTableAcrossPages(t *testing.T) {
	pages := zstdTestPages(4096)
	order := []string{"structs", "text", "pointers", "zero", "runs", "text", "structs"}
	for _, start := range []uint32{1, math.MaxUint32 - 3*4096, math.MaxUint32 - 8192 - 1} {
		e := newZstdPageEnc(4096)
		e.base = start
		for i, name := range order {
			frame := e.encode(pages[name])
			if frame == nil {
				t.Fatalf("base %#x, page %d (%s): not compressed", start, i, name)
			}
			if got := decodeFrame(t, frame, 4096); !bytes.Equal(got, pages[name]) {
				t.Fatalf("base %#x, page %d (%s): round trip differs", start, i, name)
			}
		}
	}
}

// TestZstdPageDeterministic: the output depends on the page only, not
// on the pages before it (the dump must not depend on the workers).
func TestZstdPageDeterministic(t *testing.T) {
	pages := zstdTestPages(4096)
	fresh := map[string][]byte{}
	for name, p := range pages {
		fresh[name] = bytes.Clone(newZstdPageEnc(4096).encode(p))
	}
	e := newZstdPageEnc(4096)
	for range 3 {
		for name, p := range pages {
			if got := e.encode(p); !bytes.Equal(got, fresh[name]) {
				t.Errorf("%s: frame differs after other pages", name)
			}
		}
	}
}

// checkLibzstd decodes the frames of pages with C libzstd (the zstd
// tool), as crash, libkdumpfile and makedumpfile read them: the tool
// decodes concatenated frames into the concatenation of the pages.
func checkLibzstd(t *testing.T, size int, pages [][]byte) {
	t.Helper()
	tool := fixture.NeedTool(t, "zstd")
	e := newZstdPageEnc(size)
	var frames, want []byte
	for _, p := range pages {
		if f := e.encode(p); f != nil {
			frames = append(frames, f...)
			want = append(want, p...)
		}
	}
	cmd := exec.Command(tool, "-d", "-c", "-q")
	cmd.Stdin = bytes.NewReader(frames)
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd -d: %v", err)
	}
	if !bytes.Equal(got, want) {
		// Find the page, for the report.
		for i, p := range pages {
			f := e.encode(p)
			if f == nil {
				continue
			}
			cmd := exec.Command(tool, "-d", "-c", "-q")
			cmd.Stdin = bytes.NewReader(f)
			if got, err := cmd.Output(); err != nil || !bytes.Equal(got, p) {
				t.Fatalf("page %d of %d bytes: libzstd: %v", i, size, err)
			}
		}
		t.Fatalf("libzstd decodes %d bytes, differing from the %d of the pages", len(got), len(want))
	}
}

func TestZstdPageLibzstd(t *testing.T) {
	for _, size := range []int{512, 4096, 65536} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var pages [][]byte
			for _, p := range zstdTestPages(size) {
				pages = append(pages, p)
			}
			checkLibzstd(t, size, pages)
		})
	}
}

// TestZstdPageLibzstdReal decodes the frames of real pages with the
// zstd tool and, page by page, with ZSTD_decompress as crash calls it.
func TestZstdPageLibzstdReal(t *testing.T) {
	if testing.Short() {
		t.Skip("reads thousands of pages of a real vmcore")
	}
	pages := realPages(t, 4000)
	checkLibzstd(t, pageSize, pages)
	d := needCDecoder(t)
	e := newZstdPageEnc(pageSize)
	for i, p := range pages {
		f := e.encode(p)
		if f == nil {
			continue
		}
		if got, err := d.decode(true, f, pageSize); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("page %d: ZSTD_decompress: %v", i, err)
		}
	}
}

// TestZstdPageNotLarger: on real pages the page encoder is no larger than
// klauspost's encoder at its fastest level with all literals entropy
// coded, the codec it replaced.
func TestZstdPageNotLarger(t *testing.T) {
	if testing.Short() {
		t.Skip("reads thousands of pages of a real vmcore")
	}
	pages := realPages(t, 4000)
	old, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		t.Fatal(err)
	}
	e := newZstdPageEnc(pageSize)
	ours, theirs := 0, 0
	for _, p := range pages {
		n := pageSize
		if f := e.encode(p); f != nil {
			n = len(f)
		}
		ours += n
		theirs += min(len(old.EncodeAll(p, nil)), pageSize)
	}
	t.Logf("%d pages: %d bytes, klauspost SpeedFastest %d", len(pages), ours, theirs)
	if ours > theirs {
		t.Errorf("larger than klauspost's encoder: %d > %d bytes", ours, theirs)
	}
}

// TestHuffmanLengthLimit: no code passes 11 bits, the code is complete,
// and the encoded page decodes, for counts that would give longer codes.
func TestHuffmanLengthLimit(t *testing.T) {
	var h huffEnc
	var lits []byte
	a, b := 1, 1
	for s := 0; s < 20; s++ {
		lits = append(lits, bytes.Repeat([]byte{byte(s)}, a)...)
		a, b = b, a+b
	}
	_, maxSym := h.histogram(lits)
	h.build(maxSym)
	if h.maxLen > huffMaxBits {
		t.Fatalf("max code length %d", h.maxLen)
	}
	kraft := 0
	for s := 0; s <= maxSym; s++ {
		if l := int(h.code[s] & 0xff); l > 0 {
			kraft += 1 << (huffMaxBits - l)
		}
	}
	if kraft != 1<<huffMaxBits {
		t.Errorf("Kraft sum %d/%d: the code is not complete", kraft, 1<<huffMaxBits)
	}
}

// TestFSENormalize: normalized counts sum to the table size and keep
// every present symbol, for any counts.
func TestFSENormalize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2000; i++ {
		nsym := 2 + r.IntN(maxFSESymbols-1)
		count := make([]uint32, nsym)
		total := 0
		for s := range count {
			if r.IntN(3) > 0 {
				count[s] = uint32(r.IntN(1 << r.IntN(12)))
				total += int(count[s])
			}
		}
		if total == 0 {
			continue
		}
		maxSym := 0
		for s, c := range count {
			if c > 0 {
				maxSym = s
			}
		}
		log := fseOptimalLog(maxFSELog, total, maxSym)
		norm := make([]int16, maxSym+1)
		if !fseNormalize(norm, count[:maxSym+1], total, log) {
			continue // one symbol: RLE
		}
		sum := 0
		for s, n := range norm {
			if (count[s] > 0) != (n != 0) || n < -1 {
				t.Fatalf("symbol %d count %d normalized to %d", s, count[s], n)
			}
			if n < 0 {
				n = 1
			}
			sum += int(n)
		}
		if sum != 1<<log {
			t.Fatalf("normalized counts sum to %d, want %d", sum, 1<<log)
		}
	}
}
