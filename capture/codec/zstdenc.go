package codec

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// zstdPageEnc writes each page as one zstd frame (RFC 8878) that any
// decoder takes in one call, as crash and libkdumpfile do with
// ZSTD_decompress: a single-segment frame with the content size, no
// checksum, and one compressed block. It is built for pages: the match
// finder's table is never cleared between pages (positions are stored
// biased by a counter that moves on by a page each time), sequences use
// the predefined FSE tables unless their own are smaller, and literals
// take one Huffman stream when they fit in one.
type zstdPageEnc struct {
	pageSize int
	// src holds the page and lits its literals, each with slack for
	// loads and stores past the end; indexes masked by zMask never wrap.
	src   [zMask + 1 + 16]byte
	lits  [zMask + 1 + 16]byte
	table [1 << zHashLog]uint32
	// base biases the positions stored in table: an entry below it is
	// from an earlier page.
	base uint32

	seqs []zseq
	senc []seqCode

	// out holds the frame being written; hot loops index it masked
	// by zOutMask (it has the slack for 8-byte stores past that).
	out [2*zstdMaxPage + 16]byte

	huff huffEnc
	fb   fseBuilder
	// Tables built for the current block: literal lengths, offsets,
	// match lengths.
	tabs [3]fseCTable
	cnt  [3][maxFSESymbols]uint32
	norm [maxFSESymbols]int16
}

// zseq is one sequence: literals, then a match of matchLen bytes with
// offVal the offset value as the format codes it (1-3 repeat offsets,
// else offset+3).
type zseq struct {
	litLen, matchLen, offVal uint32
}

// seqCode is a sequence ready for the bitstream: its three codes, and
// the extra bits that follow them, already packed.
type seqCode struct {
	ll, of, ml uint8
	nExtra     uint8
	extra      uint64
}

// zstdMaxPage is the largest page the encoder takes: 64 KiB, the
// largest page Linux has.
const zstdMaxPage = 64 << 10

// zOutMask bounds indexes into the output buffer in hot loops.
const zOutMask = 2*zstdMaxPage - 1

func newZstdPageEnc(pageSize int) *zstdPageEnc {
	return &zstdPageEnc{
		pageSize: pageSize,
		base:     1,
		seqs:     make([]zseq, pageSize/3+1),
		senc:     make([]seqCode, pageSize/3+1),
	}
}

// encode compresses page into a frame and returns it (valid until the
// next call), or nil when the frame would not be smaller than the page.
func (e *zstdPageEnc) encode(page []byte) []byte {
	n := len(page)
	if n == 0 || n > zstdMaxPage {
		return nil
	}
	copy(e.src[:], page)
	nseq, nlit := e.parse(n)
	buf := e.out[:]
	limit := n - 1 // anything longer is useless: the page is stored raw

	// Frame header: magic, descriptor (single segment, content size of
	// 1, 2 or 4 bytes), content size.
	binary.LittleEndian.PutUint32(buf, 0xFD2FB528)
	pos := 4
	switch {
	case n <= 255:
		buf[4], buf[5] = 0x20, byte(n)
		pos = 6
	case n < 65536+256:
		buf[4] = 0x60
		binary.LittleEndian.PutUint16(buf[5:], uint16(n-256))
		pos = 7
	default:
		buf[4] = 0xa0
		binary.LittleEndian.PutUint32(buf[5:], uint32(n))
		pos = 9
	}
	blockHdr := pos
	pos += 3
	pos = e.writeLiterals(buf, pos, limit, nlit)
	if pos < 0 || pos > limit {
		return nil
	}
	pos = e.writeSequences(buf, pos, limit, e.seqs[:nseq])
	if pos < 0 || pos > limit {
		return nil
	}
	// Last block, compressed.
	bh := uint32(pos-blockHdr-3)<<3 | 2<<1 | 1
	buf[blockHdr], buf[blockHdr+1], buf[blockHdr+2] = byte(bh), byte(bh>>8), byte(bh>>16)
	return buf[:pos]
}

// zHashLog sizes the match finder's table: four entries a byte of a 4 KiB
// page (fewer collisions pay for the 64 KiB).
const zHashLog = 14

// zMask bounds indexes into the page and literal buffers: masking them
// lets the compiler drop its bounds checks from the hot loops. It is
// twice the largest page, so that the copies that run up to 16 bytes
// past a page's end, or past its literals', never wrap to the start.
const zMask = 2*zstdMaxPage - 1

const prime4bytes = 2654435761

