package blockdev

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// A Table is a disk's partition table.
type Table struct {
	// Type is blkid's PTTYPE: "gpt" or "dos".
	Type string
	// UUID is blkid's PTUUID: the GPT disk GUID, or the MBR disk
	// signature as 8 lowercase hex digits.
	UUID       string
	Partitions []Partition
}

// A Partition is one entry of a partition table.
type Partition struct {
	// Number is the kernel's partition number, as in sda<Number>: the
	// GPT entry index + 1; 1-4 for MBR primary entries and 5 on for
	// logical partitions in the order of their chain.
	Number int
	// Start and Size are in bytes.
	Start, Size int64
	// UUID is blkid's PARTUUID: the GPT partition GUID, or for MBR the
	// disk signature and the number, "1234abcd-05".
	UUID string
	// Label is blkid's PARTLABEL, the GPT partition name; MBR has none.
	Label string
	// Type is the GPT partition type GUID, or the MBR type as "0x83".
	Type string
}

// Partition returns the partition numbered n, or nil.
func (t *Table) Partition(n int) *Partition {
	for i := range t.Partitions {
		if t.Partitions[i].Number == n {
			return &t.Partitions[i]
		}
	}
	return nil
}

// ErrNoPartitionTable is returned by ReadPartitionTable for a disk with
// neither a GPT nor an MBR partition table.
var ErrNoPartitionTable = errors.New("no partition table")

// ReadPartitionTable reads the partition table of a disk of size bytes
// (<= 0 if unknown; the backup GPT at the end is then not tried) whose
// logical sectors are sectorSize bytes (0: try 512, then 4096).
func ReadPartitionTable(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	sizes := []int{sectorSize}
	if sectorSize == 0 {
		sizes = []int{512, 4096}
	} else if sectorSize < 512 || sectorSize > 65536 || !isPowerOf2(uint64(sectorSize)) {
		return nil, fmt.Errorf("blockdev: bad sector size %d", sectorSize)
	}
	mbr, ok, err := readAt(r, 0, 512)
	if err != nil {
		return nil, fmt.Errorf("blockdev: read MBR: %w", err)
	}
	if !ok || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, fmt.Errorf("blockdev: %w", ErrNoPartitionTable)
	}
	if isProtectiveMBR(mbr) {
		var firstErr error
		for _, ss := range sizes {
			t, err := readGPT(r, size, int64(ss))
			if err == nil {
				return t, nil
			}
			firstErr = cmpErr(firstErr, err)
		}
		return nil, fmt.Errorf("blockdev: protective MBR but %w", firstErr)
	}
	ss := sizes[0]
	return readMBR(r, mbr, int64(ss))
}

// MBR layout.
const (
	mbrDiskSig   = 440
	mbrEntries   = 446
	mbrEntrySize = 16
	mbrTypeGPT   = 0xee
	maxLogical   = 256 // bounds the walk of the extended partition chain
)

type mbrEntry struct {
	boot, typ     byte
	start, length int64 // sectors
}

func mbrEntryAt(sector []byte, i int) mbrEntry {
	e := sector[mbrEntries+i*mbrEntrySize:]
	return mbrEntry{boot: e[0], typ: e[4], start: int64(le.Uint32(e[8:])), length: int64(le.Uint32(e[12:]))}
}

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0f || typ == 0x85 }

func isProtectiveMBR(mbr []byte) bool {
	for i := range 4 {
		if mbrEntryAt(mbr, i).typ == mbrTypeGPT {
			return true
		}
	}
	return false
}

func readMBR(r io.ReaderAt, mbr []byte, ss int64) (*Table, error) {
	// A FAT boot sector also ends in 55 AA; a filesystem on the whole
	// device is not a partition table.
	if _, isFAT := parseVFAT(mbr); isFAT {
		return nil, fmt.Errorf("blockdev: %w: sector 0 is a FAT boot sector", ErrNoPartitionTable)
	}
	for i := range 4 {
		if b := mbrEntryAt(mbr, i).boot; b != 0 && b != 0x80 {
			return nil, fmt.Errorf("blockdev: %w: MBR entry %d has boot flag %#x", ErrNoPartitionTable, i+1, b)
		}
	}
	sig := le.Uint32(mbr[mbrDiskSig:])
	t := &Table{Type: "dos", UUID: fmt.Sprintf("%08x", sig)}
	add := func(n int, e mbrEntry, base int64) {
		t.Partitions = append(t.Partitions, Partition{
			Number: n,
			Start:  (base + e.start) * ss,
			Size:   e.length * ss,
			UUID:   fmt.Sprintf("%08x-%02x", sig, n),
			Type:   fmt.Sprintf("0x%02x", e.typ),
		})
	}
	var extended []mbrEntry
	for i := range 4 {
		e := mbrEntryAt(mbr, i)
		if e.typ == 0 || e.length == 0 {
			continue
		}
		add(i+1, e, 0)
		if isExtended(e.typ) {
			extended = append(extended, e)
		}
	}
	// Logical partitions: each extended boot record (EBR) holds one
	// partition, relative to itself, and a link to the next EBR,
	// relative to the start of the extended partition.
	next := 5
	for _, ext := range extended {
		seen := map[int64]bool{}
		ebr := ext.start
		for next < 5+maxLogical && !seen[ebr] {
			seen[ebr] = true
			sector, ok, err := readAt(r, ebr*ss, 512)
			if err != nil {
				return nil, fmt.Errorf("blockdev: read EBR at sector %d: %w", ebr, err)
			}
			if !ok || sector[510] != 0x55 || sector[511] != 0xaa {
				break
			}
			link := int64(-1)
			for i := range 4 {
				e := mbrEntryAt(sector, i)
				switch {
				case e.typ == 0 || e.length == 0:
				case isExtended(e.typ):
					if link < 0 {
						link = ext.start + e.start
					}
				default:
					add(next, e, ebr)
					next++
				}
			}
			if link < 0 {
				break
			}
			ebr = link
		}
	}
	return t, nil
}

