package printk

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fill adds n records of varying length and returns their specs by id.
func fill(r *testRing, n int) map[uint64]recSpec {
	specs := make(map[uint64]recSpec)
	for i := 0; i < n; i++ {
		s := recSpec{
			ts:     uint64(i) * 1234567,
			level:  i % 8,
			caller: uint32(i % 50),
			text:   fmt.Sprintf("record %d %s", i, strings.Repeat("x", (i*37)%90)),
		}
		specs[r.add(s)] = s
	}
	return specs
}

// checkLive compares the log with the records the ring says are live.
func checkLive(t *testing.T, r *testRing, specs map[uint64]recSpec, log *Log) {
	t.Helper()
	live := r.live()
	if len(log.Records) != len(live) {
		t.Fatalf("%d records, want %d", len(log.Records), len(live))
	}
	for i, id := range live {
		got, s := log.Records[i], specs[id]
		if got.Text != s.text || got.Time != time.Duration(s.ts) || got.Level != s.level ||
			got.Seq != r.seqOf(id) || got.Caller != callerString(s.caller) {
			t.Fatalf("record %d (id %#x):\n got %+v\nwant %+v seq %d", i, id, got, s, r.seqOf(id))
		}
	}
	for i := 1; i < len(log.Records); i++ {
		if log.Records[i].Seq <= log.Records[i-1].Seq {
			t.Fatalf("records out of order: seq %d after %d", log.Records[i].Seq, log.Records[i-1].Seq)
		}
	}
}

func TestEmptyRing(t *testing.T) {
	log := newTestRing(5, 10).read(t)
	if len(log.Records) != 0 || log.Skipped != 0 || log.Kind != KindLockless {
		t.Fatalf("%+v", log)
	}
	var b bytes.Buffer
	if err := log.WriteDmesg(&b); err != nil || b.Len() != 0 {
		t.Fatalf("WriteDmesg: %q, %v", b.String(), err)
	}
	if reason, ctx := log.Panic(); reason != "" || ctx != nil {
		t.Fatalf("Panic() = %q, %v", reason, ctx)
	}
}

func TestRecordFields(t *testing.T) {
	r := newTestRing(5, 11)
	want := []Record{
		{Time: 0, Level: 5, Facility: 0, Flags: LogNewline, Caller: "T0", Text: "Linux version 6.1.0"},
		{Time: 1050921279, Level: 6, Flags: LogNewline, Caller: "T1",
			Text:      "acpi PNP0A03:00: _OSC: OS supports [ASPM ClockPM Segments MSI HPX-Type3]",
			Subsystem: "acpi", Device: "+acpi:PNP0A03:00"},
		{Time: 1461609464, Level: 6, Flags: LogNewline, Caller: "T1", Text: "nvme nvme0: pci function 0000:00:02.0",
			Subsystem: "nvme", Device: "c247:0"},
		{Time: 2000000000, Level: 4, Flags: 0, Caller: "C1", Text: "part one "},
		{Time: 2000000001, Level: 4, Flags: LogCont | LogNewline, Caller: "C1", Text: "and its continuation"},
		{Time: 3000000000, Level: 6, Facility: 1, Caller: "T4194304", Text: "user: from /dev/kmsg"},
		{Time: 4000000000, Level: 0, Caller: "C2147483647", Text: "a\nmulti-line\nrecord"},
		{Time: 5000000000, Level: 6, Caller: "T7", Text: "", Subsystem: "x", noData: true},
		{Time: 6000000000, Level: 7, Caller: "T8", Text: "subsystem name at full length",
			Subsystem: "0123456789abcdef", Device: strings.Repeat("d", 48)},
	}
	for _, rec := range want {
		var caller uint32
		if c, ok := strings.CutPrefix(rec.Caller, "C"); ok {
			fmt.Sscan(c, &caller)
			caller |= 0x80000000
		} else {
			fmt.Sscan(rec.Caller[1:], &caller)
		}
		r.add(recSpec{ts: uint64(rec.Time), level: rec.Level, facility: rec.Facility, flags: rec.Flags,
			caller: caller, text: rec.Text, subsystem: rec.Subsystem, device: rec.Device, emptyLine: rec.noData})
	}
	for i := range want {
		want[i].Seq = uint64(i)
	}
	log := r.read(t)
	if log.Skipped != 0 || !reflect.DeepEqual(log.Records, want) {
		t.Fatalf("skipped %d\n got %+v\nwant %+v", log.Skipped, log.Records, want)
	}
	var b bytes.Buffer
	if err := log.WriteDmesg(&b); err != nil {
		t.Fatal(err)
	}
	const dmesg = `[    0.000000] Linux version 6.1.0
[    1.050921] acpi PNP0A03:00: _OSC: OS supports [ASPM ClockPM Segments MSI HPX-Type3]
[    1.461609] nvme nvme0: pci function 0000:00:02.0
[    2.000000] part one 
[    2.000000] and its continuation
[    3.000000] user: from /dev/kmsg
[    4.000000] a
               multi-line
               record
[    6.000000] subsystem name at full length
`
	if b.String() != dmesg {
		t.Fatalf("WriteDmesg:\n%s\nwant\n%s", b.String(), dmesg)
	}
}

