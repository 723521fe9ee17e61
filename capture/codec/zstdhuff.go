package codec

import "encoding/binary"

// Huffman coding of a zstd block's literals (RFC 8878 §4.2), built anew
// for each page: histogram, code lengths limited to huffMaxBits, the
// table description, and one or four bitstreams.

const (
	huffMaxBits = 11 // the format's largest code length
	// huffWeightLog bounds the FSE table that codes the weights.
	huffWeightLog = 6
)

type huffEnc struct {
	count [256]uint32
	// code holds each symbol's code, value left-aligned and length in
	// the low byte (see encode1).
	code [256]uint64
	// sorted and tmp hold count<<8|symbol keys while sorting; depth the
	// code lengths in the same order.
	sorted  [256]uint32
	depth   [256]uint32
	present [256]uint8  // the symbols present, in order
	npres   int         // how many
	bucket  [256]uint16 // symbols by count, capped at 255
	maxCnt  uint32
	weights [256]uint8
	maxSym  int
	maxLen  int
	perLen  [32]int // codes of each length
	// The FSE table for the weights.
	wcount [huffMaxBits + 1]uint32
	wnorm  [huffMaxBits + 1]int16
	wtab   fseCTable
}

// histogram counts lits and returns the largest count and the largest
// symbol present. It also notes, for build's sort, the symbols present
// and how many have each count.
func (h *huffEnc) histogram(lits []byte) (maxCount uint32, maxSym int) {
	// Eight bytes a load into one table: runs of a byte are rare in
	// literals (the match finder takes them).
	c := &h.count
	*c = [256]uint32{}
	i := 0
	for ; i+8 <= len(lits); i += 8 {
		v := binary.LittleEndian.Uint64(lits[i:])
		c[uint8(v)]++
		c[uint8(v>>8)]++
		c[uint8(v>>16)]++
		c[uint8(v>>24)]++
		c[uint8(v>>32)]++
		c[uint8(v>>40)]++
		c[uint8(v>>48)]++
		c[uint8(v>>56)]++
	}
	for ; i < len(lits); i++ {
		c[lits[i]]++
	}
	// Without branches: the symbols present come in any pattern.
	b := &h.bucket
	*b = [256]uint16{}
	np := 0
	for s, n := range c {
		h.present[np&255] = uint8(s)
		nz := 0
		if n != 0 {
			nz = 1
		}
		np += nz
		b[min(n, 255)]++
		maxCount = max(maxCount, n)
	}
	b[0] = 0
	if np > 0 {
		maxSym = int(h.present[(np-1)&255])
	}
	h.npres = np
	h.maxCnt = maxCount
	return maxCount, maxSym
}

// build computes code lengths (at most huffMaxBits) and codes from the
// counts, for at least two distinct symbols, and returns the size of the
// coded literals in bits.
func (h *huffEnc) build(maxSym int) (nbits int) {
	h.maxSym = maxSym
	// Sort the present symbols by count, ascending, as count<<8|symbol
	// keys: a counting sort on the count capped at 255 (histogram
	// counted the buckets), then an insertion sort of the few symbols at
	// or above the cap.
	b := &h.bucket
	maxCount := h.maxCnt
	top := int(min(maxCount, 255))
	sum := uint16(0)
	for i := range b[:top+1] {
		sum, b[i] = sum+b[i], sum
	}
	n := int(sum)
	keys := h.sorted[:n]
	present := h.present[:h.npres]
	for _, sym := range present {
		c := h.count[sym]
		d := min(c, 255)
		keys[b[d]&0xff] = c<<8 | uint32(sym)
		b[d]++
	}
	if maxCount >= 255 {
		big := int(b[254]) // where the capped bucket starts
		for i := big + 1; i < n; i++ {
			k := keys[i]
			j := i
			for j > big && keys[j-1] > k {
				keys[j] = keys[j-1]
				j--
			}
			keys[j] = k
		}
	}

	// Code lengths in place (Moffat and Katajainen, "In-place calculation
	// of minimum-redundancy codes", 1995): A holds the sorted counts and
	// ends up holding each leaf's depth.
	a := h.depth[:n]
	for i, k := range keys {
		a[i] = k >> 8
	}
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || a[root] < a[leaf] {
			a[next] = a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] = a[leaf]
			leaf++
		}
		if leaf >= n || (root < next && a[root] < a[leaf]) {
			a[next] += a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] += a[leaf]
			leaf++
		}
	}
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	avail, used, depth := 1, 0, uint32(0)
	root, next := n-2, n-1
	for avail > 0 {
		for root >= 0 && a[root] == depth {
			used++
			root--
		}
		for avail > used {
			a[next] = depth
			next--
			avail--
		}
		avail = 2 * used
		depth++
		used = 0
	}

	// Limit the lengths: count codes per length, fold the longer ones
	// into the longest allowed, then split shorter codes until the code
	// is complete again (the Kraft sum is exactly one).
	perLen := &h.perLen
	*perLen = [32]int{}
	for _, d := range a {
		perLen[min(d, huffMaxBits)]++
	}
	if a[0] > huffMaxBits {
		total := 0
		for l := 1; l <= huffMaxBits; l++ {
			total += perLen[l] << (huffMaxBits - l)
		}
		for total > 1<<huffMaxBits {
			perLen[huffMaxBits]--
			for l := huffMaxBits - 1; l > 0; l-- {
				if perLen[l] > 0 {
					perLen[l]--
					perLen[l+1] += 2
					break
				}
			}
			total--
		}
		// Hand the lengths out again, shortest to the most frequent.
		i := n - 1
		for l := 1; l <= huffMaxBits; l++ {
			for k := 0; k < perLen[l]; k++ {
				a[i] = uint32(l)
				i--
			}
		}
	}
	maxLen := 0
	for l := huffMaxBits; l > 0; l-- {
		if perLen[l] > 0 {
			maxLen = l
			break
		}
	}
	h.maxLen = maxLen

	// Canonical codes as zstd's decoder expects them: the longest codes
	// take the smallest values, and within one length symbols are in
	// order.
	var val [16]uint32
	m := uint32(0)
	for l := maxLen; l > 0; l-- {
		val[l] = m
		m += uint32(perLen[l])
		m >>= 1
	}
	clear(h.weights[:maxSym+1])
	for i, k := range keys {
		s := k & 0xff
		l := a[i]
		h.weights[s] = uint8(maxLen + 1 - int(l))
		nbits += int(k>>8) * int(l)
	}
	for _, s := range present {
		l := uint32(maxLen + 1 - int(h.weights[s]))
		h.code[s] = uint64(val[l&15])<<((64-l)&63) | uint64(l)
		val[l&15]++
	}
	return nbits
}

