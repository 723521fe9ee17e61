package printk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// maxLogBufLen is the kernel's LOG_BUF_LEN_MAX.
const maxLogBufLen = 1 << 31

// Bounds of the legacy walk, which cannot skip ahead: each record's len
// leads to the next.
const (
	// maxDict bounds a record's dictionary: the kernel's are the
	// SUBSYSTEM= and DEVICE= lines of dev_printk, under 128 bytes.
	maxDict = 1024
	// maxLegacyWalk bounds the bytes of log_buf walked: eight times the
	// largest buffer a kernel configuration builds (CONFIG_LOG_BUF_SHIFT
	// 25); a larger log_buf_len= is read up to there.
	maxLegacyWalk = 256 << 20
	// legacyWindow is how much of log_buf is read at once.
	legacyWindow = 64 << 10
)

// legacyLayout holds VMCOREINFO's description of struct printk_log.
type legacyLayout struct {
	hdr                           uint64 // SIZE(printk_log)
	tsNsec, len, textLen, dictLen uint64
	callerID                      uint64
	hasCaller, hasLevel           bool
}

func newLegacyLayout(info *vmcoreinfo.Info) (*legacyLayout, error) {
	// The structure was struct log until Linux 3.11.
	name := "printk_log"
	if _, ok := info.Size(name); !ok {
		if _, ok := info.Size("log"); ok {
			name = "log"
		}
	}
	l := &layout{info: info}
	ll := &legacyLayout{}
	ll.hdr = l.size(name)
	ll.tsNsec = l.offset(name+".ts_nsec", 8, ll.hdr)
	ll.len = l.offset(name+".len", 2, ll.hdr)
	ll.textLen = l.offset(name+".text_len", 2, ll.hdr)
	ll.dictLen = l.offset(name+".dict_len", 2, ll.hdr)
	if l.err != nil {
		return nil, l.err
	}
	ll.callerID, ll.hasCaller = l.optOffset(name+".caller_id", 4, ll.hdr)
	// `u8 facility; u8 flags:5; u8 level:3;` follow u16 dict_len.
	ll.hasLevel = ll.dictLen+4 <= ll.hdr && (!ll.hasCaller || ll.dictLen+4 <= ll.callerID)
	return ll, nil
}

func readLegacy(r virtReader, info *vmcoreinfo.Info, bo binary.ByteOrder, word uint64) (*Log, error) {
	ll, err := newLegacyLayout(info)
	if err != nil {
		return nil, err
	}
	m := &mem{r: r, bo: bo}
	sym := func(name string) (uint64, error) {
		v, ok := info.Symbol(name)
		if !ok {
			return 0, fmt.Errorf("%w: SYMBOL(%s) missing", ErrNoLog, name)
		}
		return v, nil
	}
	var addrs [4]uint64
	for i, name := range []string{"log_buf", "log_buf_len", "log_first_idx", "log_next_idx"} {
		if addrs[i], err = sym(name); err != nil {
			return nil, err
		}
	}
	// char *log_buf; u32 log_buf_len; u32 log_first_idx, log_next_idx.
	buf, err := m.word(addrs[0], word)
	if err != nil {
		return nil, fmt.Errorf("printk: read log_buf: %w", err)
	}
	var v [3]uint32
	for i := range v {
		if v[i], err = m.u32(addrs[i+1]); err != nil {
			return nil, fmt.Errorf("printk: read log_buf_len and indexes: %w", err)
		}
	}
	lb := &logBuf{m: m, l: ll, buf: buf, size: uint64(v[0]), first: uint64(v[1]), next: uint64(v[2])}
	switch {
	case lb.size < ll.hdr || lb.size > maxLogBufLen:
		return nil, corrupt(addrs[1], "log_buf_len", "a log buffer of %d bytes (the kernel's hold a record header, %d bytes, to 2 GiB)", lb.size, ll.hdr)
	case lb.first > lb.size-ll.hdr:
		return nil, corrupt(addrs[2], "log_first_idx", "first record at %d in a buffer of %d bytes", lb.first, lb.size)
	case lb.next > lb.size-ll.hdr:
		return nil, corrupt(addrs[3], "log_next_idx", "next record at %d in a buffer of %d bytes", lb.next, lb.size)
	}
	log := lb.readAll()
	return log, unreadable(log, buf, "log_buf")
}

// window reads log_buf in windows of legacyWindow bytes, so that walking
// it costs one read per window, not per record.
type window struct {
	m           *mem
	buf         uint64 // log_buf
	size        uint64 // log_buf_len
	start, n    uint64 // the window: log_buf[start:start+n]
	data        []byte
	scratch     []byte
	readFailed  bool
	failedStart uint64
}

