package printk

import (
	"encoding/binary"
	"testing"
)

// testRing writes a printk_ringbuffer the way the kernel does (desc_reserve,
// data_alloc, the tail pushes, the bootstrap state of _DEFINE_PRINTKRB), in
// the layout of vmcoreinfoLockless, so tests can build rings in any state
// and compare what Read finds with what was written.
type testRing struct {
	countBits, sizeBits uint
	descs, infos, data  []byte
	headID, tailID      uint64
	headLpos, tailLpos  uint64
	// exactFit applies the late-2025 rule: a block ending exactly at the
	// end of the ring stays there instead of moving to the start.
	exactFit bool
	// wrapped lists the ids whose block was stored at the start of the ring.
	wrapped map[uint64]bool
}

// Layout of vmcoreinfoLockless.
const (
	tDescSize = 24
	tInfoSize = 88
	tIDMask   = 1<<62 - 1
)

type recSpec struct {
	ts                uint64
	level, facility   int
	flags             Flags
	caller            uint32
	text              string
	subsystem, device string
	emptyLine         bool   // store as EMPTY_LINE_LPOS, without a block
	rawInfo           []byte // printk_info bytes to start from (seq and text_len are set)
}

func sv(id, state uint64) uint64 { return state<<62 | id }

func newTestRing(countBits, sizeBits uint) *testRing {
	count := uint64(1) << countBits
	size := uint64(1) << sizeBits
	r := &testRing{
		countBits: countBits, sizeBits: sizeBits,
		descs:   make([]byte, count*tDescSize),
		infos:   make([]byte, count*tInfoSize),
		data:    make([]byte, size),
		wrapped: make(map[uint64]bool),
	}
	d0 := -(count + 1) & tIDMask // DESC0_ID
	r.headID, r.tailID = d0, d0
	r.setDesc(count-1, sv(d0, descReusable), failedLpos, failedLpos)
	r.setSeq(0, -count)
	r.headLpos, r.tailLpos = -size, -size // BLK0_LPOS
	return r
}

func (r *testRing) count() uint64 { return 1 << r.countBits }
func (r *testRing) size() uint64  { return 1 << r.sizeBits }
func (r *testRing) idx(id uint64) uint64 {
	return id & (r.count() - 1)
}
func (r *testRing) desc(idx uint64) []byte { return r.descs[idx*tDescSize : (idx+1)*tDescSize] }
func (r *testRing) info(idx uint64) []byte { return r.infos[idx*tInfoSize : (idx+1)*tInfoSize] }

func (r *testRing) setDesc(idx, state, begin, next uint64) {
	d := r.desc(idx)
	binary.LittleEndian.PutUint64(d[0:], state)
	binary.LittleEndian.PutUint64(d[8:], begin)
	binary.LittleEndian.PutUint64(d[16:], next)
}

func (r *testRing) descOf(id uint64) (state, begin, next uint64) {
	d := r.desc(r.idx(id))
	return binary.LittleEndian.Uint64(d[0:]), binary.LittleEndian.Uint64(d[8:]), binary.LittleEndian.Uint64(d[16:])
}

// setState sets the state of id's descriptor, keeping its id.
func (r *testRing) setState(id, state uint64) {
	binary.LittleEndian.PutUint64(r.desc(r.idx(id)), sv(id, state))
}

// setLpos overwrites id's text_blk_lpos.
func (r *testRing) setLpos(id, begin, next uint64) {
	d := r.desc(r.idx(id))
	binary.LittleEndian.PutUint64(d[8:], begin)
	binary.LittleEndian.PutUint64(d[16:], next)
}

func (r *testRing) setSeq(idx, seq uint64) { binary.LittleEndian.PutUint64(r.info(idx), seq) }
func (r *testRing) seq(idx uint64) uint64  { return binary.LittleEndian.Uint64(r.info(idx)) }
func (r *testRing) setTextLen(id uint64, n uint16) {
	binary.LittleEndian.PutUint16(r.info(r.idx(id))[16:], n)
}

func (r *testRing) wraps(lpos uint64) uint64 { return lpos >> r.sizeBits }

// blockWraps is the kernel's test for a block [begin, next) that does not
// fit before the end of the ring.
func (r *testRing) blockWraps(begin, next uint64) bool {
	if r.exactFit {
		return r.wraps(begin) != r.wraps(next-1)
	}
	return r.wraps(begin) != r.wraps(next)
}

func (r *testRing) putID(lpos, id uint64) {
	binary.LittleEndian.PutUint64(r.data[lpos&(r.size()-1):], id)
}

// pushDataTail recycles the oldest blocks until lpos is at or before the
// tail: each block's descriptor becomes reusable.
func (r *testRing) pushDataTail(lpos uint64) {
	for lpos-r.tailLpos-1 < r.size() {
		id := binary.LittleEndian.Uint64(r.data[r.tailLpos&(r.size()-1):])
		_, _, next := r.descOf(id)
		r.setState(id, descReusable)
		r.tailLpos = next
	}
}