// TestWrappedRing fills small rings many times over: descriptors and data
// wrap, blocks that do not fit at the end go to the start, the oldest
// records are recycled.
func TestWrappedRing(t *testing.T) {
	for _, tc := range []struct {
		countBits, sizeBits uint
		n                   int
		exactFit            bool
	}{
		{4, 9, 3, false},
		{4, 9, 40, false},
		{4, 9, 41, true},
		{5, 10, 200, false},
		{5, 10, 200, true},
		{3, 12, 100, false}, // the descriptor ring is the limit
		{6, 8, 100, false},  // the data ring is the limit
	} {
		t.Run(fmt.Sprintf("%d-%d-%d-%v", tc.countBits, tc.sizeBits, tc.n, tc.exactFit), func(t *testing.T) {
			r := newTestRing(tc.countBits, tc.sizeBits)
			r.exactFit = tc.exactFit
			specs := fill(r, tc.n)
			if tc.n > 20 {
				// Go on until the newest record's block is at the start.
				for i := 0; i < 1000 && !r.wrapped[r.headID]; i++ {
					s := recSpec{ts: uint64(1e12 + i), text: fmt.Sprintf("more %d %s", i, strings.Repeat("y", i%70))}
					specs[r.add(s)] = s
				}
			}
			log := r.read(t)
			if log.Skipped != 0 {
				t.Errorf("skipped %d", log.Skipped)
			}
			checkLive(t, r, specs, log)
			if tc.n > 20 {
				var wrapped int
				for _, id := range r.live() {
					if r.wrapped[id] {
						wrapped++
					}
				}
				if wrapped == 0 {
					t.Errorf("no live record has a wrapped block")
				}
				if len(log.Records) == tc.n {
					t.Errorf("nothing recycled")
				}
			}
		})
	}
}

// TestExactFit builds the block that ends exactly at the end of the ring,
// both ways the kernel has stored it.
func TestExactFit(t *testing.T) {
	for _, exact := range []bool{false, true} {
		r := newTestRing(4, 8) // 256 bytes
		r.exactFit = exact
		r.add(recSpec{text: strings.Repeat("a", 200-8)})   // 200 bytes
		b := r.add(recSpec{text: strings.Repeat("b", 48)}) // 56 bytes: ends at 256
		_, begin, next := r.descOf(b)
		log := r.read(t)
		if len(log.Records) != 2 && !(len(log.Records) == 1 && !exact) {
			t.Fatalf("exact=%v: %d records", exact, len(log.Records))
		}
		last := log.Records[len(log.Records)-1]
		if last.Text != strings.Repeat("b", 48) || log.Skipped != 0 {
			t.Fatalf("exact=%v: begin %#x next %#x: last record %q, skipped %d", exact, begin, next, last.Text, log.Skipped)
		}
		if r.wrapped[b] == exact {
			t.Fatalf("exact=%v: wrapped %v", exact, r.wrapped[b])
		}
	}
}

