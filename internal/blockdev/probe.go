package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Filesystem is what a superblock says about the filesystem it heads.
type Filesystem struct {
	// FSType is blkid's TYPE: "ext4", "ext3", "ext2", "jbd", "xfs",
	// "vfat", "btrfs", or "linux_raid_member" for an md RAID component
	// (which must not be written to directly).
	FSType string
	// UUID is blkid's UUID: lowercase 8-4-4-4-12, or vfat's volume serial
	// as "ABCD-1234". Empty if the filesystem has none.
	UUID string
	// Label is blkid's LABEL, trailing spaces removed. Empty if none.
	Label string
}

// Mountable reports whether the kernel can mount the filesystem: false for
// an external journal or a RAID component.
func (f *Filesystem) Mountable() bool {
	return f.FSType != "jbd" && f.FSType != "linux_raid_member"
}

var (
	// ErrNoFilesystem is returned by Probe when no superblock it knows is
	// there: an empty device, a partition table, or a filesystem type
	// this package does not read.
	ErrNoFilesystem = errors.New("no filesystem recognised")
	// ErrAmbivalent is returned by Probe when signatures of more than one
	// filesystem are present, as when a device was reformatted without
	// its old superblock being wiped. blkid refuses such devices too.
	ErrAmbivalent = errors.New("signatures of more than one filesystem")
)

// A prober recognises one kind of superblock. It returns nil, nil when the
// device does not hold one, and an error only when reading fails.
type prober func(r io.ReaderAt, size int64) (*Filesystem, error)

// probers run in this order; a RAID component hides what it holds.
var probers = []prober{probeExt, probeXFS, probeBtrfs, probeVFAT}

// Probe identifies the filesystem on r, a device or image of size bytes.
// size <= 0 means unknown: signatures at the end of the device (md RAID
// metadata 0.90 and 1.0) are then not looked for.
func Probe(r io.ReaderAt, size int64) (*Filesystem, error) {
	md, ioErr := probeMDRaid(r, size)
	if md != nil {
		// mdadm places the array's data, and so its filesystem, inside
		// the component: the RAID signature is what matters.
		return md, nil
	}
	var found []*Filesystem
	for _, p := range probers {
		fs, err := p(r, size)
		if err != nil {
			ioErr = cmpErr(ioErr, err)
			continue
		}
		if fs != nil {
			found = append(found, fs)
		}
	}
	switch len(found) {
	case 0:
		if ioErr != nil {
			return nil, fmt.Errorf("blockdev: probe: %w", ioErr)
		}
		return nil, fmt.Errorf("blockdev: %w", ErrNoFilesystem)
	case 1:
		return found[0], nil
	}
	var types []string
	for _, f := range found {
		types = append(types, f.FSType)
	}
	return nil, fmt.Errorf("blockdev: %w: %s", ErrAmbivalent, strings.Join(types, ", "))
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// readAt reads n bytes at off. A device too small to hold them is not an
// error, since it just cannot hold that superblock: ok is false.
func readAt(r io.ReaderAt, off int64, n int) (b []byte, ok bool, err error) {
	if off < 0 {
		return nil, false, nil
	}
	b = make([]byte, n)
	m, err := r.ReadAt(b, off)
	if m == n {
		return b, true, nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("read %d bytes at %#x: %w", n, off, err)
}

var (
	le = binary.LittleEndian
	be = binary.BigEndian
)

// formatUUID spells a 16-byte UUID as blkid does; all zeros is no UUID.
func formatUUID(b []byte) string {
	if len(b) != 16 || isZero(b) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// cString returns b up to its first NUL, without trailing white space, as
// blkid reports labels.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " \t\n\r\v\f")
}

func isPowerOf2(n uint64) bool { return n != 0 && n&(n-1) == 0 }
