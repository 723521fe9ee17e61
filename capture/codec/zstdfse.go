package codec

import (
	"encoding/binary"
	"math/bits"
)

// FSE (finite state entropy) encoding, as zstd's format defines it
// (RFC 8878 §4.1): the sequence codes of a block and the weights of its
// Huffman table are coded with it. Only what a page needs is here: tables
// of at most 2^maxFSELog states over at most maxFSESymbols symbols.

const (
	maxFSELog     = 9
	minFSELog     = 5
	maxFSESymbols = 53 // match length codes 0..52, the largest alphabet
)

// fseSymbolTT is one symbol's transform: how many bits a state emits
// before moving to the symbol's next state, and where those states start.
type fseSymbolTT struct {
	deltaNbBits    uint32
	deltaFindState int32
}

// fseCTable is an FSE encoding table built from a normalized distribution.
type fseCTable struct {
	tableLog uint8
	state    [1 << maxFSELog]uint16
	sym      [64]fseSymbolTT // maxFSESymbols, rounded up for masked indexing
	// cost is each symbol's cost in 1/256 bits, for choosing a table.
	cost [64]uint16
}

// fseBuilder holds the scratch space for building tables.
type fseBuilder struct {
	spread [1 << maxFSELog]uint8
	cumul  [256]uint16
}

// build fills t for norm, whose entries sum to 1<<tableLog; -1 marks a
// symbol of less than one state's probability ("low probability").
func (b *fseBuilder) build(t *fseCTable, norm []int16, tableLog uint8) {
	b.buildTable(t, norm, tableLog)
	t.fillCosts(norm)
}

// buildTable is build without the costs, for a table that only
// encodes.
func (b *fseBuilder) buildTable(t *fseCTable, norm []int16, tableLog uint8) {
	size := uint32(1) << tableLog
	mask := size - 1
	high := size - 1
	t.tableLog = tableLog
	// Low-probability symbols take the top of the table; the others are
	// spread with the format's step so that the decoder's table matches.
	b.cumul[0] = 0
	if len(norm) > maxFSESymbols {
		panic("codec: FSE alphabet too large")
	}
	for s, n := range norm {
		if n == -1 {
			b.cumul[s+1] = b.cumul[s] + 1
			b.spread[high] = uint8(s)
			high--
		} else {
			b.cumul[s+1] = b.cumul[s] + uint16(n)
		}
	}
	step := size>>1 + size>>3 + 3
	pos := uint32(0)
	if high == size-1 {
		// No low-probability symbols: every position is free.
		for s, n := range norm {
			for i := int16(0); i < n; i++ {
				b.spread[pos&(1<<maxFSELog-1)] = uint8(s)
				pos = (pos + step) & mask
			}
		}
	} else {
		for s, n := range norm {
			for i := int16(0); i < n; i++ {
				b.spread[pos&(1<<maxFSELog-1)] = uint8(s)
				pos = (pos + step) & mask
				for pos > high {
					pos = (pos + step) & mask
				}
			}
		}
	}
	for u := uint32(0); u < size; u++ {
		s := b.spread[u&(1<<maxFSELog-1)]
		t.state[b.cumul[s]&(1<<maxFSELog-1)] = uint16(size + u)
		b.cumul[s]++
	}
	total := int32(0)
	for s, n := range norm {
		switch {
		case n == 0:
		case n == -1 || n == 1:
			t.sym[s&63] = fseSymbolTT{deltaNbBits: uint32(tableLog)<<16 - size, deltaFindState: total - 1}
			total++
		default:
			maxBitsOut := uint32(tableLog) - uint32(bits.Len32(uint32(n-1))-1)
			minStatePlus := uint32(n) << (maxBitsOut & 31)
			t.sym[s&63] = fseSymbolTT{deltaNbBits: maxBitsOut<<16 - minStatePlus, deltaFindState: total - int32(n)}
			total += int32(n)
		}
	}
}