// TestCrashStates cuts records the way a crash in the middle of printk
// leaves them, or corrupts them: each is skipped and counted, the others
// are read.
func TestCrashStates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(r *testRing, ids []uint64)
		skipped int
		gone    int // records missing from the output
	}{
		{"intact", func(r *testRing, ids []uint64) {}, 0, 0},
		{"reserved head", func(r *testRing, ids []uint64) {
			r.setState(ids[len(ids)-1], descReserved)
		}, 1, 1},
		{"committed head", func(r *testRing, ids []uint64) {
			r.setState(ids[len(ids)-1], descCommitted)
		}, 0, 0},
		{"reusable", func(r *testRing, ids []uint64) {
			r.setState(ids[2], descReusable)
		}, 0, 1},
		{"id miss", func(r *testRing, ids []uint64) {
			r.setDesc(r.idx(ids[3]), sv(ids[3]-r.count(), descFinalized), 0, 0)
		}, 1, 1},
		{"failed lpos", func(r *testRing, ids []uint64) {
			r.setLpos(ids[1], failedLpos, failedLpos)
		}, 1, 1},
		{"odd begin", func(r *testRing, ids []uint64) {
			_, b, n := r.descOf(ids[1])
			r.setLpos(ids[1], b|1, n)
		}, 1, 1},
		{"unaligned", func(r *testRing, ids []uint64) {
			_, b, n := r.descOf(ids[1])
			r.setLpos(ids[1], b+4, n)
		}, 1, 1},
		{"next before begin", func(r *testRing, ids []uint64) {
			_, b, n := r.descOf(ids[1])
			r.setLpos(ids[1], n, b)
		}, 1, 1},
		{"empty block", func(r *testRing, ids []uint64) {
			_, b, _ := r.descOf(ids[1])
			r.setLpos(ids[1], b, b)
		}, 1, 1},
		{"two wraps apart", func(r *testRing, ids []uint64) {
			_, b, n := r.descOf(ids[1])
			r.setLpos(ids[1], b, n+2*r.size())
		}, 1, 1},
		{"garbage lpos", func(r *testRing, ids []uint64) {
			r.setLpos(ids[1], 0xdeadbeefdeadbee8, 0x0123456789abcdf0)
		}, 1, 1},
		{"block of another id", func(r *testRing, ids []uint64) {
			_, b, _ := r.descOf(ids[2])
			r.putID(b, 12345)
		}, 1, 1},
		{"seq of another slot", func(r *testRing, ids []uint64) {
			r.setSeq(r.idx(ids[2]), r.seqOf(ids[2])+1)
		}, 1, 1},
		{"text_len past the block", func(r *testRing, ids []uint64) {
			r.setTextLen(ids[1], 60000)
		}, 0, 0},
		{"half-written text", func(r *testRing, ids []uint64) {
			// A writer reserved a block and died before commit.
			id := r.add(recSpec{text: "never finished"})
			r.setState(id, descReserved)
		}, 1, 0},
		{"head reserved, descriptor untouched", func(r *testRing, ids []uint64) {
			// desc_reserve moved head_id and died before claiming the
			// descriptor: it still holds the previous wrap's id.
			r.headID = (r.headID + 1) & tIDMask
		}, 1, 0},
		{"tail beyond head", func(r *testRing, ids []uint64) {
			r.tailID = (r.headID + 5) & tIDMask
		}, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRing(4, 10)
			specs := fill(r, 8)
			ids := r.live()
			tc.damage(r, ids)
			log := r.read(t)
			if tc.skipped >= 0 && log.Skipped != tc.skipped {
				t.Errorf("skipped %d, want %d", log.Skipped, tc.skipped)
			}
			if tc.gone >= 0 && len(log.Records) != len(ids)-tc.gone {
				t.Errorf("%d records, want %d", len(log.Records), len(ids)-tc.gone)
			}
			if len(log.Records)+log.Skipped > int(r.count()) {
				t.Errorf("%d records + %d skipped in a ring of %d", len(log.Records), log.Skipped, r.count())
			}
			for _, rec := range log.Records {
				id := ids[0] + rec.Seq - r.seqOf(ids[0])
				s, ok := specs[id&tIDMask]
				if !ok {
					t.Errorf("unexpected record %+v", rec)
					continue
				}
				if rec.Text != s.text && !strings.HasPrefix(rec.Text, s.text) {
					t.Errorf("record %d: %q, want %q", rec.Seq, rec.Text, s.text)
				}
			}
		})
	}
}

