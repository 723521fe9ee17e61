package codec

import (
	"encoding/binary"
	"math/bits"
)

// lzoEnc compresses pages as LZO1X blocks (DUMP_DH_COMPRESSED_LZO, what
// makedumpfile -l writes with liblzo2's lzo1x_1_compress). It is
// lzo1x_1's algorithm, chunks of 48 KiB included, with two changes that
// make it faster and its output smaller on kernel memory: before looking
// a position up in the table it tries the last match's offset (arrays
// of structures repeat at their stride), and the table has 2^12 entries
// instead of 2^14, so that clearing it for each page is cheap. The
// instructions are lzo1x_1's: M2, M3 and M4 matches of at least four
// bytes, literal runs in the forms it writes.
type lzoEnc struct {
	// src holds the page and out the block, each with slack for the
	// 8- and 16-byte copies past their ends; indexes are masked so
	// that the compiler drops its bounds checks.
	src  [zstdMaxPage + 32]byte
	out  [2*zstdMaxPage + 64]byte
	dict [1 << lzoDBits]uint16 // positions in the chunk by hash
}

const (
	lzoDBits    = 12
	lzoChunk    = 49152 // liblzo's chunk (LZO_DETERMINISTIC)
	lzoM2MaxLen = 8
	lzoM2MaxOff = 0x0800
	lzoM3MaxOff = 0x4000
	lzoM3MaxLen = 33
	lzoM4MaxLen = 9
	lzoM3Marker = 32
	lzoM4Marker = 16
	lzoOutMask  = 2*zstdMaxPage - 1
)

// lzoSrcMask bounds indexes into src. Only reads past a page's end can
// reach past it, to bytes that are copied but not used (a literal copy of
// 16 bytes at the page's end).
const lzoSrcMask = zstdMaxPage - 1

func (e *lzoEnc) load32(i int) uint32 { return binary.LittleEndian.Uint32(e.src[i&lzoSrcMask:]) }
func (e *lzoEnc) load64(i int) uint64 { return binary.LittleEndian.Uint64(e.src[i&lzoSrcMask:]) }

// copy16 copies 16 bytes from src[from] to out[op].
func (e *lzoEnc) copy16(op, from int) {
	binary.LittleEndian.PutUint64(e.out[op&lzoOutMask:], e.load64(from))
	binary.LittleEndian.PutUint64(e.out[(op+8)&lzoOutMask:], e.load64(from+8))
}

// encode compresses page and returns the block (valid until the next
// call), or nil when it would not be smaller than the page.
func (e *lzoEnc) encode(page []byte) []byte {
	n := len(page)
	if n == 0 || n > zstdMaxPage {
		return nil
	}
	copy(e.src[:], page)
	op, t, ip := 0, 0, 0
	for n-ip > 20 {
		ll := min(n-ip, lzoChunk)
		op, t = e.chunk(ip, ll, op, t)
		ip += ll
	}
	t += n - ip
	op = e.literals(op, n-t, t, true)
	// The end: an M4 instruction of distance 0.
	e.out[op&lzoOutMask], e.out[(op+1)&lzoOutMask], e.out[(op+2)&lzoOutMask] = lzoM4Marker|1, 0, 0
	op += 3
	if op >= n {
		return nil
	}
	return e.out[:op]
}

// literals writes the t literals at src[ii] at out[op] and returns the
// new op. tail says they end the block: then, if they are all of it,
// they take the short form of a block's first literals (up to 238).
func (e *lzoEnc) literals(op, ii, t int, tail bool) int {
	switch {
	case t == 0:
		return op
	case tail && op == 0 && t <= 238:
		e.out[0] = byte(17 + t)
		op++
	case t <= 3:
		// In the two low bits of the previous instruction's last but
		// one byte.
		e.out[(op-2)&lzoOutMask] |= byte(t)
		binary.LittleEndian.PutUint32(e.out[op&lzoOutMask:], e.load32(ii))
		return op + t
	case t <= 18:
		e.out[op&lzoOutMask] = byte(t - 3)
		op++
	default:
		e.out[op&lzoOutMask] = 0
		op++
		for tt := t - 18; ; tt -= 255 {
			if tt <= 255 {
				e.out[op&lzoOutMask] = byte(tt)
				op++
				break
			}
			e.out[op&lzoOutMask] = 0
			op++
		}
	}
	for k := 0; k < t; k += 16 {
		e.copy16(op+k, ii+k)
	}
	return op + t
}