// fillCosts sets t.cost: each symbol's cost in 1/256 bits, for choosing
// between tables.
func (t *fseCTable) fillCosts(norm []int16) {
	for s := range t.cost {
		n := int16(0)
		if s < len(norm) {
			n = norm[s]
		}
		switch {
		case n == 0:
			t.cost[s] = uint16(t.tableLog+1) << 8 // no real symbol costs that
		case n == -1 || n == 1:
			t.cost[s] = uint16(t.tableLog) << 8
		default:
			t.cost[s] = uint16(uint32(t.tableLog)<<8 - log2x256(uint32(n)))
		}
	}
}

// log2x256 returns log2(v) in 1/256 units, v in [1, 512].
func log2x256(v uint32) uint32 { return uint32(log2Table[v]) }

var log2Table = func() (t [1<<maxFSELog + 1]uint16) {
	// Integer log2 with an 8-bit fraction from a linear interpolation of
	// the mantissa's square steps; accurate to well under 1/256 bit for
	// choosing between tables.
	for v := 1; v < len(t); v++ {
		hb := bits.Len32(uint32(v)) - 1
		// Normalise v to [2^16, 2^17) and take 8 fraction bits by repeated
		// squaring.
		x := uint64(v) << (16 - hb)
		frac := 0
		for i := 0; i < 8; i++ {
			x = x * x >> 16
			frac <<= 1
			if x >= 1<<17 {
				x >>= 1
				frac |= 1
			}
		}
		t[v] = uint16(hb<<8 | frac)
	}
	return t
}()

// fseState is one encoding state.
type fseState struct {
	value uint32
	t     *fseCTable
}

// init starts the state on sym, the last symbol to be encoded (the first
// the decoder reads); it writes no bits.
func (st *fseState) init(t *fseCTable, sym uint8) {
	st.t = t
	tt := t.sym[sym]
	nbBitsOut := (tt.deltaNbBits + 1<<15) >> 16
	v := nbBitsOut<<16 - tt.deltaNbBits
	st.value = uint32(t.state[int32(v>>nbBitsOut)+tt.deltaFindState])
}

// encodeBits writes the bits that move state v on to sym into a bit
// accumulator in the caller's locals, and returns the new state.
func (t *fseCTable) encodeBits(acc *uint64, nbits *uint, v uint32, sym uint8) uint32 {
	tt := t.sym[sym&63]
	nb := (v + tt.deltaNbBits) >> 16
	*acc |= (uint64(v) & lowMask[nb&63]) << (*nbits & 63)
	*nbits += uint(nb)
	return uint32(t.state[(int32(v>>(nb&31))+tt.deltaFindState)&(1<<maxFSELog-1)])
}

// flush writes the final state.
func (st *fseState) flush(w *bitWriter) {
	w.add(uint64(st.value), uint(st.t.tableLog))
	w.flush()
}

// fseOptimalLog returns the table log for n symbols of an alphabet whose
// largest symbol is maxSym, at most maxLog (zstd's FSE_optimalTableLog).
func fseOptimalLog(maxLog uint8, n int, maxSym int) uint8 {
	log := int(maxLog)
	if b := bits.Len32(uint32(n-1)) - 1 - 2; b < log {
		log = b
	}
	minBits := min(bits.Len32(uint32(n)), bits.Len32(uint32(maxSym))+1)
	if minBits > log {
		log = minBits
	}
	return uint8(max(min(log, int(maxLog)), minFSELog))
}

// fseNormalize scales count (total symbols in all) to a distribution
// summing to 1<<tableLog into norm. Every present symbol gets at least one
// state or -1 (less than one); the largest absorbs the rounding. It
// returns false when the counts cannot be normalized (a single symbol).
func fseNormalize(norm []int16, count []uint32, total int, tableLog uint8) bool {
	if total <= 0 {
		return false
	}
	size := int32(1) << tableLog
	lowThreshold := uint32(total >> tableLog)
	// Probabilities in 1/2^32 of the table: proba = count*size/total.
	const scale = 62
	step := (uint64(1) << scale) / uint64(total)
	shift := scale - uint(tableLog)
	rest := size
	largest, largestP := 0, int16(0)
	for s, c := range count {
		switch {
		case c == 0:
			norm[s] = 0
			continue
		case int(c) == total:
			return false
		case c <= lowThreshold:
			norm[s] = -1
			rest--
			continue
		}
		p := int16(uint64(c) * step >> shift)
		if p < 8 {
			// Round up small probabilities when the remainder is large:
			// a symbol costs more per bit of error the rarer it is.
			if frac := uint64(c)*step - uint64(p)<<shift; frac > rtbTable[p]<<(shift-20) {
				p++
			}
		}
		if p > largestP {
			largest, largestP = s, p
		}
		norm[s] = p
		rest -= int32(p)
	}
	if rest == 0 {
		return true
	}
	if -rest < int32(norm[largest])/2 {
		norm[largest] += int16(rest)
		return true
	}
	// The largest cannot absorb the error: take one state at a time from
	// the symbols that have the most.
	for rest < 0 {
		best := -1
		for s, n := range norm {
			if n > 1 && (best < 0 || n > norm[best]) {
				best = s
			}
		}
		if best < 0 {
			return false
		}
		norm[best]--
		rest++
	}
	norm[largest] += int16(rest)
	return true
}

