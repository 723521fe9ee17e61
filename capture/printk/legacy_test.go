package printk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// legacyBuf writes a log_buf the way log_store() of Linux 3.5-5.9 does:
// struct printk_log headers (x86: packed, 4-byte aligned), text, dict and
// padding; the oldest records dropped to make room; a zeroed header where
// a record did not fit before the end and went to the start.
type legacyBuf struct {
	name              string // printk_log, or log before 3.11
	hdr, align        uint64
	caller            bool
	buf               []byte
	first, next       uint64
	firstSeq, nextSeq uint64
	recs              map[uint64]Record // by seq
}

func newLegacyBuf(size uint64, caller bool) *legacyBuf {
	b := &legacyBuf{name: "printk_log", hdr: 16, align: 4, caller: caller, buf: make([]byte, size), recs: make(map[uint64]Record)}
	if caller {
		b.hdr = 20
	}
	return b
}

func (b *legacyBuf) len(idx uint64) uint64 { return uint64(binary.LittleEndian.Uint16(b.buf[idx+8:])) }

func (b *legacyBuf) logNext(idx uint64) uint64 {
	if b.len(idx) == 0 {
		return b.len(0)
	}
	return idx + b.len(idx)
}

func (b *legacyBuf) hasSpace(size uint64, empty bool) bool {
	size64 := uint64(len(b.buf))
	var free uint64
	if b.next > b.first || empty {
		free = max(size64-b.next, b.first)
	} else {
		free = b.first - b.next
	}
	return free >= size+b.hdr
}

// store appends rec (its Text, Subsystem, Device, Time, Level, Facility,
// Flags; Caller as a number in Seq's place is not needed: see callerID).
func (b *legacyBuf) store(rec Record, callerID uint32) {
	var dict []byte
	if rec.Subsystem != "" {
		dict = append(dict, "SUBSYSTEM="+rec.Subsystem...)
	}
	if rec.Device != "" {
		if dict != nil {
			dict = append(dict, 0)
		}
		dict = append(dict, "DEVICE="+rec.Device...)
	}
	size := b.hdr + uint64(len(rec.Text)) + uint64(len(dict))
	size += -size & (b.align - 1)
	for b.firstSeq < b.nextSeq && !b.hasSpace(size, false) {
		b.first = b.logNext(b.first)
		delete(b.recs, b.firstSeq)
		b.firstSeq++
	}
	if !b.hasSpace(size, b.firstSeq == b.nextSeq) {
		panic("record too large for the test buffer")
	}
	if b.next+size+b.hdr > uint64(len(b.buf)) {
		clear(b.buf[b.next : b.next+b.hdr])
		b.next = 0
	}
	h := b.buf[b.next:]
	le := binary.LittleEndian
	le.PutUint64(h[0:], uint64(rec.Time))
	le.PutUint16(h[8:], uint16(size))
	le.PutUint16(h[10:], uint16(len(rec.Text)))
	le.PutUint16(h[12:], uint16(len(dict)))
	h[14] = byte(rec.Facility)
	h[15] = byte(rec.Level<<5) | byte(rec.Flags&0x1f)
	if b.caller {
		le.PutUint32(h[16:], callerID)
	}
	copy(h[b.hdr:], rec.Text)
	copy(h[b.hdr+uint64(len(rec.Text)):], dict)
	b.next += size
	b.recs[b.nextSeq] = rec
	b.nextSeq++
}

// want returns the records a reader must find, numbered from 0.
func (b *legacyBuf) want() []Record {
	var out []Record
	for s := b.firstSeq; s < b.nextSeq; s++ {
		r := b.recs[s]
		r.Seq = s - b.firstSeq
		out = append(out, r)
	}
	return out
}

// install puts the buffer into k and returns its address.
func (b *legacyBuf) install(k *fakeKernel) (buf uint64) {
	buf = k.place(b.buf)
	k.mapRange(fakeSymbols, 0x1000)
	k.put64(fakeSymbols, buf)
	k.put32(fakeSymbols+8, uint32(len(b.buf)))
	k.put32(fakeSymbols+12, uint32(b.first))
	k.put32(fakeSymbols+16, uint32(b.next))
	k.addInfo("SYMBOL(log_buf)=%x", uint64(fakeSymbols))
	k.addInfo("SYMBOL(log_buf_len)=%x", uint64(fakeSymbols+8))
	k.addInfo("SYMBOL(log_first_idx)=%x", uint64(fakeSymbols+12))
	k.addInfo("SYMBOL(log_next_idx)=%x", uint64(fakeSymbols+16))
	k.addInfo("SYMBOL(clear_idx)=%x", uint64(fakeSymbols+20))
	n := b.name
	k.addInfo("SIZE(%s)=%d", n, b.hdr)
	k.addInfo("OFFSET(%s.ts_nsec)=0\nOFFSET(%[1]s.len)=8\nOFFSET(%[1]s.text_len)=10\nOFFSET(%[1]s.dict_len)=12", n)
	if b.caller {
		k.addInfo("OFFSET(%s.caller_id)=16", n)
	}
	return buf
}

