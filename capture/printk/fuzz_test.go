package printk

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
)

// The fuzzed ring: vmcoreinfoLockless's layout, 32 descriptors, 2 KiB of
// text. The input is tail_id, head_id, the descriptors, the infos and the
// data ring, in that order; shorter inputs are padded with zeros.
const (
	fuzzCountBits = 5
	fuzzSizeBits  = 11
	fuzzDescs     = 16
	fuzzInfos     = fuzzDescs + tDescSize<<fuzzCountBits
	fuzzData      = fuzzInfos + tInfoSize<<fuzzCountBits
	fuzzLen       = fuzzData + 1<<fuzzSizeBits
)

// ringBytes serializes r in the fuzz input format.
func ringBytes(r *testRing) []byte {
	if r.countBits != fuzzCountBits || r.sizeBits != fuzzSizeBits {
		panic("fuzz ring geometry")
	}
	b := binary.LittleEndian.AppendUint64(nil, r.tailID)
	b = binary.LittleEndian.AppendUint64(b, r.headID)
	b = append(b, r.descs...)
	b = append(b, r.infos...)
	return append(b, r.data...)
}

// ringFromBytes is the inverse of ringBytes.
func ringFromBytes(in []byte) *testRing {
	b := make([]byte, fuzzLen)
	copy(b, in)
	r := newTestRing(fuzzCountBits, fuzzSizeBits)
	r.tailID = binary.LittleEndian.Uint64(b[0:])
	r.headID = binary.LittleEndian.Uint64(b[8:])
	copy(r.descs, b[fuzzDescs:fuzzInfos])
	copy(r.infos, b[fuzzInfos:fuzzData])
	copy(r.data, b[fuzzData:])
	return r
}

// FuzzRingBuffer reads rings made by editing valid ones
// (fixture.Patched over their ringBytes): an empty ring, one of 100
// records, one with records cut by a crash, and one of the real records of
// the 6.1 dump (testdata/ring-6.1.fuzz).
func FuzzRingBuffer(f *testing.F) {
	var bases [][]byte
	r := newTestRing(fuzzCountBits, fuzzSizeBits)
	bases = append(bases, ringBytes(r))
	fill(r, 100)
	bases = append(bases, ringBytes(r))
	r.setState(r.headID, descReserved)
	r.setLpos(r.live()[3], failedLpos, failedLpos)
	r.add(recSpec{emptyLine: true, text: ""})
	bases = append(bases, ringBytes(r))
	bases = append(bases, readRingSeed(f))
	for i := range bases {
		f.Add([]byte{byte(i)})
	}
	// A descriptor's id, a text_len, a data block's id.
	f.Add(append([]byte{1}, fixture.Edit(fuzzDescs+5*tDescSize, 0x7f)...))
	f.Add(append([]byte{3}, fixture.Edit(fuzzInfos+7*tInfoSize+16, 0xff, 0xff)...))
	f.Add(append([]byte{3}, fixture.Edit(fuzzData+64, 1, 2, 3, 4, 5, 6, 7, 8)...))
	// One fake kernel serves every input (a worker runs them one at a
	// time): only the ring's contents change.
	k := newFakeKernel()
	descs, infos, data := newTestRing(fuzzCountBits, fuzzSizeBits).install(k)
	m := k.memory(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		ringFromBytes(fixture.Patched(bases, in)).update(k, descs, infos, data)
		log, err := Read(m)
		if log == nil {
			// Only the header's geometry can fail Read, and it is fixed.
			t.Fatal(err)
		}
		if none := len(log.Records) == 0 && log.Skipped > 0; none != (err != nil) {
			t.Fatalf("%d records, %d skipped: %v", len(log.Records), log.Skipped, err)
		}
		if n := len(log.Records) + log.Skipped; n > 1<<fuzzCountBits {
			t.Fatalf("%d records and skipped in a ring of %d", n, 1<<fuzzCountBits)
		}
		total := 0
		for _, rec := range log.Records {
			total += len(rec.Text)
		}
		if total > 1<<fuzzSizeBits {
			t.Fatalf("%d bytes of text from a ring of %d", total, 1<<fuzzSizeBits)
		}
		if err := log.WriteDmesg(io.Discard); err != nil {
			t.Fatal(err)
		}
		log.Panic()
	})
}

