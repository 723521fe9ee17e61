package printk

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// Limits on the lockless ring, from the kernel: log_buf_len is at most
// LOG_BUF_LEN_MAX (2 GiB), and there is one descriptor per 32 bytes of
// text (PRB_AVGBITS 5), so at most 2^26 descriptors.
const (
	maxSizeBits  = 31
	maxCountBits = maxSizeBits - 5
)

// Descriptor states, the top two bits of prb_desc.state_var.
const (
	descReserved  = 0 // a writer holds it
	descCommitted = 1 // complete, but its writer may still extend it
	descFinalized = 2 // complete
	descReusable  = 3 // recycled
)

// Special text_blk_lpos values of records without a data block: bit 0
// set means no block, bit 1 says why.
const (
	failedLpos    = 0x1 // the kernel could not store the text
	emptyLineLpos = 0x3 // the text is empty (NO_LPOS in 5.10)
)

// ringLayout holds VMCOREINFO's description of the lockless ring: the
// offsets of the fields read, from the start of their outer structure
// (printk_ringbuffer, prb_desc or printk_info).
type ringLayout struct {
	word uint64 // sizeof(long)

	prbSize                 uint64 // printk_ringbuffer:
	descRing, textDataRing  uint64
	countBits, descs, infos uint64
	headID, tailID          uint64
	sizeBits, data          uint64
	descSize, stateVar      uint64 // prb_desc:
	lposBegin, lposNext     uint64
	infoSize                uint64 // printk_info:
	seq, tsNsec, textLen    uint64
	hasLevel                bool // facility, flags and level follow text_len
	callerID                uint64
	hasCaller               bool
	subsystem, device       uint64
	subsystemLen, deviceLen uint64
	hasSubsystem, hasDevice bool
}

func newRingLayout(info *vmcoreinfo.Info) (*ringLayout, error) {
	l := &layout{info: info}
	rl := &ringLayout{}

	// unsigned long is half a prb_data_blk_lpos.
	lposSize := l.size("prb_data_blk_lpos")
	rl.word = lposSize / 2
	if l.err == nil && rl.word != 4 && rl.word != 8 {
		l.fail(fmt.Errorf("%w: SIZE(prb_data_blk_lpos)=%d", ErrLayout, lposSize))
	}
	w := rl.word
	if v, ok := info.Offset("atomic_long_t.counter"); ok && v != 0 {
		// atomic_long_t is { long counter; }: the offset is 0 wherever
		// Linux runs. Refuse anything else rather than guess.
		l.fail(fmt.Errorf("%w: OFFSET(atomic_long_t.counter)=%d", ErrLayout, v))
	}

	rl.prbSize = l.size("printk_ringbuffer")
	descRingSize := l.size("prb_desc_ring")
	dataRingSize := l.size("prb_data_ring")
	rl.descRing = l.offset("printk_ringbuffer.desc_ring", descRingSize, rl.prbSize)
	rl.textDataRing = l.offset("printk_ringbuffer.text_data_ring", dataRingSize, rl.prbSize)

	rl.countBits = rl.descRing + l.offset("prb_desc_ring.count_bits", 4, descRingSize)
	rl.descs = rl.descRing + l.offset("prb_desc_ring.descs", w, descRingSize)
	rl.infos = rl.descRing + l.offset("prb_desc_ring.infos", w, descRingSize)
	rl.headID = rl.descRing + l.offset("prb_desc_ring.head_id", w, descRingSize)
	rl.tailID = rl.descRing + l.offset("prb_desc_ring.tail_id", w, descRingSize)

	rl.sizeBits = rl.textDataRing + l.offset("prb_data_ring.size_bits", 4, dataRingSize)
	rl.data = rl.textDataRing + l.offset("prb_data_ring.data", w, dataRingSize)

	rl.descSize = l.size("prb_desc")
	rl.stateVar = l.offset("prb_desc.state_var", w, rl.descSize)
	blk := l.offset("prb_desc.text_blk_lpos", lposSize, rl.descSize)
	rl.lposBegin = blk + l.offset("prb_data_blk_lpos.begin", w, lposSize)
	rl.lposNext = blk + l.offset("prb_data_blk_lpos.next", w, lposSize)

	rl.infoSize = l.size("printk_info")
	rl.seq = l.offset("printk_info.seq", 8, rl.infoSize)
	rl.tsNsec = l.offset("printk_info.ts_nsec", 8, rl.infoSize)
	rl.textLen = l.offset("printk_info.text_len", 2, rl.infoSize)
	rl.callerID, rl.hasCaller = l.optOffset("printk_info.caller_id", 4, rl.infoSize)
	// VMCOREINFO does not export the bitfields: `u8 facility; u8 flags:5;
	// u8 level:3;` follow u16 text_len, before caller_id, in every
	// version of struct printk_info.
	rl.hasLevel = rl.textLen+4 <= rl.infoSize && (!rl.hasCaller || rl.textLen+4 <= rl.callerID)

	// dev_info came with 5.10's struct printk_info; treat it as optional.
	small := func(v int64, ok bool) (uint64, bool) { return uint64(v), ok && v >= 0 && v <= maxStruct }
	dev, devOK := small(info.Offset("printk_info.dev_info"))
	devSize, sizeOK := small(info.Size("dev_printk_info"))
	if devOK && sizeOK && dev+devSize <= rl.infoSize {
		field := func(member, length string) (off, n uint64, ok bool) {
			o, ok1 := small(info.Offset("dev_printk_info." + member))
			n, ok2 := small(info.Length(length))
			return dev + o, n, ok1 && ok2 && n > 0 && o+n <= devSize
		}
		rl.subsystem, rl.subsystemLen, rl.hasSubsystem = field("subsystem", "printk_info_subsystem")
		rl.device, rl.deviceLen, rl.hasDevice = field("device", "printk_info_device")
	}
	if l.err != nil {
		return nil, l.err
	}
	return rl, nil
}