// at returns log_buf[idx:idx+n] (idx+n ≤ size), valid until the next call.
func (w *window) at(idx, n uint64) ([]byte, error) {
	if idx >= w.start && idx+n <= w.start+w.n {
		return w.data[idx-w.start : idx-w.start+n], nil
	}
	start := idx &^ 0xfff
	end := min(start+legacyWindow, w.size)
	if idx+n <= end && !(w.readFailed && w.failedStart == start) {
		if w.data == nil {
			w.data = make([]byte, legacyWindow)
		}
		if err := w.m.read(w.data[:end-start], w.buf+start); err == nil {
			w.start, w.n = start, end-start
			return w.data[idx-start : idx-start+n], nil
		}
		// Part of the window is not in the dump: read what is asked
		// alone.
		w.readFailed, w.failedStart = true, start
	}
	if uint64(cap(w.scratch)) < n {
		w.scratch = make([]byte, n)
	}
	b := w.scratch[:n]
	if err := w.m.read(b, w.buf+idx); err != nil {
		return nil, err
	}
	return b, nil
}

// logBuf is the legacy log buffer read from the dump.
type logBuf struct {
	m                 *mem
	l                 *legacyLayout
	buf               uint64 // log_buf
	size, first, next uint64
}

// readAll follows the records from log_first_idx to log_next_idx. Each
// record's len leads to the next; a record with len 0 marks the end of
// the used part of the buffer, where the writer went back to the start.
// It keeps the newest records when there are more than MaxLogMemory
// holds, and walks at most maxSteps records and maxLegacyWalk bytes.
func (lb *logBuf) readAll() *Log {
	log := &Log{Kind: KindLegacy}
	l := lb.l
	w := &window{m: lb.m, buf: lb.buf, size: lb.size}
	// The walk may go back to the start once, and only if it began after
	// the end; between, idx only grows: it ends within a bounded number
	// of steps even on a corrupt buffer.
	mayWrap := lb.first > lb.next
	idx := lb.first
	maxRecs := logMemory / recordCost
	// The newest records' indexes, a circular buffer once full.
	var kept []uint64
	oldest := 0
	var seq0 uint64 // sequence number of kept's oldest
	var steps, walked uint64
	for idx != lb.next {
		if steps == maxSteps || walked > maxLegacyWalk {
			log.Dropped++ // at least this one
			break
		}
		steps++
		hdr, err := w.at(idx, l.hdr)
		if idx+l.hdr > lb.size || err != nil {
			log.Skipped++
			break
		}
		n := uint64(lb.m.bo.Uint16(hdr[l.len:]))
		if n == 0 {
			if !mayWrap {
				log.Skipped++
				break
			}
			mayWrap, idx = false, 0
			continue
		}
		end := idx + n
		textLen := uint64(lb.m.bo.Uint16(hdr[l.textLen:]))
		dictLen := uint64(lb.m.bo.Uint16(hdr[l.dictLen:]))
		if n < l.hdr || end > lb.size || (!mayWrap && end > lb.next) || l.hdr+textLen+dictLen > n {
			log.Skipped++
			break
		}
		if len(kept) < maxRecs {
			kept = append(kept, idx)
		} else {
			kept[oldest] = idx
			oldest = (oldest + 1) % len(kept)
			seq0++
			log.Dropped++
		}
		walked += n
		idx = end
	}
	// Read the kept records, newest first within the memory bound.
	recs := make([]Record, 0, len(kept))
	budget := logMemory - len(kept)*recordCost
	for i := len(kept) - 1; i >= 0; i-- {
		at := kept[(oldest+i)%len(kept)]
		rec, ok := lb.record(w, at)
		if !ok {
			log.Skipped++
			continue
		}
		if len(rec.Text) > budget {
			log.Dropped += i + 1
			break
		}
		budget -= len(rec.Text)
		rec.Seq = seq0 + uint64(i)
		recs = append(recs, rec)
	}
	slices.Reverse(recs)
	log.Records = recs
	return log
}

// record reads the record at idx, whose header readAll checked.
func (lb *logBuf) record(w *window, idx uint64) (Record, bool) {
	l, bo := lb.l, lb.m.bo
	hdr, err := w.at(idx, l.hdr)
	if err != nil {
		return Record{}, false
	}
	rec := Record{Time: time.Duration(bo.Uint64(hdr[l.tsNsec:]))}
	textLen := uint64(bo.Uint16(hdr[l.textLen:]))
	dictLen := uint64(bo.Uint16(hdr[l.dictLen:]))
	if l.hasLevel {
		rec.Facility = int(hdr[l.dictLen+2])
		rec.Level, rec.Flags = levelFlags(hdr[l.dictLen+3], bo)
	}
	if l.hasCaller {
		rec.Caller = callerString(bo.Uint32(hdr[l.callerID:]))
	}
	text, err := w.at(idx+l.hdr, min(textLen, MaxRecordText))
	if err != nil {
		return Record{}, false
	}
	rec.Text = string(text)
	dict, err := w.at(idx+l.hdr+textLen, min(dictLen, maxDict))
	if err != nil {
		return Record{}, false
	}
	// The dictionary holds NUL-separated KEY=value pairs.
	for _, kv := range bytes.Split(dict, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("SUBSYSTEM=")); ok {
			rec.Subsystem = string(v)
		} else if v, ok := bytes.CutPrefix(kv, []byte("DEVICE=")); ok {
			rec.Device = string(v)
		}
	}
	return rec, true
}
