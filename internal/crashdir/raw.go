package crashdir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A raw device target holds no filesystem: the dump is written from
// offset 0 as makedumpfile's flattened stream, which `makedumpfile -R` and
// `gokdump savecore` turn back into a file. The crashed kernel's log
// cannot sit beside it, so it goes to the end of the device, written
// before the dump starts (a capture cut short still leaves the log):
//
//	[flattened stream …]   [free]   [log text, padded to 4 KiB][footer 4 KiB]
//
// The footer is the device's last whole 4096-byte block, little-endian:
//
//	 0  magic "gokdump-dmesg\0\0\0"
//	16  u32 version (1)          20  u32 reserved, 0
//	24  u64 text offset          32  u64 text length
//	40  u32 CRC-32C of the text  44  u32 reserved, 0
//	48  i64 crash time (Unix seconds, 0 if unknown)
//	56  u32 CRC-32C of bytes 0..56
//
// The stream must end before the text: RawDmesgStart says where that is.
// A reader of the stream stops at its end record and never sees the log;
// a stale footer from an earlier dump is told apart by its crash time.
const (
	rawMagic      = "gokdump-dmesg\x00\x00\x00"
	rawVersion    = 1
	RawBlock      = 4096 // footer size and alignment of the log text
	rawFooterUsed = 60
	// MaxRawDmesg bounds the log kept at the end of a raw device (the
	// kernel's log buffer is at most 32 MiB; its text a little more).
	MaxRawDmesg = 64 << 20
)

// ErrNoRawDmesg is returned by ReadRawDmesg for a device without a valid
// log trailer.
var ErrNoRawDmesg = errors.New("crashdir: no kernel log trailer at the end of the device")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// footerOffset is the offset of the last whole block of a device.
func footerOffset(size int64) int64 { return size/RawBlock*RawBlock - RawBlock }

// RawDmesgStart returns where the log of n bytes begins at the end of a
// device of size bytes: the flattened stream must end at or before it.
// It is negative when the device is too small to hold the log at all.
func RawDmesgStart(size int64, n int) int64 {
	pad := (int64(n) + RawBlock - 1) / RawBlock * RawBlock
	return footerOffset(size) - pad
}

// RawDmesg is the log found at the end of a raw device.
type RawDmesg struct {
	Text      []byte
	CrashTime int64 // Unix seconds; 0 if unknown
	Start     int64 // device offset of the text
}

// WriteRawDmesg writes text and the footer at the end of a device of size
// bytes through w, and returns where the text starts. The log is refused
// when it would take more than a quarter of the device.
func WriteRawDmesg(w io.WriterAt, size int64, text []byte, crashTime int64) (int64, error) {
	if len(text) > MaxRawDmesg {
		text = text[len(text)-MaxRawDmesg:] // the end of a log matters most
	}
	start := RawDmesgStart(size, len(text))
	if start < 0 || size-start > size/4 {
		return 0, fmt.Errorf("crashdir: a %d-byte log does not fit at the end of a %d-byte device", len(text), size)
	}
	foot := footerOffset(size)
	buf := make([]byte, foot-start+RawBlock)
	copy(buf, text)
	f := buf[foot-start:]
	copy(f, rawMagic)
	binary.LittleEndian.PutUint32(f[16:], rawVersion)
	binary.LittleEndian.PutUint64(f[24:], uint64(start))
	binary.LittleEndian.PutUint64(f[32:], uint64(len(text)))
	binary.LittleEndian.PutUint32(f[40:], crc32.Checksum(text, castagnoli))
	binary.LittleEndian.PutUint64(f[48:], uint64(crashTime))
	binary.LittleEndian.PutUint32(f[56:], crc32.Checksum(f[:56], castagnoli))
	if _, err := w.WriteAt(buf, start); err != nil {
		return 0, fmt.Errorf("crashdir: write the log at %#x: %w", start, err)
	}
	return start, nil
}

// ReadRawDmesg reads the log trailer of a device of size bytes. A device
// without one, or with a damaged one, gives an error wrapping
// ErrNoRawDmesg.
func ReadRawDmesg(r io.ReaderAt, size int64) (*RawDmesg, error) {
	foot := footerOffset(size)
	if foot < 0 {
		return nil, fmt.Errorf("%w: %d-byte device", ErrNoRawDmesg, size)
	}
	f := make([]byte, rawFooterUsed)
	if _, err := r.ReadAt(f, foot); err != nil {
		return nil, fmt.Errorf("crashdir: read the log footer at %#x: %w", foot, err)
	}
	if !bytes.Equal(f[:16], []byte(rawMagic)) {
		return nil, ErrNoRawDmesg
	}
	if crc32.Checksum(f[:56], castagnoli) != binary.LittleEndian.Uint32(f[56:]) {
		return nil, fmt.Errorf("%w: footer checksum mismatch", ErrNoRawDmesg)
	}
	if v := binary.LittleEndian.Uint32(f[16:]); v != rawVersion {
		return nil, fmt.Errorf("%w: footer version %d", ErrNoRawDmesg, v)
	}
	start := binary.LittleEndian.Uint64(f[24:])
	n := binary.LittleEndian.Uint64(f[32:])
	if n > MaxRawDmesg || start%RawBlock != 0 || start > uint64(foot) || n > uint64(foot)-start {
		return nil, fmt.Errorf("%w: footer says %d bytes at %#x", ErrNoRawDmesg, n, start)
	}
	d := &RawDmesg{Text: make([]byte, n), Start: int64(start), CrashTime: int64(binary.LittleEndian.Uint64(f[48:]))}
	if _, err := r.ReadAt(d.Text, int64(start)); err != nil {
		return nil, fmt.Errorf("crashdir: read the log at %#x: %w", start, err)
	}
	if crc32.Checksum(d.Text, castagnoli) != binary.LittleEndian.Uint32(f[40:]) {
		return nil, fmt.Errorf("%w: log checksum mismatch", ErrNoRawDmesg)
	}
	return d, nil
}

// ClearRawDmesg invalidates the log trailer of a device of size bytes, so
// that a dump written without a log is never paired with an older one.
func ClearRawDmesg(w io.WriterAt, size int64) error {
	foot := footerOffset(size)
	if foot < 0 {
		return nil
	}
	if _, err := w.WriteAt(make([]byte, RawBlock), foot); err != nil {
		return fmt.Errorf("crashdir: clear the log footer at %#x: %w", foot, err)
	}
	return nil
}