// TestTruncatedText: a text_len beyond the block is cut at the block's
// end, as makedumpfile does, and includes the block's padding.
func TestTruncatedText(t *testing.T) {
	r := newTestRing(4, 10)
	id := r.add(recSpec{text: "12345"}) // a 16-byte block: 8 for text and padding
	r.setTextLen(id, 100)
	log := r.read(t)
	if len(log.Records) != 1 || log.Records[0].Text != "12345\x00\x00\x00" {
		t.Fatalf("%+v", log.Records)
	}
}

func TestBadRingHeader(t *testing.T) {
	const prb = fakeSymbols + 0x100
	for _, tc := range []struct {
		name  string
		edit  func(k *fakeKernel)
		field string // of the *FormatError; "" for another error
		addr  uint64
	}{
		{"count_bits", func(k *fakeKernel) { k.put32(prb, 40) }, "prb_desc_ring.count_bits", prb},
		{"count_bits 27", func(k *fakeKernel) { k.put32(prb, 27); k.put32(prb+48, 31) }, "prb_desc_ring.count_bits", prb},
		{"size_bits", func(k *fakeKernel) { k.put32(prb+48, 32) }, "prb_data_ring.size_bits", prb + 48},
		{"size_bits 2", func(k *fakeKernel) { k.put32(prb+48, 2) }, "prb_data_ring.size_bits", prb + 48},
		{"more descs than bytes", func(k *fakeKernel) { k.put32(prb, 11) }, "prb_desc_ring.count_bits", prb},
		{"prb unmapped", func(k *fakeKernel) { k.put64(fakeSymbols, 0xffff888100000000) }, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRing(4, 10)
			fill(r, 5)
			k := newFakeKernel()
			r.install(k)
			tc.edit(k)
			_, err := Read(k.memory(t))
			var fe *FormatError
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.field == "":
				if errors.As(err, &fe) {
					t.Fatalf("err = %v, want no *FormatError", err)
				}
			case !errors.Is(err, ErrCorrupt) || !errors.As(err, &fe) || fe.Field != tc.field || fe.Addr != tc.addr:
				t.Fatalf("err = %v, want %s at %#x", err, tc.field, tc.addr)
			}
		})
	}
}

// TestUnmappedArrays: descriptors, infos or data the dump lacks make every
// record skipped: the log is unreadable, an error that still counts them.
func TestUnmappedArrays(t *testing.T) {
	// The descriptor of the ring's bootstrap, reusable, is the tail and
	// is skipped too when descriptors cannot be read.
	for _, tc := range []struct {
		off     uint64
		skipped int
	}{{8, 6}, {16, 5}, {56, 5}} {
		off := tc.off
		r := newTestRing(4, 10)
		fill(r, 5)
		k := newFakeKernel()
		r.install(k)
		k.put64(fakeSymbols+0x100+off, 0xffff888100000000)
		log, err := Read(k.memory(t))
		var fe *FormatError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &fe) || fe.Field != "printk_ringbuffer" || fe.Addr != fakeSymbols+0x100 {
			t.Errorf("pointer at %d unmapped: error %v", off, err)
		}
		if log == nil || len(log.Records) != 0 || log.Skipped != tc.skipped {
			t.Errorf("pointer at %d unmapped: %+v", off, log)
		}
	}
}