// update rewrites the contents and indexes of a buffer of the same size
// installed at buf.
func (b *legacyBuf) update(k *fakeKernel, buf uint64) {
	k.write(buf, b.buf)
	k.put32(fakeSymbols+12, uint32(b.first))
	k.put32(fakeSymbols+16, uint32(b.next))
}

func (b *legacyBuf) read(t *testing.T) *Log {
	t.Helper()
	k := newFakeKernel()
	b.install(k)
	log, err := Read(k.memory(t))
	if log == nil {
		t.Fatal(err)
	}
	// An error says that not one record is readable, and only then.
	if none := len(log.Records) == 0 && log.Skipped > 0; none != (err != nil) || (none && !errors.Is(err, ErrCorrupt)) {
		t.Fatalf("%d records, %d skipped: error %v", len(log.Records), log.Skipped, err)
	}
	if log.Kind != KindLegacy {
		t.Fatalf("Kind = %q", log.Kind)
	}
	return log
}

func TestLegacyRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller bool
		old    bool
	}{{"printk_log+caller", true, false}, {"printk_log", false, false}, {"log", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newLegacyBuf(4096, tc.caller)
			if tc.old {
				b.name = "log"
			}
			recs := []struct {
				r      Record
				caller uint32
			}{
				{Record{Time: 0, Level: 5, Flags: LogNewline | LogPrefix, Text: "Linux version 4.19.0"}, 0},
				{Record{Time: 1500000000, Level: 6, Flags: LogNewline, Text: "e1000 0000:00:03.0: eth0: link up",
					Subsystem: "pci", Device: "+pci:0000:00:03.0"}, 1},
				{Record{Time: 2000000000, Level: 4, Flags: LogPrefix, Text: "part one "}, 0x80000000},
				{Record{Time: 2000000100, Level: 4, Flags: LogCont | LogNewline, Text: "and continued"}, 0x80000000},
				{Record{Time: 3000000000, Level: 3, Facility: 1, Flags: LogNewline, Text: "two\nlines"}, 77},
				{Record{Time: 4000000000, Level: 6, Flags: LogNewline, Text: "", Subsystem: "usb"}, 78},
			}
			for _, r := range recs {
				b.store(r.r, r.caller)
			}
			want := b.want()
			for i := range want {
				if tc.caller {
					want[i].Caller = callerString(recs[i].caller)
				}
			}
			log := b.read(t)
			if log.Skipped != 0 || !reflect.DeepEqual(log.Records, want) {
				t.Fatalf("skipped %d\n got %+v\nwant %+v", log.Skipped, log.Records, want)
			}
			var out bytes.Buffer
			if err := log.WriteDmesg(&out); err != nil {
				t.Fatal(err)
			}
			const dmesg = `[    0.000000] Linux version 4.19.0
[    1.500000] e1000 0000:00:03.0: eth0: link up
[    2.000000] part one 
[    2.000000] and continued
[    3.000000] two
               lines
[    4.000000] 
`
			if out.String() != dmesg {
				t.Fatalf("WriteDmesg:\n%q\nwant\n%q", out.String(), dmesg)
			}
		})
	}
}

// TestLegacyWrapped fills a small log_buf many times: the walk crosses the
// zero-length wrap marker and returns to the start.
func TestLegacyWrapped(t *testing.T) {
	for _, n := range []int{1, 5, 30, 31, 32, 100, 257} {
		b := newLegacyBuf(512, true)
		wrapped := false
		for i := 0; i < n; i++ {
			b.store(Record{Time: time.Duration(i) * time.Millisecond, Level: i % 8,
				Text: fmt.Sprintf("message %d%s", i, strings.Repeat(".", i%23))}, uint32(i))
			wrapped = wrapped || b.next < b.first
		}
		want := b.want()
		for i := range want {
			want[i].Caller = callerString(uint32(int(b.firstSeq) + i))
		}
		log := b.read(t)
		if log.Skipped != 0 || !reflect.DeepEqual(log.Records, want) {
			t.Fatalf("n=%d: skipped %d\n got %+v\nwant %+v", n, log.Skipped, log.Records, want)
		}
		if n >= 30 && (!wrapped || b.firstSeq == 0) {
			t.Fatalf("n=%d: the buffer never wrapped", n)
		}
	}
}