func (e *zstdPageEnc) load64(i int) uint64 {
	return binary.LittleEndian.Uint64(e.src[i&zMask:])
}

func (e *zstdPageEnc) load32(i int) uint32 {
	return binary.LittleEndian.Uint32(e.src[i&zMask:])
}

func zhash(v uint32) uint32 { return v * prime4bytes >> (32 - zHashLog) }

// matchLen returns how many bytes at a and b (b < a) agree, up to end.
// The first eight bytes are compared inline: most matches in a page are
// shorter.
func (e *zstdPageEnc) matchLen(a, b, end int) int {
	if d := e.load64(a) ^ e.load64(b); d != 0 {
		return min(bits.TrailingZeros64(d)>>3, end-a)
	}
	return e.matchLenLong(a, b, end)
}

//go:noinline
func (e *zstdPageEnc) matchLenLong(a, b, end int) int {
	n := 8
	for a+n < end {
		if d := e.load64(a+n) ^ e.load64(b+n); d != 0 {
			n += bits.TrailingZeros64(d) >> 3
			break
		}
		n += 8
	}
	return min(n, end-a)
}

// copyLits appends src[from:to] to the literals at d and returns the new
// end. It copies 16 bytes at a time, the first 16 inline: both buffers
// have the slack.
func (e *zstdPageEnc) copyLits(d, from, to int) int {
	binary.LittleEndian.PutUint64(e.lits[d&zMask:], e.load64(from))
	binary.LittleEndian.PutUint64(e.lits[(d+8)&zMask:], e.load64(from+8))
	if to-from > 16 {
		e.copyLitsLong(d, from, to)
	}
	return d + to - from
}

//go:noinline
func (e *zstdPageEnc) copyLitsLong(d, from, to int) {
	for k := 16; k < to-from; k += 16 {
		v0, v1 := e.load64(from+k), e.load64(from+k+8)
		binary.LittleEndian.PutUint64(e.lits[(d+k)&zMask:], v0)
		binary.LittleEndian.PutUint64(e.lits[(d+k+8)&zMask:], v1)
	}
}

// parse finds the matches in the page, e.src[:n], and fills
// e.seqs[:nseq] and e.lits[:nlit].
func (e *zstdPageEnc) parse(n int) (nseq, nlit int) {
	seqs := e.seqs
	if n < 16 {
		return 0, e.copyLits(0, 0, n)
	}
	if e.base > math.MaxUint32-uint32(2*n) {
		clear(e.table[:])
		e.base = 1
	}
	base := int(e.base)
	e.base += uint32(n)
	table := &e.table

	r0, r1, r2 := 1, 4, 8 // the repeat offsets a frame starts with
	s, nextEmit := 0, 0
	sLimit := n - 8
	for s < sLimit {
		// Look for the next match: the last offset again one byte on
		// (cheap, and the commonest match in arrays of structures),
		// else what the table remembers for these four bytes. This
		// loop is where literal bytes go by: it keeps few values live.
		var cand int
		rep := false
		for {
			cv := e.load64(s)
			if uint32(cv>>8) == e.load32(s+1-r0) {
				// r0 never exceeds the position: it is always a
				// match's offset or 1.
				s++
				cand = s - r0
				rep = true
				break
			}
			h := zhash(uint32(cv))
			cand = int(table[h]) - base
			table[h] = uint32(s + base)
			if cand >= 0 && uint32(cv) == e.load32(cand) {
				break
			}
			s += 1 + (s-nextEmit)>>zSkipShift
			if s >= sLimit {
				return nseq, e.copyLits(nlit, nextEmit, n)
			}
		}
		if !rep {
			for s > nextEmit && cand > 0 && e.src[(s-1)&zMask] == e.src[(cand-1)&zMask] {
				s--
				cand--
			}
		}
		// The match's length and its literals, with the common short
		// cases inline (matchLen and copyLits are too big to inline).
		var ml int
		if d := e.load64(s+4) ^ e.load64(cand+4); d != 0 {
			ml = 4 + min(bits.TrailingZeros64(d)>>3, n-s-4)
		} else {
			ml = 4 + e.matchLenLong(s+4, cand+4, n)
		}
		ll := s - nextEmit
		binary.LittleEndian.PutUint64(e.lits[nlit&zMask:], e.load64(nextEmit))
		binary.LittleEndian.PutUint64(e.lits[(nlit+8)&zMask:], e.load64(nextEmit+8))
		if ll > 16 {
			e.copyLitsLong(nlit, nextEmit, s)
		}
		nlit += ll
		// With literals before it (there is at least the byte before
		// s), a match at the last offset is repeat offset 1, which
		// leaves the offsets as they are.
		ov := uint32(1)
		if !rep {
			ov, r0, r1, r2 = offsetValue(s-cand, ll, r0, r1, r2)
		}
		seqs[nseq] = zseq{litLen: uint32(ll), matchLen: uint32(ml), offVal: ov}
		nseq++
		s += ml
		nextEmit = s
		if rep {
			continue
		}
		if s >= sLimit {
			break
		}
		table[zhash(e.load32(s-2))] = uint32(s - 2 + base)
		// Matches at the second offset straight after: without
		// literals, repeat offset 1 names it, and the two swap.
		for s < sLimit && s >= r1 && e.load32(s) == e.load32(s-r1) {
			ml := 4 + e.matchLen(s+4, s+4-r1, n)
			seqs[nseq] = zseq{matchLen: uint32(ml), offVal: 1}
			nseq++
			r0, r1 = r1, r0
			s += ml
			nextEmit = s
		}
	}
	return nseq, e.copyLits(nlit, nextEmit, n)
}