// ring is one printk_ringbuffer read from the dump.
type ring struct {
	m   *mem
	l   *ringLayout
	log *Log

	countBits, sizeBits uint
	descs, infos, data  uint64
	headID, tailID      uint64
	idMask              uint64 // DESC_ID_MASK
	wordMask            uint64 // all ones in an unsigned long
	addr                uint64 // of the printk_ringbuffer

	desc, info []byte // scratch
}

func readLockless(r virtReader, info *vmcoreinfo.Info, bo binary.ByteOrder) (*Log, error) {
	rl, err := newRingLayout(info)
	if err != nil {
		return nil, err
	}
	m := &mem{r: r, bo: bo}
	sym, _ := info.Symbol("prb")
	// prb points at the ring in use: printk_rb_static until setup_log_buf()
	// switches to the dynamically allocated one.
	addr, err := m.word(sym, rl.word)
	if err != nil {
		return nil, fmt.Errorf("printk: read prb: %w", err)
	}
	rb, err := openRing(m, rl, addr)
	if err != nil {
		return nil, err
	}
	rb.readAll()
	return rb.log, unreadable(rb.log, addr, "printk_ringbuffer")
}

func openRing(m *mem, rl *ringLayout, addr uint64) (*ring, error) {
	prb := make([]byte, rl.prbSize)
	if err := m.read(prb, addr); err != nil {
		return nil, fmt.Errorf("printk: read printk_ringbuffer: %w", err)
	}
	w := int(rl.word)
	word := func(off uint64) uint64 { return m.getWord(prb[off : off+uint64(w)]) }
	rb := &ring{
		m:        m,
		l:        rl,
		log:      &Log{Kind: KindLockless},
		descs:    word(rl.descs),
		infos:    word(rl.infos),
		data:     word(rl.data),
		headID:   word(rl.headID),
		tailID:   word(rl.tailID),
		wordMask: ^uint64(0) >> (64 - 8*rl.word),
		desc:     make([]byte, rl.descSize),
		info:     make([]byte, rl.infoSize),
	}
	// state_var keeps the state in the top two bits of an unsigned long.
	rb.idMask = rb.wordMask >> 2
	countBits := m.bo.Uint32(prb[rl.countBits:])
	sizeBits := m.bo.Uint32(prb[rl.sizeBits:])
	if sizeBits > maxSizeBits || sizeBits < 3 {
		return nil, corrupt(addr+rl.sizeBits, "prb_data_ring.size_bits",
			"a text ring of 2^%d bytes (the kernel's are 2^3 to 2^%d)", sizeBits, maxSizeBits)
	}
	if countBits > maxCountBits || countBits > sizeBits {
		return nil, corrupt(addr+rl.countBits, "prb_desc_ring.count_bits",
			"2^%d descriptors for 2^%d bytes of text (the kernel's are at most 2^%d, and fewer than the bytes)",
			countBits, sizeBits, maxCountBits)
	}
	rb.countBits, rb.sizeBits = uint(countBits), uint(sizeBits)
	rb.addr = addr
	return rb, nil
}