func TestBadLayout(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{"OFFSET(printk_info.text_len)=16", "OFFSET(printk_info.text_len)=87"},
		{"SIZE(printk_info)=88", "SIZE(printk_info)=100000"},
		{"SIZE(prb_data_blk_lpos)=16", "SIZE(prb_data_blk_lpos)=12"},
		{"OFFSET(prb_desc.state_var)=0\n", ""},
		{"OFFSET(atomic_long_t.counter)=0", "OFFSET(atomic_long_t.counter)=8"},
	} {
		r := newTestRing(4, 10)
		k := newFakeKernel()
		r.install(k)
		for i, l := range k.lines {
			k.lines[i] = strings.Replace(l, tc.from, tc.to, 1)
		}
		if _, err := Read(k.memory(t)); err == nil {
			t.Errorf("%q -> %q: no error", tc.from, tc.to)
		}
	}
}

func TestNoLog(t *testing.T) {
	k := newFakeKernel()
	k.addInfo("OSRELEASE=6.1.0")
	if _, err := Read(k.memory(t)); !errors.Is(err, ErrNoLog) {
		t.Fatalf("err = %v", err)
	}
	k.addInfo("SYMBOL(log_buf)=ffffffff82000000\nSYMBOL(log_end)=ffffffff82000010")
	if _, err := Read(k.memory(t)); !errors.Is(err, ErrNoLog) {
		t.Fatalf("plain-text log_buf: err = %v", err)
	}
}

// TestOptionalFields: without caller_id and dev_info in VMCOREINFO the
// records still read, without those fields.
func TestOptionalFields(t *testing.T) {
	r := newTestRing(4, 10)
	r.add(recSpec{text: "hello", caller: 5, subsystem: "pci", device: "+pci:0", level: 3})
	k := newFakeKernel()
	r.install(k)
	for i, l := range k.lines {
		l = strings.Replace(l, "OFFSET(printk_info.caller_id)=20\n", "", 1)
		k.lines[i] = strings.Replace(l, "OFFSET(printk_info.dev_info)=24\n", "", 1)
	}
	log, err := Read(k.memory(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{Text: "hello", Level: 3}}
	if !reflect.DeepEqual(log.Records, want) {
		t.Fatalf("%+v", log.Records)
	}
}

// TestHostileDevInfo: an absurd dev_info entry drops the field it
// describes and nothing else.
func TestHostileDevInfo(t *testing.T) {
	for _, edit := range []struct{ from, to string }{
		{"OFFSET(printk_info.dev_info)=24", "OFFSET(printk_info.dev_info)=9223372036854775807"},
		{"OFFSET(printk_info.dev_info)=24", "OFFSET(printk_info.dev_info)=-24"},
		{"OFFSET(dev_printk_info.subsystem)=0", "OFFSET(dev_printk_info.subsystem)=9223372036854775800"},
		{"LENGTH(printk_info_device)=48", "LENGTH(printk_info_device)=9223372036854775800"},
		{"LENGTH(printk_info_device)=48", "LENGTH(printk_info_device)=49"},
		{"SIZE(dev_printk_info)=64", "SIZE(dev_printk_info)=65"},
	} {
		r := newTestRing(4, 10)
		r.add(recSpec{text: "hello", subsystem: "pci", device: "+pci:0"})
		k := newFakeKernel()
		r.install(k)
		for i, l := range k.lines {
			k.lines[i] = strings.Replace(l, edit.from, edit.to, 1)
		}
		log, err := Read(k.memory(t))
		if err != nil {
			t.Fatalf("%s: %v", edit.to, err)
		}
		if len(log.Records) != 1 || log.Records[0].Text != "hello" ||
			log.Records[0].Subsystem == "pci" && log.Records[0].Device == "+pci:0" {
			t.Errorf("%s: %+v", edit.to, log.Records)
		}
	}
}