// add reserves, fills and finalizes a record and returns its id.
func (r *testRing) add(s recSpec) uint64 {
	id := (r.headID + 1) & tIDMask
	if (id-r.count())&tIDMask == r.tailID {
		// desc_push_tail: the slot is the tail's; recycle it.
		st, _, next := r.descOf(r.tailID)
		if st>>62 != descReusable && next&1 == 0 {
			r.pushDataTail(next)
		}
		r.setState(r.tailID, descReusable)
		r.tailID = (r.tailID + 1) & tIDMask
	}
	r.headID = id
	idx := r.idx(id)
	seq := r.seq(idx)
	if seq == 0 && idx != 0 {
		seq = idx
	} else {
		seq += r.count()
	}
	info := r.info(idx)
	clear(info)
	copy(info, s.rawInfo)
	binary.LittleEndian.PutUint64(info[0:], seq)
	binary.LittleEndian.PutUint16(info[16:], uint16(len(s.text)))
	if s.rawInfo == nil {
		binary.LittleEndian.PutUint64(info[8:], s.ts)
		info[18] = byte(s.facility)
		info[19] = byte(s.level<<5) | byte(s.flags&0x1f)
		binary.LittleEndian.PutUint32(info[20:], s.caller)
		copy(info[24:40], s.subsystem)
		copy(info[40:88], s.device)
	}

	begin, next := uint64(emptyLineLpos), uint64(emptyLineLpos)
	if !s.emptyLine {
		blk := (uint64(len(s.text)) + 8 + 7) &^ 7
		begin = r.headLpos
		next = begin + blk
		wrapped := r.blockWraps(begin, next)
		if wrapped {
			next = next&^(r.size()-1) + blk
		}
		r.pushDataTail(next - r.size())
		r.headLpos = next
		r.putID(begin, id)
		at := begin & (r.size() - 1)
		if wrapped {
			r.putID(0, id)
			at = 0
			r.wrapped[id] = true
		}
		copy(r.data[at+8:], s.text)
	}
	r.setDesc(idx, sv(id, descFinalized), begin, next)
	return id
}

// live returns the ids from tail to head whose descriptor is finalized:
// the records a reader must find.
func (r *testRing) live() []uint64 {
	var ids []uint64
	for id := r.tailID; ; id = (id + 1) & tIDMask {
		if st, _, _ := r.descOf(id); st == sv(id, descFinalized) {
			ids = append(ids, id)
		}
		if id == r.headID {
			return ids
		}
	}
}

// seqOf returns id's sequence number.
func (r *testRing) seqOf(id uint64) uint64 { return r.seq(r.idx(id)) }

// install puts the ring into k: the three arrays in fresh memory, the
// printk_ringbuffer at fakeSymbols+0x100 and prb pointing at it; it adds
// the VMCOREINFO lines and returns the arrays' addresses.
func (r *testRing) install(k *fakeKernel) (descs, infos, data uint64) {
	descs = k.place(r.descs)
	infos = k.place(r.infos)
	data = k.place(r.data)
	prb := uint64(fakeSymbols + 0x100)
	k.mapRange(fakeSymbols, 0x1000)
	var rb [88]byte
	le := binary.LittleEndian
	le.PutUint32(rb[0:], uint32(r.countBits))
	le.PutUint64(rb[8:], descs)
	le.PutUint64(rb[16:], infos)
	le.PutUint64(rb[24:], r.headID)
	le.PutUint64(rb[32:], r.tailID)
	le.PutUint32(rb[48:], uint32(r.sizeBits))
	le.PutUint64(rb[56:], data)
	le.PutUint64(rb[64:], r.headLpos)
	le.PutUint64(rb[72:], r.tailLpos)
	k.write(prb, rb[:])
	k.put64(fakeSymbols, prb)
	k.addInfo("%s", vmcoreinfoLockless)
	k.addInfo("SYMBOL(prb)=%x", uint64(fakeSymbols))
	k.addInfo("SYMBOL(printk_rb_static)=%x", prb)
	return descs, infos, data
}

// update rewrites the arrays and ids of a ring installed at those
// addresses with the same geometry.
func (r *testRing) update(k *fakeKernel, descs, infos, data uint64) {
	k.write(descs, r.descs)
	k.write(infos, r.infos)
	k.write(data, r.data)
	k.put64(fakeSymbols+0x100+24, r.headID)
	k.put64(fakeSymbols+0x100+32, r.tailID)
}

// read installs r in a fresh fake kernel and reads it back with Read.
func (r *testRing) read(t testing.TB) *Log {
	t.Helper()
	k := newFakeKernel()
	r.install(k)
	log, err := Read(k.memory(t))
	if err != nil {
		t.Fatal(err)
	}
	return log
}