// blockRef is where a record's text lies in the data ring.
type blockRef struct {
	off, size uint64 // the data block, its leading id included
	textLen   uint64
	id        uint64
}

// readAll walks the descriptors from head_id back to tail_id, so that when
// the log is larger than the reader's bounds (maxSteps, MaxLogMemory) it
// keeps the newest records, then gives each data byte of the ring to one
// record at most, reads the texts, and orders the records by id, which is
// sequence order.
func (rb *ring) readAll() {
	count := uint64(1) << rb.countBits
	tail := rb.tailID & rb.idMask
	head := rb.headID & rb.idMask
	// The kernel pushes the tail before the head can lap it, so fewer
	// than count ids separate them; a corrupt tail is ignored and the
	// last count ids read.
	n := (head-tail)&rb.idMask + 1
	if n > count {
		n = count
	}
	steps := min(n, maxSteps)
	maxRecs := uint64(logMemory / recordCost)
	// Grown as records are found: a huge ring of damaged descriptors
	// costs no memory.
	recs := make([]Record, 0, min(steps, maxRecs, 1024))
	refs := make([]blockRef, 0, min(steps, maxRecs, 1024))
	var i uint64
	for ; i < steps && uint64(len(recs)) < maxRecs; i++ {
		id := (head - i) & rb.idMask
		rec, ref, st := rb.record(id)
		switch st {
		case recOK:
			recs = append(recs, rec)
			refs = append(refs, ref)
		case recSkip:
			rb.log.Skipped++
		}
	}
	rb.log.Dropped = int(n - i)
	attribute(refs)
	// Texts, newest first, within the memory bound.
	budget := logMemory - len(recs)*recordCost
	keep := 0
	for j := range recs {
		ref := &refs[j]
		if ref.size > 0 {
			if ref.textLen != noText && ref.textLen > uint64(budget) {
				rb.log.Dropped += len(recs) - j
				break
			}
			text, ok := rb.text(ref)
			if !ok {
				rb.log.Skipped++
				continue
			}
			budget -= len(text)
			recs[j].Text = text
		}
		recs[keep] = recs[j]
		keep++
	}
	recs = recs[:keep]
	slices.Reverse(recs)
	rb.log.Records = recs
}

// attribute gives each byte of the data ring to one record at most: a
// ring's valid blocks never overlap, so of blocks that do (a corrupt or
// crafted ring) only the first in ring order keeps its text; the others
// are skipped (textLen noText). Without it a few kilobytes of memory could
// be read as the text of thousands of records.
func attribute(refs []blockRef) {
	order := make([]int, 0, len(refs))
	for j, ref := range refs {
		if ref.size > 0 {
			order = append(order, j)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(refs[a].off, refs[b].off); c != 0 {
			return c
		}
		// The newer record (lower index: recs is newest first) wins a
		// tie.
		return cmp.Compare(a, b)
	})
	end := uint64(0)
	for _, j := range order {
		ref := &refs[j]
		if ref.off < end {
			ref.textLen = noText
			continue
		}
		end = ref.off + ref.size
	}
}

// noText marks a blockRef whose block another record's overlaps.
const noText = ^uint64(0)

// text reads the text ref points at.
func (rb *ring) text(ref *blockRef) (string, bool) {
	if ref.textLen == noText {
		return "", false
	}
	text := make([]byte, ref.textLen)
	if err := rb.m.read(text, rb.data+ref.off+rb.l.word); err != nil {
		return "", false
	}
	return string(text), true
}

type recStatus int

const (
	recOK     recStatus = iota
	recSkip             // present but unreadable
	recIgnore           // recycled: not a record any more
)