var rtbTable = [8]uint64{0, 473195, 504333, 520860, 550000, 700000, 750000, 830000}

// fseWriteNCount appends the table description (RFC 8878 §4.1.1) of norm
// to dst.
func fseWriteNCount(dst []byte, norm []int16, tableLog uint8) []byte {
	size := int32(1) << tableLog
	remaining := size + 1
	threshold := size
	nbBits := uint(tableLog) + 1
	var bitStream uint64
	bitCount := uint(0)
	put := func() {
		for bitCount >= 16 {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(bitStream))
			bitStream >>= 16
			bitCount -= 16
		}
	}
	bitStream = uint64(tableLog - minFSELog)
	bitCount = 4
	previousIs0 := false
	sym := 0
	n := len(norm)
	for sym < n && remaining > 1 {
		if previousIs0 {
			start := sym
			for sym < n && norm[sym] == 0 {
				sym++
			}
			for sym >= start+24 {
				start += 24
				bitStream |= 0xffff << bitCount
				bitCount += 16
				put()
			}
			for sym >= start+3 {
				start += 3
				bitStream |= 3 << bitCount
				bitCount += 2
			}
			bitStream |= uint64(sym-start) << bitCount
			bitCount += 2
			put()
		}
		count := int32(norm[sym])
		sym++
		maxV := 2*threshold - 1 - remaining
		if count < 0 {
			remaining += count
		} else {
			remaining -= count
		}
		count++
		if count >= threshold {
			count += maxV
		}
		bitStream |= uint64(count) << bitCount
		bitCount += nbBits
		if count < maxV {
			bitCount--
		}
		previousIs0 = count == 1
		for remaining < threshold {
			nbBits--
			threshold >>= 1
		}
		put()
	}
	for bitCount > 0 {
		dst = append(dst, byte(bitStream))
		bitStream >>= 8
		bitCount -= min(bitCount, 8)
	}
	return dst
}

// bitWriter writes zstd's backward-read bitstreams: bits go in from the
// least significant end, little-endian, and a closing 1 bit marks the
// end. buf must have 8 bytes of room past what is written; callers check
// pos against their own limit between flushes.
type bitWriter struct {
	bits  uint64
	nbits uint
	pos   int
	buf   []byte
}

// add appends the low n bits of v. At most 56 bits may be pending
// between flushes.
func (w *bitWriter) add(v uint64, n uint) {
	w.bits |= (v & (1<<(n&63) - 1)) << (w.nbits & 63)
	w.nbits += n
}

// addFast is add for a v that has no bits above the n.
func (w *bitWriter) addFast(v uint64, n uint) {
	w.bits |= v << (w.nbits & 63)
	w.nbits += n
}

// flush moves the whole pending bytes to buf.
func (w *bitWriter) flush() {
	binary.LittleEndian.PutUint64(w.buf[w.pos:], w.bits)
	n := w.nbits >> 3
	w.pos += int(n)
	w.bits >>= (n << 3) & 63
	w.nbits &= 7
}

// close writes the end mark and the last bits, and returns the position
// after them.
func (w *bitWriter) close() int {
	w.add(1, 1)
	w.flush()
	if w.nbits > 0 {
		w.pos++
	}
	return w.pos
}
