package diskdump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// makedumpfile's flattened format (-F): a 4096-byte header, then records
// of {offset, size} (big-endian int64) each followed by size bytes to be
// written at offset, then an end record {-1, -1}.
const (
	flatSignature  = "makedumpfile"
	flatHeaderSize = 4096
	flatType       = 1
	flatVersion    = 1
	flatRecordHdr  = 16

	// MaxFlatOffset bounds the offsets Unflatten accepts (1 PiB).
	MaxFlatOffset = 1 << 50
)

// FlattenWriter is an io.WriterAt that turns each WriteAt into a record
// of makedumpfile's flattened format on an io.Writer, for writing a dump
// to a pipe or a network stream. Close writes the end record.
type FlattenWriter struct {
	w      io.Writer
	hdr    bool
	closed bool
	err    error
	rec    [flatRecordHdr]byte
	Bytes  int64 // bytes written to w
}

// NewFlattenWriter returns a FlattenWriter writing to w.
func NewFlattenWriter(w io.Writer) *FlattenWriter { return &FlattenWriter{w: w} }

func (f *FlattenWriter) write(p []byte) error {
	if f.err != nil {
		return f.err
	}
	n, err := f.w.Write(p)
	f.Bytes += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		f.err = fmt.Errorf("diskdump: flattened stream: %w", err)
	}
	return f.err
}

func (f *FlattenWriter) header() error {
	if f.hdr {
		return f.err
	}
	f.hdr = true
	h := make([]byte, flatHeaderSize)
	copy(h, flatSignature)
	binary.BigEndian.PutUint64(h[16:], flatType)
	binary.BigEndian.PutUint64(h[24:], flatVersion)
	return f.write(h)
}

// WriteAt writes p as one record for offset off.
func (f *FlattenWriter) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errors.New("diskdump: flattened stream closed")
	}
	if off < 0 {
		return 0, fmt.Errorf("diskdump: flattened stream: negative offset %d", off)
	}
	if err := f.header(); err != nil {
		return 0, err
	}
	// makedumpfile -R stops at a record of size 0: never write one.
	if len(p) == 0 {
		return 0, nil
	}
	binary.BigEndian.PutUint64(f.rec[0:], uint64(off))
	binary.BigEndian.PutUint64(f.rec[8:], uint64(len(p)))
	if err := f.write(f.rec[:]); err != nil {
		return 0, err
	}
	if err := f.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes the end record. It does not close the underlying writer.
func (f *FlattenWriter) Close() error {
	if f.closed {
		return f.err
	}
	if err := f.header(); err != nil {
		return err
	}
	f.closed = true
	var end [flatRecordHdr]byte
	for i := range end {
		end[i] = 0xff
	}
	return f.write(end[:])
}

// IsFlattened reports whether the first bytes of a file (at least 16)
// are makedumpfile's flattened-format signature.
func IsFlattened(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	return string(b[:len(flatSignature)]) == flatSignature && b[len(flatSignature)] == 0
}

// cut describes a stream that ended, or failed to read, at stream offset
// at, in what: a *FormatError wrapping ErrTruncated for its end.
func cut(at int64, what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr(ErrTruncated, at, "flat record", "the stream ends in %s, before the end record", what)
	}
	return fmt.Errorf("diskdump: unflatten: read %s at stream offset %#x: %w", what, at, err)
}

// Unflatten rebuilds a file from a flattened stream, as makedumpfile -R
// does: it checks the header and writes each record's data at its offset,
// copying through a fixed buffer whatever the record sizes. Format errors
// are *FormatError, with the stream offset of the record at fault; a
// stream cut short wraps ErrTruncated. What it writes is exactly what the
// stream holds: a file rebuilt from a stream that lost records has holes,
// which (*File).Check reports.
func Unflatten(r io.Reader, w io.WriterAt) error {
	h := make([]byte, flatHeaderSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return cut(0, "the header", err)
	}
	if !IsFlattened(h) {
		return formatErr(ErrNotKdump, 0, "signature", "no %q signature: not a flattened stream", flatSignature)
	}
	if t := binary.BigEndian.Uint64(h[16:]); t != flatType {
		return formatErr(ErrUnsupported, 16, "type", "flattened stream of type %d, want %d", t, flatType)
	}
	var buf []byte // grown to the largest record, up to 1 MiB
	var rec [flatRecordHdr]byte
	pos := int64(flatHeaderSize)
	for {
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			return cut(pos, "a record header", err)
		}
		off := int64(binary.BigEndian.Uint64(rec[0:]))
		size := int64(binary.BigEndian.Uint64(rec[8:]))
		if off == -1 && size == -1 {
			return nil
		}
		if off < 0 || size <= 0 || off > MaxFlatOffset || size > MaxFlatOffset-off {
			return formatErr(ErrCorrupt, pos, "flat record",
				"record of %d bytes for offset %d: want 1 byte or more, within %d bytes", size, off, int64(MaxFlatOffset))
		}
		pos += flatRecordHdr
		if int64(len(buf)) < min(size, 1<<20) {
			buf = make([]byte, min(size, 1<<20))
		}
		for done := int64(0); done < size; {
			n := min(size-done, int64(len(buf)))
			if _, err := io.ReadFull(r, buf[:n]); err != nil {
				return cut(pos-flatRecordHdr, "the data of a record", err)
			}
			if _, err := w.WriteAt(buf[:n], off+done); err != nil {
				return fmt.Errorf("diskdump: unflatten: write at %#x: %w", off+done, err)
			}
			done += n
		}
		pos += size
	}
}