func TestLegacyCorrupt(t *testing.T) {
	build := func() *legacyBuf {
		b := newLegacyBuf(512, true)
		for i := 0; i < 40; i++ {
			b.store(Record{Text: fmt.Sprintf("message %d%s", i, strings.Repeat(".", i%23))}, uint32(i))
		}
		if b.next >= b.first {
			t.Fatal("fixture did not wrap")
		}
		return b
	}
	le := binary.LittleEndian
	// keep gives how many records survive, from the number before the
	// wrap (nA).
	for _, tc := range []struct {
		name string
		edit func(b *legacyBuf)
		keep func(nA int) int
	}{
		{"len zero after the wrap", func(b *legacyBuf) {
			// After the wrap a second marker is impossible.
			le.PutUint16(b.buf[b.len(0)+8:], 0)
		}, func(nA int) int { return nA + 1 }},
		{"second marker at the start", func(b *legacyBuf) {
			le.PutUint16(b.buf[8:], 0)
		}, func(nA int) int { return nA }},
		{"len below header", func(b *legacyBuf) {
			le.PutUint16(b.buf[b.first+8:], 3)
		}, func(int) int { return 0 }},
		{"len past the end", func(b *legacyBuf) {
			le.PutUint16(b.buf[b.first+8:], 60000)
		}, func(int) int { return 0 }},
		{"text past len", func(b *legacyBuf) {
			le.PutUint16(b.buf[b.first+10:], 500)
		}, func(int) int { return 0 }},
		{"len overshoots next", func(b *legacyBuf) {
			le.PutUint16(b.buf[8:], uint16(b.next+8))
		}, func(nA int) int { return nA }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := build()
			want := b.want()
			nB := b.countFrom(0)
			if nB < 2 {
				t.Fatal("fixture has fewer than 2 records after the wrap")
			}
			tc.edit(b)
			keep := tc.keep(len(want) - nB)
			log := b.read(t)
			if log.Skipped != 1 {
				t.Errorf("skipped %d", log.Skipped)
			}
			if len(log.Records) != keep {
				t.Fatalf("%d records, want the %d before the damage", len(log.Records), keep)
			}
			for i, r := range log.Records {
				if r.Text != want[i].Text {
					t.Fatalf("record %d: %q, want %q", i, r.Text, want[i].Text)
				}
			}
		})
	}
}

// countFrom counts the records from idx to log_next_idx.
func (b *legacyBuf) countFrom(idx uint64) int {
	n := 0
	for idx != b.next {
		idx += b.len(idx)
		n++
	}
	return n
}

func TestLegacyBadHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		off   uint64
		v     uint32
		field string
	}{
		{"log_buf_len zero", 8, 0, "log_buf_len"},
		{"log_buf_len huge", 8, 0xffffffff, "log_buf_len"},
		{"first past end", 12, 600, "log_first_idx"},
		{"next past end", 16, 510, "log_next_idx"},
	} {
		b := newLegacyBuf(512, true)
		b.store(Record{Text: "x"}, 0)
		k := newFakeKernel()
		b.install(k)
		k.put32(fakeSymbols+tc.off, tc.v)
		_, err := Read(k.memory(t))
		var fe *FormatError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &fe) || fe.Field != tc.field || fe.Addr != fakeSymbols+tc.off {
			t.Errorf("%s: err = %v, want %s at %#x", tc.name, err, tc.field, fakeSymbols+tc.off)
		}
	}
	// log_buf points nowhere: the first record cannot be read.
	b := newLegacyBuf(512, true)
	b.store(Record{Text: "x"}, 0)
	k := newFakeKernel()
	b.install(k)
	k.put64(fakeSymbols, 0xffff888100000000)
	log, err := Read(k.memory(t))
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Field != "log_buf" || log == nil || len(log.Records) != 0 || log.Skipped != 1 {
		t.Fatalf("unmapped log_buf: %+v, %v", log, err)
	}
	// A missing structure size is an error.
	k = newFakeKernel()
	b.install(k)
	for i, l := range k.lines {
		k.lines[i] = strings.Replace(l, "SIZE(printk_log)=20", "", 1)
	}
	if _, err := Read(k.memory(t)); err == nil {
		t.Fatal("no SIZE(printk_log): no error")
	}
}