// writeTable appends the table description: the weights of symbols
// 0..maxSym-1, FSE-coded when that is shorter (the last weight is
// implied). It returns false when neither form can hold them.
func (h *huffEnc) writeTable(dst []byte, fb *fseBuilder) ([]byte, bool) {
	nw := h.maxSym // weights written; the last symbol's is implied
	w := h.weights[:nw]
	start := len(dst)
	if nw > 2 {
		// FSE when it beats four bits a weight, or when that form
		// cannot hold them all.
		if out, ok := h.writeWeightsFSE(dst, w, fb); ok && (len(out)-start-1 < nw/2 || nw > 128) {
			return out, true
		}
		dst = dst[:start]
	}
	if nw > 128 {
		return dst, false
	}
	dst = append(dst, byte(127+nw))
	for i := 0; i < nw; i += 2 {
		b := w[i] << 4
		if i+1 < nw {
			b |= w[i+1]
		}
		dst = append(dst, b)
	}
	return dst, true
}

// writeWeightsFSE appends the FSE-coded weights with their header byte.
func (h *huffEnc) writeWeightsFSE(dst []byte, w []uint8, fb *fseBuilder) ([]byte, bool) {
	// The weights' histogram is the code lengths': weight k is length
	// maxLen+1-k; zero for the absent symbols; less the last symbol,
	// whose weight is implied.
	n := len(w)
	clear(h.wcount[:])
	maxW := 0
	present := 0
	for l := 1; l <= h.maxLen; l++ {
		k := h.maxLen + 1 - l
		h.wcount[k] = uint32(h.perLen[l])
		present += h.perLen[l]
		if h.perLen[l] > 0 {
			maxW = max(maxW, k)
		}
	}
	h.wcount[h.weights[h.maxSym]]--
	h.wcount[0] = uint32(n - (present - 1))
	for maxW > 0 && h.wcount[maxW] == 0 {
		maxW--
	}
	maxCount := uint32(0)
	for _, c := range h.wcount[:maxW+1] {
		maxCount = max(maxCount, c)
	}
	if int(maxCount) == n || maxCount == 1 {
		return dst, false
	}
	log := fseOptimalLog(huffWeightLog, n, maxW)
	norm := h.wnorm[:maxW+1]
	if !fseNormalize(norm, h.wcount[:maxW+1], n, log) {
		return dst, false
	}
	hdr := len(dst)
	dst = append(dst, 0)
	dst = fseWriteNCount(dst, norm, log)
	t := &h.wtab
	fb.buildTable(t, norm, log)
	// Two interleaved states: even weights on the first, odd on the
	// second; encoded backwards, the first state flushed last.
	var buf [128 + 16]byte
	var st [2]fseState
	st[(n-1)&1].init(t, w[n-1])
	st[(n-2)&1].init(t, w[n-2])
	v0, v1 := st[0].value, st[1].value
	var acc uint64
	var nbits uint
	i := n - 3
	if i&1 == 0 {
		v0 = t.encodeBits(&acc, &nbits, v0, w[i])
		i--
	}
	pos := 0
	for ; i > 0; i -= 2 {
		if nbits >= 40 {
			// At most 6 bits a weight: flush before 64.
			binary.LittleEndian.PutUint64(buf[pos&127:], acc)
			pos += int(nbits >> 3)
			acc >>= (nbits >> 3 << 3) & 63
			nbits &= 7
			if pos > 120 {
				return dst[:hdr], false
			}
		}
		v1 = t.encodeBits(&acc, &nbits, v1, w[i])
		v0 = t.encodeBits(&acc, &nbits, v0, w[i-1])
	}
	bw := bitWriter{bits: acc, nbits: nbits, pos: pos, buf: buf[:]}
	bw.flush()
	st[0].value, st[1].value = v0, v1
	st[1].flush(&bw)
	st[0].flush(&bw)
	size := bw.close()
	csize := len(dst) - hdr - 1 + size
	if csize >= 128 {
		return dst[:hdr], false
	}
	dst[hdr] = byte(csize)
	return append(dst, buf[:size]...), true
}