// offsetValue codes a match offset after ll literals as the format does,
// as a repeat offset when it is one, and returns the repeat offsets as
// the decoder will update them.
func offsetValue(offset, ll, r0, r1, r2 int) (ov uint32, n0, n1, n2 int) {
	if ll > 0 {
		switch offset {
		case r0:
			return 1, r0, r1, r2
		case r1:
			return 2, r1, r0, r2
		case r2:
			return 3, r2, r0, r1
		}
		return uint32(offset) + 3, offset, r0, r1
	}
	// Without literals the repeat offsets shift by one.
	switch offset {
	case r1:
		return 1, r1, r0, r2
	case r2:
		return 2, r2, r0, r1
	case r0 - 1:
		return 3, offset, r0, r1
	}
	return uint32(offset) + 3, offset, r0, r1
}

// zSkipShift sets how fast the match finder skips ahead through bytes
// that do not match: one more byte a step for every 2^zSkipShift.
const zSkipShift = 6

// Literals shorter than this are stored raw: a Huffman table costs more
// than it saves.
const minHuffLiterals = 32

// writeLiterals writes the literals section for e.lits[:n] at buf[pos:]
// and returns the position after it, or -1 when it would pass limit.
func (e *zstdPageEnc) writeLiterals(buf []byte, pos, limit, n int) int {
	lits := e.lits[:n]
	raw := func() int {
		hdr := literalsHeader(buf[pos:pos], 0, n)
		end := pos + len(hdr) + n
		if end > limit {
			return -1
		}
		copy(buf[pos+len(hdr):], lits)
		return end
	}
	if n < minHuffLiterals {
		return raw()
	}
	maxCount, maxSym := e.huff.histogram(lits)
	if int(maxCount) == n {
		hdr := literalsHeader(buf[pos:pos], 1, n)
		buf[pos+len(hdr)] = lits[0]
		return pos + len(hdr) + 1
	}
	nbits := e.huff.build(maxSym)
	hl := compressedLiteralsHeaderLen(n)
	four := n > 1023
	rawLen := len(literalsHeader(buf[pos:pos], 0, n)) + n
	overhead := hl + 2 // table header byte and end marks, at least
	if four {
		overhead += 6 + 3
	}
	if overhead+(nbits+7)/8 >= rawLen {
		return raw()
	}
	tab, ok := e.huff.writeTable(buf[pos+hl:pos+hl], &e.fb)
	if !ok {
		return raw()
	}
	start := pos + hl
	p := start + len(tab)
	// The streams take (nbits+7)/8 bytes and an end mark each: the
	// estimate above keeps them well inside out.
	if four {
		p = e.huff.encode4(&e.out, p, &e.lits, n)
	} else {
		p = e.huff.encode1(&e.out, p, &e.lits, 0, n)
	}
	if p-pos >= rawLen {
		return raw()
	}
	putCompressedLiteralsHeader(buf[pos:], n, p-start, four)
	return p
}

// The predefined distributions (RFC 8878 §3.1.1.3.2.2).
var (
	predefLLNorm = []int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
		2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
		-1, -1, -1, -1}
	predefMLNorm = []int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
		-1, -1, -1, -1, -1}
	predefOFNorm = []int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}
)

// seqKind describes one of the three sequence code streams.
type seqKind struct {
	maxLog uint8
	maxSym int
	predef fseCTable
}

