package printk

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readBounded reads the log of k and reports how long it took and how
// many bytes it allocated.
func readBounded(t *testing.T, k *fakeKernel) (log *Log, took time.Duration, alloc uint64, err error) {
	t.Helper()
	m := k.memory(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	log, err = Read(m)
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	return log, took, after.TotalAlloc - before.TotalAlloc, err
}

// TestOverlappingBlocks: 32768 records whose data blocks of 64 KiB start 8
// bytes apart, each beginning with its record's id, in a ring that claims
// 2 GiB of text of which 512 KiB are in the dump. Read naively, they are
// 2 GiB of text. Each byte of the ring goes to one record at most, and a
// record's text to 1 KiB: a few records, a few KiB.
func TestOverlappingBlocks(t *testing.T) {
	const countBits, n = 15, 1 << 15
	r := newTestRing(countBits, 19)
	le := binary.LittleEndian
	count := r.count()
	for i := uint64(0); i < n; i++ {
		id := count + i
		r.setDesc(i, sv(id, descFinalized), 8*i, 8*i+1<<16)
		clear(r.info(i))
		r.setSeq(i, i)
		le.PutUint16(r.info(i)[16:], 0xffff)
		le.PutUint64(r.data[8*i:], id)
	}
	r.tailID, r.headID = count, count+n-1
	k := newFakeKernel()
	r.install(k)
	k.put32(fakeSymbols+0x100+48, 31) // size_bits: a 2 GiB ring
	log, took, alloc, err := readBounded(t, k)
	if err != nil {
		t.Fatal(err)
	}
	text := 0
	for _, rec := range log.Records {
		text += len(rec.Text)
		if len(rec.Text) > MaxRecordText {
			t.Errorf("record %d: %d bytes of text", rec.Seq, len(rec.Text))
		}
	}
	// Blocks at 0, 64 KiB, 128 KiB and 192 KiB do not overlap.
	if len(log.Records) != 4 || log.Skipped != n-4 || text > 512<<10 {
		t.Errorf("%d records, %d skipped, %d bytes of text", len(log.Records), log.Skipped, text)
	}
	if alloc > 64<<20 || took > 10*time.Second {
		t.Errorf("read in %v, %d bytes allocated", took, alloc)
	}
	var out countWriter
	if err := log.WriteDmesg(&out); err != nil || out > 64<<10 {
		t.Errorf("dmesg of %d bytes, %v", out, err)
	}
	t.Logf("%v, %d KiB allocated, %d records, %d skipped, dmesg %d bytes", took, alloc>>10, len(log.Records), log.Skipped, out)
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// TestHugeRingHeader: a ring whose ids from tail to head span 2^31, at the
// kernel's largest geometry (2^26 descriptors, 2^31 bytes), with 4 KiB of
// descriptors in the dump: the reader visits at most maxSteps
// descriptors, counts the rest dropped, and says the log is unreadable.
// Past the kernel's geometry, the header is refused outright.
func TestHugeRingHeader(t *testing.T) {
	const prb = fakeSymbols + 0x100
	r := newTestRing(4, 10)
	fill(r, 5)
	k := newFakeKernel()
	r.install(k)
	k.put32(prb, 26)
	k.put32(prb+48, 31)
	k.put64(prb+24, 1<<31+5) // head_id
	k.put64(prb+32, 5)       // tail_id
	log, took, alloc, err := readBounded(t, k)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Field != "printk_ringbuffer" || log == nil {
		t.Fatalf("err = %v", err)
	}
	if log.Skipped+log.Dropped != 1<<26 || uint64(log.Skipped) > maxSteps {
		t.Errorf("%d skipped, %d dropped", log.Skipped, log.Dropped)
	}
	if took > 20*time.Second || alloc > 512<<20 {
		t.Errorf("read in %v, %d bytes allocated", took, alloc)
	}
	t.Logf("%v, %d MiB allocated: %v", took, alloc>>20, err)

	// count_bits and size_bits 31: refused before any descriptor is read.
	k.put32(prb, 31)
	if _, took, _, err := readBounded(t, k); !errors.As(err, &fe) || fe.Field != "prb_desc_ring.count_bits" || took > time.Second {
		t.Fatalf("count_bits 31: %v in %v", err, took)
	}
}

// TestLogBounds: with the memory bound lowered, the newest records are
// kept and the older counted dropped, in both kinds of log.
func TestLogBounds(t *testing.T) {
	defer func(m int, s uint64) { logMemory, maxSteps = m, s }(logMemory, maxSteps)
	logMemory = 10*recordCost + 40

	r := newTestRing(6, 12)
	for i := range 30 {
		r.add(recSpec{text: "message " + string(rune('A'+i))})
	}
	log := r.read(t)
	if len(log.Records) != 4 || log.Records[3].Text != "message "+string(rune('A'+29)) || log.Dropped == 0 {
		t.Errorf("lockless: %d records, last %q, %d dropped", len(log.Records), log.Records[len(log.Records)-1].Text, log.Dropped)
	}

	b := newLegacyBuf(4096, true)
	for i := range 30 {
		b.store(Record{Text: "message " + string(rune('A'+i))}, 0)
	}
	log = b.read(t)
	if n := len(log.Records); n == 0 || n > 10 || log.Records[n-1].Text != "message "+string(rune('A'+29)) || log.Dropped != 30-n {
		t.Errorf("legacy: %d records, %d dropped", n, log.Dropped)
	} else if log.Records[n-1].Seq != 29 {
		t.Errorf("legacy: last record's seq %d, want 29", log.Records[n-1].Seq)
	}

	// The walk stops after maxSteps records.
	logMemory = MaxLogMemory
	maxSteps = 7
	log = b.read(t)
	if len(log.Records) != 7 || log.Dropped != 1 {
		t.Errorf("legacy, 7 steps: %d records, %d dropped", len(log.Records), log.Dropped)
	}
	log = r.read(t)
	if len(log.Records) != 7 || log.Records[6].Text != "message "+string(rune('A'+29)) {
		t.Errorf("lockless, 7 steps: %d records", len(log.Records))
	}
}

// TestLongRecordText: text_len beyond what any kernel stores is cut at
// MaxRecordText, in both kinds of log.
func TestLongRecordText(t *testing.T) {
	long := strings.Repeat("x", 3000)
	r := newTestRing(4, 14)
	r.add(recSpec{text: long})
	if log := r.read(t); len(log.Records) != 1 || len(log.Records[0].Text) != MaxRecordText {
		t.Errorf("lockless: %+v", log)
	}
	b := newLegacyBuf(8192, true)
	b.store(Record{Text: long, Subsystem: "pci"}, 0)
	b.store(Record{Text: "after"}, 0)
	log := b.read(t)
	if len(log.Records) != 2 || len(log.Records[0].Text) != MaxRecordText || log.Records[0].Subsystem != "pci" || log.Records[1].Text != "after" {
		t.Errorf("legacy: %d records", len(log.Records))
	}
}

// TestAllRecordsDamaged: a ring whose every record fails its checks is an
// error, that counts them.
func TestAllRecordsDamaged(t *testing.T) {
	r := newTestRing(5, 12)
	fill(r, 20)
	for _, id := range r.live() {
		_, begin, _ := r.descOf(id)
		r.putID(begin, id^0x5a5a) // the block no longer names its record
	}
	k := newFakeKernel()
	r.install(k)
	log, err := Read(k.memory(t))
	var fe *FormatError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &fe) || log == nil || len(log.Records) != 0 || log.Skipped == 0 {
		t.Fatalf("%+v, %v", log, err)
	}
	if !strings.Contains(err.Error(), "none of the log's") {
		t.Errorf("message %q", err)
	}
}