// encode1 writes lits[lo:hi] as one Huffman bitstream at out[pos:] and
// returns the position after it. Symbols go in last first, so that the
// decoder, reading backwards, meets the first first. The caller has made
// sure the stream fits.
//
// The bits collect at the top of acc (as C zstd's encoder does): a code,
// left-aligned with its length in the low byte, goes in with one shift
// and one or; the length's bits fall out below the pending ones, and nb
// counts in its low byte only.
func (h *huffEnc) encode1(out *[2*zstdMaxPage + 16]byte, pos int, lits *[zMask + 1 + 16]byte, lo, hi int) int {
	code := &h.code
	var acc, nb uint64
	i := hi
	for ; (i-lo)&3 != 0; i-- {
		c := code[lits[(i-1)&zMask]]
		acc = acc>>(c&63) | c
		nb += c
	}
	for ; i > lo; i -= 4 {
		// At most 7 bits pending and four codes of at most 11.
		n := nb & 0xff
		binary.LittleEndian.PutUint64(out[pos&zOutMask:], acc>>((64-n)&63))
		pos += int(n >> 3)
		nb = n & 7
		v := binary.LittleEndian.Uint32(lits[(i-4)&zMask:])
		c := code[uint8(v>>24)]
		acc = acc>>(c&63) | c
		nb += c
		c = code[uint8(v>>16)]
		acc = acc>>(c&63) | c
		nb += c
		c = code[uint8(v>>8)]
		acc = acc>>(c&63) | c
		nb += c
		c = code[uint8(v)]
		acc = acc>>(c&63) | c
		nb += c
	}
	// The end mark, and the last bits.
	acc = acc>>1 | 1<<63
	n := nb&0xff + 1
	binary.LittleEndian.PutUint64(out[pos&zOutMask:], acc>>((64-n)&63))
	return pos + int(n+7)>>3
}

// encode4 writes lits[:n] as four Huffman bitstreams after a jump table
// of the first three's sizes.
func (h *huffEnc) encode4(out *[2*zstdMaxPage + 16]byte, pos int, lits *[zMask + 1 + 16]byte, n int) int {
	seg := (n + 3) / 4
	jump := pos
	pos += 6
	for k := 0; k < 4; k++ {
		lo, hi := k*seg, min((k+1)*seg, n)
		end := h.encode1(out, pos, lits, lo, hi)
		if k < 3 {
			binary.LittleEndian.PutUint16(out[(jump+2*k)&zOutMask:], uint16(end-pos))
		}
		pos = end
	}
	return pos
}

// literalsHeader returns the literals section header for a section of
// type typ (0 raw, 1 RLE) and n regenerated bytes.
func literalsHeader(dst []byte, typ byte, n int) []byte {
	switch {
	case n < 32:
		return append(dst, byte(n<<3)|typ)
	case n < 4096:
		return binary.LittleEndian.AppendUint16(dst, uint16(n<<4)|1<<2|uint16(typ))
	}
	v := uint32(n)<<4 | 3<<2 | uint32(typ)
	return append(dst, byte(v), byte(v>>8), byte(v>>16))
}

// compressedLiteralsHeaderLen is the size of the header of Huffman-coded
// literals of n bytes, whose coded size is below n.
func compressedLiteralsHeaderLen(n int) int {
	switch {
	case n <= 1023:
		return 3
	case n <= 16383:
		return 4
	}
	return 5
}

// putCompressedLiteralsHeader writes that header at dst.
func putCompressedLiteralsHeader(dst []byte, n, csize int, four bool) {
	const typ = 2
	switch compressedLiteralsHeaderLen(n) {
	case 3:
		sf := uint32(0)
		if four {
			sf = 1
		}
		v := typ | sf<<2 | uint32(n)<<4 | uint32(csize)<<14
		dst[0], dst[1], dst[2] = byte(v), byte(v>>8), byte(v>>16)
	case 4:
		v := typ | 2<<2 | uint32(n)<<4 | uint32(csize)<<18
		binary.LittleEndian.PutUint32(dst, v)
	default:
		v := uint64(typ) | 3<<2 | uint64(n)<<4 | uint64(csize)<<22
		dst[0], dst[1], dst[2], dst[3], dst[4] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32)
	}
}