var seqKinds = func() (k [3]seqKind) {
	var b fseBuilder
	for i, d := range []struct {
		log, maxLog uint8
		norm        []int16
	}{{6, 9, predefLLNorm}, {5, 8, predefOFNorm}, {6, 9, predefMLNorm}} {
		k[i].maxLog = d.maxLog
		k[i].maxSym = len(d.norm) - 1
		b.build(&k[i].predef, d.norm, d.log)
	}
	return k
}()

var (
	llBits = [64]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	mlBits = [64]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	llCodes = [64]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21,
		22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23,
		24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24}
	mlCodes = [128]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
		32, 32, 33, 33, 34, 34, 35, 35, 36, 36, 36, 36, 37, 37, 37, 37,
		38, 38, 38, 38, 38, 38, 38, 38, 39, 39, 39, 39, 39, 39, 39, 39,
		40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
		41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
		42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
		42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42}
)

// lowMask[n] has the low n bits set.
var lowMask = func() (m [64]uint64) {
	for i := range m {
		m[i] = 1<<i - 1
	}
	return m
}()

func llCode(ll uint32) uint8 {
	if ll < 64 {
		return llCodes[ll]
	}
	return uint8(bits.Len32(ll)-1) + 19
}

func mlCode(mlBase uint32) uint8 {
	if mlBase < 128 {
		return mlCodes[mlBase]
	}
	return uint8(bits.Len32(mlBase)-1) + 36
}

// Symbol compression modes of the sequences section.
const (
	modePredefined = 0
	modeRLE        = 1
	modeCompressed = 2
)

// Below this many sequences a table of their own never pays for its
// description.
const minSeqsForTable = 16

// writeSequences writes the sequences section at buf[pos:] and returns
// the position after it, or -1 when it would pass limit.
func (e *zstdPageEnc) writeSequences(buf []byte, pos, limit int, seqs []zseq) int {
	nb := len(seqs)
	switch {
	case nb < 128:
		buf[pos] = byte(nb)
		pos++
	case nb < 0x7f00:
		buf[pos], buf[pos+1] = byte(nb>>8)+0x80, byte(nb)
		pos += 2
	default:
		buf[pos] = 0xff
		binary.LittleEndian.PutUint16(buf[pos+1:], uint16(nb-0x7f00))
		pos += 3
	}
	if nb == 0 {
		return pos
	}
	sc := e.senc[:nb]
	extraBits := 0
	cll, cof, cml := &e.cnt[0], &e.cnt[1], &e.cnt[2]
	clear(cll[:])
	clear(cof[:])
	clear(cml[:])
	for i, q := range seqs {
		o := uint8(bits.Len32(q.offVal)-1) & 63
		var l, m uint8
		x, nx := uint64(q.offVal)&lowMask[o], o
		if q.litLen < 16 && q.matchLen-3 < 32 {
			// The common short sequence: its lengths are their own
			// codes, without extra bits.
			l, m = uint8(q.litLen), uint8(q.matchLen-3)
		} else {
			l, m = llCode(q.litLen)&63, mlCode(q.matchLen-3)&63
			lb, mb := llBits[l], mlBits[m]
			x = uint64(q.litLen)&lowMask[lb&63] | (uint64(q.matchLen-3)&lowMask[mb&63])<<(lb&63) | x<<((lb+mb)&63)
			nx += lb + mb
		}
		sc[i] = seqCode{ll: l, of: o, ml: m, nExtra: nx, extra: x}
		extraBits += int(nx)
		cll[l]++
		cof[o]++
		cml[m]++
	}
	modes := pos
	pos++
	var tabs [3]*fseCTable
	var mode byte
	for k := range 3 {
		if pos > limit {
			return -1
		}
		var m byte
		m, tabs[k], pos = e.chooseTable(k, nb, buf, pos)
		mode |= m << (6 - 2*k)
	}
	buf[modes] = mode
	// The bitstream takes at most 27 bits of states a sequence and the
	// extra bits: when that fits in out, the loop need not check.
	if pos > limit || pos+(27*nb+extraBits)/8+64 > len(e.out) {
		return -1
	}

	// The bitstream, last sequence first (RFC 8878 §3.1.1.3.2.1). This
	// is the hot loop of a page with many short matches: the states
	// and bit writer are kept in locals.
	w := bitWriter{buf: buf, pos: pos}
	last := nb - 1
	var sll, sof, sml fseState
	q := sc[last]
	sml.init(tabs[2], q.ml)
	sof.init(tabs[1], q.of)
	sll.init(tabs[0], q.ll)
	w.addFast(q.extra, uint(q.nExtra))
	w.flush()
	tl, to, tm := tabs[0], tabs[1], tabs[2]
	vl, vo, vm := sll.value, sof.value, sml.value
	acc, nbits, wp := w.bits, w.nbits, w.pos
	out := &e.out
	for i := last - 1; i >= 0; i-- {
		q := &sc[i]
		// Offset, match length, literal length states.
		tt := to.sym[q.of&63]
		k := (vo + tt.deltaNbBits) >> 16
		acc |= (uint64(vo) & lowMask[k&63]) << (nbits & 63)
		nbits += uint(k)
		vo = uint32(to.state[(int32(vo>>(k&31))+tt.deltaFindState)&(1<<maxFSELog-1)])
		tt = tm.sym[q.ml&63]
		k = (vm + tt.deltaNbBits) >> 16
		acc |= (uint64(vm) & lowMask[k&63]) << (nbits & 63)
		nbits += uint(k)
		vm = uint32(tm.state[(int32(vm>>(k&31))+tt.deltaFindState)&(1<<maxFSELog-1)])
		tt = tl.sym[q.ll&63]
		k = (vl + tt.deltaNbBits) >> 16
		acc |= (uint64(vl) & lowMask[k&63]) << (nbits & 63)
		nbits += uint(k)
		vl = uint32(tl.state[(int32(vl>>(k&31))+tt.deltaFindState)&(1<<maxFSELog-1)])
		// At most 7+26 bits are pending: room for 31 extra bits.
		if q.nExtra > 31 {
			binary.LittleEndian.PutUint64(out[wp&zOutMask:], acc)
			wp += int(nbits >> 3)
			acc >>= (nbits >> 3 << 3) & 63
			nbits &= 7
		}
		acc |= q.extra << (nbits & 63)
		nbits += uint(q.nExtra)
		binary.LittleEndian.PutUint64(out[wp&zOutMask:], acc)
		wp += int(nbits >> 3)
		acc >>= (nbits >> 3 << 3) & 63
		nbits &= 7
	}
	w.bits, w.nbits, w.pos = acc, nbits, wp
	sll.value, sof.value, sml.value = vl, vo, vm
	sml.flush(&w)
	sof.flush(&w)
	sll.flush(&w)
	return w.close()
}

