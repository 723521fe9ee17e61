package printk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// maxLogBufLen is the kernel's LOG_BUF_LEN_MAX.
const maxLogBufLen = 1 << 31

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
	if lb.size < ll.hdr || lb.size > maxLogBufLen || lb.first > lb.size-ll.hdr || lb.next > lb.size-ll.hdr {
		return nil, fmt.Errorf("%w: log_buf_len %d, log_first_idx %d, log_next_idx %d", ErrCorrupt, lb.size, lb.first, lb.next)
	}
	return lb.readAll(), nil
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
func (lb *logBuf) readAll() *Log {
	log := &Log{Kind: KindLegacy}
	l := lb.l
	hdr := make([]byte, l.hdr)
	// The walk may go back to the start once, and only if it began after
	// the end; between, idx only grows: it ends within a bounded number
	// of steps even on a corrupt buffer.
	mayWrap := lb.first > lb.next
	idx := lb.first
	var seq uint64
	for idx != lb.next {
		if idx+l.hdr > lb.size || lb.m.read(hdr, lb.buf+idx) != nil {
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
		rec, ok := lb.record(idx, hdr, textLen, dictLen)
		if ok {
			rec.Seq = seq
			log.Records = append(log.Records, rec)
		} else {
			log.Skipped++
		}
		seq++
		idx = end
	}
	return log
}

func (lb *logBuf) record(idx uint64, hdr []byte, textLen, dictLen uint64) (Record, bool) {
	l, bo := lb.l, lb.m.bo
	rec := Record{Time: time.Duration(bo.Uint64(hdr[l.tsNsec:]))}
	if l.hasLevel {
		rec.Facility = int(hdr[l.dictLen+2])
		rec.Level, rec.Flags = levelFlags(hdr[l.dictLen+3], bo)
	}
	if l.hasCaller {
		rec.Caller = callerString(bo.Uint32(hdr[l.callerID:]))
	}
	b := make([]byte, textLen+dictLen)
	if err := lb.m.read(b, lb.buf+idx+l.hdr); err != nil {
		return Record{}, false
	}
	rec.Text = string(b[:textLen])
	// The dictionary holds NUL-separated KEY=value pairs.
	for _, kv := range bytes.Split(b[textLen:], []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("SUBSYSTEM=")); ok {
			rec.Subsystem = string(v)
		} else if v, ok := bytes.CutPrefix(kv, []byte("DEVICE=")); ok {
			rec.Device = string(v)
		}
	}
	return rec, true
}