// readRingSeed reads the ring cut from the real 6.1 dump.
func readRingSeed(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	in, err := parseCorpusFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestFuzzSeed reads the committed seed, cut from the real 6.1 ring: it
// must be a valid ring, or it would seed nothing useful.
func TestFuzzSeed(t *testing.T) {
	r := ringFromBytes(readRingSeed(t))
	wraps := 0
	for _, id := range r.live() {
		if _, b, n := r.descOf(id); r.wraps(b) != r.wraps(n-1) {
			wraps++
		}
	}
	if wraps == 0 {
		t.Error("no live record of the seed has a wrapped block")
	}
	log := r.read(t)
	if len(log.Records) < 10 || log.Skipped != 0 {
		t.Fatalf("%d records, %d skipped", len(log.Records), log.Skipped)
	}
	var noCaller, panicked bool
	for _, rec := range log.Records {
		panicked = panicked || rec.Text == "Kernel panic - not syncing: sysrq triggered crash"
		noCaller = noCaller || rec.Caller == ""
	}
	if !panicked || noCaller {
		t.Fatalf("seed lacks the panic line, or a caller: %+v", log.Records)
	}
	if reason, _ := log.Panic(); !strings.Contains(reason, "sysrq triggered crash") {
		t.Fatalf("Panic() = %q", reason)
	}
}

// seedPath is the ring of the real 6.1 records, in a fuzz corpus file,
// that FuzzRingBuffer edits.
const seedPath = "testdata/ring-6.1.fuzz"

var writeSeed = flag.Bool("write-seed", false, "rewrite "+seedPath+" from the real 6.1 dump")

// TestWriteFuzzSeed makes the seed: the printk_info bytes and texts of the
// real 6.1 ring up to the start of the call trace, written in order into
// the small fuzz ring (which wraps many times over), so the seed holds
// real records in a valid ring.
func TestWriteFuzzSeed(t *testing.T) {
	if !*writeSeed {
		t.Skip("run with -write-seed to rewrite " + seedPath)
	}
	_, m := openReal(t, fixture.RealDump(t, "6.1").Path)
	rl, pm, rb := realRing(t, m)
	if rl.infoSize != tInfoSize || rl.descSize != tDescSize {
		t.Fatal("the 6.1 layout is not vmcoreinfoLockless")
	}
	small := newTestRing(fuzzCountBits, fuzzSizeBits)
	count := uint64(1) << rb.countBits
	after := 0
	for id := rb.tailID; id != (rb.headID+1)&rb.idMask; id = (id + 1) & rb.idMask {
		rec, ref, st := rb.record(id)
		if st != recOK {
			continue
		}
		if ref.size > 0 {
			rec.Text, _ = rb.text(&ref)
		}
		raw := make([]byte, tInfoSize)
		if err := pm.read(raw, rb.infos+(id&(count-1))*tInfoSize); err != nil {
			t.Fatal(err)
		}
		small.add(recSpec{rawInfo: raw, text: rec.Text})
		// Keep the crash story in the small ring: stop a few lines
		// into the call trace.
		if strings.HasPrefix(rec.Text, "Kernel panic") {
			after = 1
		} else if after > 0 {
			if after++; after > 8 {
				break
			}
		}
	}
	in := ringBytes(small)
	out := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(in)))
	if err := os.MkdirAll(filepath.Dir(seedPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seedPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d live records, %d bytes", len(small.live()), len(out))
}

// parseCorpusFile reads a one-value "go test fuzz v1" file of []byte.
func parseCorpusFile(b []byte) ([]byte, error) {
	s, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
	if !ok {
		return nil, fmt.Errorf("not a []byte corpus file")
	}
	s, ok = strings.CutSuffix(strings.TrimSpace(s), ")")
	if !ok {
		return nil, fmt.Errorf("not a []byte corpus file")
	}
	v, err := strconv.Unquote(s)
	return []byte(v), err
}

// FuzzLogBuf reads legacy log_bufs of 1 KiB (Linux 3.5-5.9, x86 layout
// with caller_id) made by editing an empty and a full one
// (fixture.Patched): log_first_idx and log_next_idx in the first four
// bytes, the buffer after them.
func FuzzLogBuf(f *testing.F) {
	seed := func(b *legacyBuf) []byte {
		in := binary.LittleEndian.AppendUint16(nil, uint16(b.first))
		in = binary.LittleEndian.AppendUint16(in, uint16(b.next))
		return append(in, b.buf...)
	}
	b := newLegacyBuf(1024, true)
	bases := [][]byte{seed(b)}
	for i := 0; i < 60; i++ {
		b.store(Record{Time: 1e6 * time.Duration(i), Text: fmt.Sprintf("line %d%s", i, strings.Repeat("-", i%17)),
			Subsystem: "pci", Device: "+pci:0000:00:0" + strconv.Itoa(i%8) + ".0"}, uint32(i))
	}
	bases = append(bases, seed(b))
	f.Add([]byte{0})
	f.Add([]byte{1})
	f.Add(append([]byte{1}, fixture.Edit(4+8, 0xff, 0xff)...))
	// One fake kernel serves every input.
	k := newFakeKernel()
	addr := newLegacyBuf(1024, true).install(k)
	m := k.memory(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		in = fixture.Patched(bases, in)
		b := newLegacyBuf(1024, true)
		if len(in) >= 4 {
			b.first = uint64(binary.LittleEndian.Uint16(in[0:]))
			b.next = uint64(binary.LittleEndian.Uint16(in[2:]))
			copy(b.buf, in[4:])
		}
		b.update(k, addr)
		log, err := Read(m)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if n := len(log.Records) + log.Skipped; n > 1024/20+1 {
			t.Fatalf("%d records and skipped in a 1 KiB buffer", n)
		}
		if err := log.WriteDmesg(io.Discard); err != nil {
			t.Fatal(err)
		}
		log.Panic()
	})
}