// chunk compresses src[in:in+ll] at out[op] after ti literals left over
// from the chunk before, and returns the new op and the literals it
// leaves over in turn (lzo1x_1's do_compress).
func (e *lzoEnc) chunk(in, ll, op, ti int) (int, int) {
	clear(e.dict[:]) // an empty entry is the chunk's start, as in liblzo
	dict := &e.dict
	ipEnd := in + ll - 20
	ip := in
	if ti < 4 {
		ip += 4 - ti
	}
	ii := in
	// The last match's offset, never past the chunk's start (it is a
	// match's in this chunk, or 1).
	lastOff := 1
	// As liblzo, step before the first look.
	ip += 1 + (ip-ii)>>5
	for {
		// Find a match: skip one byte more for every 32 without one.
		var mPos int
		for {
			if ip >= ipEnd {
				return op, in + ll - (ii - ti)
			}
			dv := e.load32(ip)
			if dv == e.load32(ip-lastOff) {
				mPos = ip - lastOff
				break
			}
			h := dv * 0x1824429d >> (32 - lzoDBits) & (1<<lzoDBits - 1)
			mPos = in + int(dict[h])
			dict[h] = uint16(ip - in)
			if dv == e.load32(mPos) {
				break
			}
			ip += 1 + (ip-ii)>>5
		}
		ii -= ti
		ti = 0
		// The literals before the match; the common short runs inline.
		switch t := ip - ii; {
		case t == 0:
		case t <= 3:
			e.out[(op-2)&lzoOutMask] |= byte(t)
			binary.LittleEndian.PutUint32(e.out[op&lzoOutMask:], e.load32(ii))
			op += t
		case t <= 16:
			e.out[op&lzoOutMask] = byte(t - 3)
			e.copy16(op+1, ii)
			op += 1 + t
		default:
			op = e.literals(op, ii, t, false)
		}
		// The match's length: four bytes agree; compare on eight at a
		// time, stopping (as liblzo does) once past the chunk's last 20
		// bytes.
		mLen := 4
		v := e.load64(ip+mLen) ^ e.load64(mPos+mLen)
		for v == 0 {
			mLen += 8
			v = e.load64(ip+mLen) ^ e.load64(mPos+mLen)
			if ip+mLen >= ipEnd {
				goto lenDone
			}
		}
		mLen += bits.TrailingZeros64(v) >> 3
	lenDone:
		mOff := ip - mPos
		lastOff = mOff
		ip += mLen
		ii = ip
		o := &e.out
		switch {
		case mLen <= lzoM2MaxLen && mOff <= lzoM2MaxOff:
			mOff--
			o[op&lzoOutMask] = byte((mLen-1)<<5 | (mOff&7)<<2)
			o[(op+1)&lzoOutMask] = byte(mOff >> 3)
			op += 2
		case mOff <= lzoM3MaxOff:
			mOff--
			if mLen <= lzoM3MaxLen {
				o[op&lzoOutMask] = byte(lzoM3Marker | (mLen - 2))
				op++
			} else {
				op = e.length(op, lzoM3Marker, mLen-lzoM3MaxLen)
			}
			o[op&lzoOutMask] = byte(mOff << 2)
			o[(op+1)&lzoOutMask] = byte(mOff >> 6)
			op += 2
		default:
			mOff -= 0x4000
			if mLen <= lzoM4MaxLen {
				o[op&lzoOutMask] = byte(lzoM4Marker | (mOff>>11)&8 | (mLen - 2))
				op++
			} else {
				op = e.length(op, lzoM4Marker|(mOff>>11)&8, mLen-lzoM4MaxLen)
			}
			o[op&lzoOutMask] = byte(mOff << 2)
			o[(op+1)&lzoOutMask] = byte(mOff >> 6)
			op += 2
		}
	}
}

// length writes an instruction byte whose length field is zero and the
// length's continuation: a zero byte for each 255, then the rest.
func (e *lzoEnc) length(op int, marker, l int) int {
	e.out[op&lzoOutMask] = byte(marker)
	op++
	for ; l > 255; l -= 255 {
		e.out[op&lzoOutMask] = 0
		op++
	}
	e.out[op&lzoOutMask] = byte(l)
	return op + 1
}