// GPT header (UEFI spec, "GPT Header"), little-endian.
const (
	gptSig          = "EFI PART"
	gptHeaderSize   = 12 // u32
	gptHeaderCRC    = 16 // u32, over HeaderSize bytes with this field zero
	gptMyLBA        = 24 // u64
	gptDiskGUID     = 56 // [16]
	gptEntriesLBA   = 72 // u64
	gptNumEntries   = 80 // u32
	gptEntrySize    = 84 // u32
	gptEntriesCRC   = 88 // u32
	gptMinHeader    = 92
	gptMaxEntries   = 1 << 20 // bytes of entry array we are willing to read
	gptEntryType    = 0
	gptEntryUUID    = 16
	gptEntryFirst   = 32
	gptEntryLast    = 40
	gptEntryName    = 56
	gptEntryNameLen = 72 // 36 UTF-16 code units
)

// readGPT reads the primary GPT, or the backup in the last sector if the
// primary is damaged.
func readGPT(r io.ReaderAt, size, ss int64) (*Table, error) {
	t, err := readGPTAt(r, 1, ss)
	if err == nil || size <= 0 {
		return t, err
	}
	if last := size/ss - 1; last > 1 {
		if t, err2 := readGPTAt(r, last, ss); err2 == nil {
			return t, nil
		}
	}
	return nil, err
}

func readGPTAt(r io.ReaderAt, lba, ss int64) (*Table, error) {
	h, ok, err := readAt(r, lba*ss, int(ss))
	if err != nil {
		return nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	if !ok || string(h[:8]) != gptSig {
		return nil, fmt.Errorf("no GPT header at LBA %d (sector size %d)", lba, ss)
	}
	hsize := le.Uint32(h[gptHeaderSize:])
	if hsize < gptMinHeader || int64(hsize) > ss {
		return nil, fmt.Errorf("GPT header at LBA %d: bad header size %d", lba, hsize)
	}
	hdr := append([]byte(nil), h[:hsize]...)
	want := le.Uint32(hdr[gptHeaderCRC:])
	le.PutUint32(hdr[gptHeaderCRC:], 0)
	if crc32.ChecksumIEEE(hdr) != want {
		return nil, fmt.Errorf("GPT header at LBA %d: bad CRC", lba)
	}
	if le.Uint64(h[gptMyLBA:]) != uint64(lba) {
		return nil, fmt.Errorf("GPT header at LBA %d: says it is at LBA %d", lba, le.Uint64(h[gptMyLBA:]))
	}
	n, esize := uint64(le.Uint32(h[gptNumEntries:])), uint64(le.Uint32(h[gptEntrySize:]))
	if esize < 128 || esize%8 != 0 || n*esize > gptMaxEntries {
		return nil, fmt.Errorf("GPT header at LBA %d: %d entries of %d bytes", lba, n, esize)
	}
	entriesLBA := le.Uint64(h[gptEntriesLBA:])
	if entriesLBA > 1<<62/uint64(ss) {
		return nil, fmt.Errorf("GPT header at LBA %d: entries at LBA %d", lba, entriesLBA)
	}
	entries, ok, err := readAt(r, int64(entriesLBA)*ss, int(n*esize))
	if err != nil {
		return nil, fmt.Errorf("read GPT entries: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("GPT entries at LBA %d: beyond the end of the disk", entriesLBA)
	}
	if crc32.ChecksumIEEE(entries) != le.Uint32(h[gptEntriesCRC:]) {
		return nil, fmt.Errorf("GPT entries at LBA %d: bad CRC", entriesLBA)
	}
	t := &Table{Type: "gpt", UUID: formatGUID(h[gptDiskGUID : gptDiskGUID+16])}
	for i := uint64(0); i < n; i++ {
		e := entries[i*esize : (i+1)*esize]
		if isZero(e[gptEntryType : gptEntryType+16]) {
			continue // unused
		}
		first, last := le.Uint64(e[gptEntryFirst:]), le.Uint64(e[gptEntryLast:])
		if last < first || last > 1<<62/uint64(ss) {
			continue // the kernel skips such entries too
		}
		t.Partitions = append(t.Partitions, Partition{
			Number: int(i) + 1,
			Start:  int64(first) * ss,
			Size:   int64(last-first+1) * ss,
			UUID:   formatGUID(e[gptEntryUUID : gptEntryUUID+16]),
			Label:  utf16Name(e[gptEntryName : gptEntryName+gptEntryNameLen]),
			Type:   formatGUID(e[gptEntryType : gptEntryType+16]),
		})
	}
	return t, nil
}

// formatGUID spells a GUID stored as on disk by UEFI: the first three
// fields little-endian.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8:10], b[10:16])
}

// utf16Name decodes a NUL-terminated UTF-16LE name.
func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := le.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