// chooseTable picks the cheapest way to code stream k (0 literal
// lengths, 1 offsets, 2 match lengths) of nb sequences: the predefined
// table, one repeated symbol, or a table of its own, whose description
// it writes at buf[pos:].
func (e *zstdPageEnc) chooseTable(k, nb int, buf []byte, pos int) (byte, *fseCTable, int) {
	kind := &seqKinds[k]
	cnt := e.cnt[k][:]
	maxSym, distinct := 0, 0
	for s, c := range cnt {
		if c > 0 {
			maxSym = s
			distinct++
		}
	}
	t := &e.tabs[k]
	// Every code a page of up to 64 KiB has is in the predefined tables
	// (offset codes go to 16 of their 28); the check is for safety's sake.
	predefCost := math.MaxInt
	if maxSym <= kind.maxSym {
		predefCost = 0
		for s, c := range cnt[:maxSym+1] {
			predefCost += int(c) * int(kind.predef.cost[s])
		}
	}
	if distinct == 1 && predefCost > 8<<8 {
		// RLE costs its symbol byte and no bits at all.
		buf[pos] = byte(maxSym)
		var norm [maxFSESymbols]int16
		norm[maxSym] = 1
		e.fb.buildTable(t, norm[:maxSym+1], 0)
		return modeRLE, t, pos + 1
	}
	if nb < minSeqsForTable {
		return modePredefined, &kind.predef, pos
	}
	log := fseOptimalLog(kind.maxLog, nb, maxSym)
	norm := e.norm[:maxSym+1]
	if !fseNormalize(norm, cnt[:maxSym+1], nb, log) {
		return modePredefined, &kind.predef, pos
	}
	end := len(fseWriteNCount(buf[pos:pos], norm, log))
	cost := end * 8 << 8
	for s, c := range cnt[:maxSym+1] {
		if c == 0 {
			continue
		}
		n := norm[s]
		if n < 0 {
			n = 1
		}
		cost += int(c) * int(uint32(log)<<8-log2x256(uint32(n)))
	}
	if cost >= predefCost {
		return modePredefined, &kind.predef, pos
	}
	e.fb.buildTable(t, norm, log)
	return modeCompressed, t, pos + end
}
