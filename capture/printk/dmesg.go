package printk

import (
	"bufio"
	"io"
	"strconv"
)

// WriteDmesg writes the log the way makedumpfile 1.7.2 --dump-dmesg does,
// byte for byte:
//
//   - each record is one line "[%5d.%06d] text": seconds and microseconds
//     of its timestamp, truncated;
//   - a newline inside the text continues on a new line indented by the
//     width of the timestamp prefix;
//   - bytes other than printable ASCII and the C locale's white space
//     (space, \t, \n, \v, \f, \r) are written as \xNN. makedumpfile formats
//     a plain (signed, on x86) char, so bytes 0x80 to 0xff come out
//     sign-extended, "\xffffffc3"; this reproduces it;
//   - neither the caller id nor the SUBSYSTEM/DEVICE information is
//     written, and empty-line records, which have no data block, are
//     left out.
func (l *Log) WriteDmesg(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for i := range l.Records {
		r := &l.Records[i]
		if r.noData {
			continue
		}
		line = appendDmesg(line[:0], r)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// appendDmesg appends r in makedumpfile's format.
func appendDmesg(b []byte, r *Record) []byte {
	// The conversion back to uint64 restores a timestamp at or above
	// 2^63 that Record.Time holds as a negative Duration.
	ts := uint64(r.Time)
	start := len(b)
	b = append(b, '[')
	b = appendPadded(b, ts/1e9, 5, ' ')
	b = append(b, '.')
	b = appendPadded(b, ts%1e9/1e3, 6, '0')
	b = append(b, ']', ' ')
	indent := len(b) - start
	for i := 0; i < len(r.Text); i++ {
		c := r.Text[i]
		switch {
		case c == '\n':
			b = append(b, '\n')
			for j := 0; j < indent; j++ {
				b = append(b, ' ')
			}
		case c >= 0x20 && c < 0x7f, c == '\t', c == '\v', c == '\f', c == '\r':
			b = append(b, c)
		case c >= 0x80:
			b = append(b, `\xffffff`...)
			b = appendHex2(b, c)
		default:
			b = append(b, `\x`...)
			b = appendHex2(b, c)
		}
	}
	return append(b, '\n')
}

// appendPadded appends v in decimal, right-aligned in width, padded with
// pad (printf's %5lu and %06lu).
func appendPadded(b []byte, v uint64, width int, pad byte) []byte {
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(d); i < width; i++ {
		b = append(b, pad)
	}
	return append(b, d...)
}

func appendHex2(b []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	return append(b, hex[c>>4], hex[c&15])
}