// record reads descriptor id and its printk_info, and checks that its data
// block starts with its id. The text is read later (text).
func (rb *ring) record(id uint64) (Record, blockRef, recStatus) {
	l, m := rb.l, rb.m
	count := uint64(1) << rb.countBits
	idx := id & (count - 1)
	if err := m.read(rb.desc, rb.descs+idx*l.descSize); err != nil {
		return Record{}, blockRef{}, recSkip
	}
	sv := m.getWord(rb.desc[l.stateVar : l.stateVar+l.word])
	if sv&rb.idMask != id {
		// desc_miss: a writer took the id but had not yet claimed the
		// descriptor, or the ring is corrupt.
		return Record{}, blockRef{}, recSkip
	}
	switch (sv & rb.wordMask) >> (8*l.word - 2) {
	case descReserved:
		return Record{}, blockRef{}, recSkip
	case descReusable:
		return Record{}, blockRef{}, recIgnore
	}
	if err := m.read(rb.info, rb.infos+idx*l.infoSize); err != nil {
		return Record{}, blockRef{}, recSkip
	}
	info := rb.info
	rec := Record{
		Seq:  m.bo.Uint64(info[l.seq:]),
		Time: time.Duration(m.bo.Uint64(info[l.tsNsec:])),
	}
	// The kernel finds a record by seq at index seq % count: a descriptor
	// whose seq does not map to its own index is not a record.
	if rec.Seq&(count-1) != idx {
		return Record{}, blockRef{}, recSkip
	}
	if l.hasLevel {
		rec.Facility = int(info[l.textLen+2])
		rec.Level, rec.Flags = levelFlags(info[l.textLen+3], m.bo)
	}
	if l.hasCaller {
		rec.Caller = callerString(m.bo.Uint32(info[l.callerID:]))
	}
	if l.hasSubsystem {
		rec.Subsystem = cstring(info[l.subsystem : l.subsystem+l.subsystemLen])
	}
	if l.hasDevice {
		rec.Device = cstring(info[l.device : l.device+l.deviceLen])
	}
	textLen := uint64(m.bo.Uint16(info[l.textLen:]))

	begin := m.getWord(rb.desc[l.lposBegin : l.lposBegin+l.word])
	next := m.getWord(rb.desc[l.lposNext : l.lposNext+l.word])
	off, size, st := rb.block(begin, next)
	switch st {
	case blockEmpty:
		rec.noData = true
		return rec, blockRef{}, recOK
	case blockBad:
		return Record{}, blockRef{}, recSkip
	}
	w := l.word
	blk := make([]byte, w)
	if err := m.read(blk, rb.data+off); err != nil {
		return Record{}, blockRef{}, recSkip
	}
	// A data block starts with the id of the descriptor that owns it.
	if m.getWord(blk) != id {
		return Record{}, blockRef{}, recSkip
	}
	if avail := size - w; textLen > avail {
		// Like makedumpfile, show what the block holds.
		textLen = avail
	}
	textLen = min(textLen, MaxRecordText)
	return rec, blockRef{off: off, size: size, textLen: textLen, id: id}, recOK
}

type blockStatus int

const (
	blockData  blockStatus = iota
	blockEmpty             // an empty line, stored without a block
	blockBad               // no block (text lost) or an impossible position
)

// block locates the data block of text_blk_lpos {begin, next}: its offset
// in the data ring and its size including the leading id.
func (rb *ring) block(begin, next uint64) (off, size uint64, st blockStatus) {
	w, mask := rb.l.word, rb.wordMask
	begin &= mask
	next &= mask
	if begin&1 != 0 || next&1 != 0 {
		if begin == emptyLineLpos && next == emptyLineLpos {
			return 0, 0, blockEmpty
		}
		return 0, 0, blockBad // failedLpos, or garbage
	}
	if begin%w != 0 || next%w != 0 {
		return 0, 0, blockBad
	}
	bits := rb.sizeBits
	ringSize := uint64(1) << bits
	// next is where the following block starts, so the block's last byte
	// is at next-1. A block whose first and last bytes lie in different
	// wraps does not fit before the end of the ring: the kernel stored it
	// at the start of the ring instead. (Kernels before late 2025 also
	// moved a block that would end exactly at the end of the ring; its
	// next then lies a block's length into the following wrap, and the
	// rule still holds.)
	last := (next - 1) & mask
	if begin>>bits == last>>bits {
		size = (next - begin) & mask
		if size == 0 || size > ringSize {
			return 0, 0, blockBad
		}
		off = begin & (ringSize - 1)
	} else {
		if ((begin>>bits)+1)&(mask>>bits) != last>>bits {
			return 0, 0, blockBad
		}
		off, size = 0, (last&(ringSize-1))+1
	}
	if size < w {
		return 0, 0, blockBad
	}
	return off, size, blockData
}
