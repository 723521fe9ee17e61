package blockdev

import (
	"encoding/binary"
	"io"
)

// Linux md RAID component superblocks. Metadata 0.90 and 1.0 sit at the
// end of the component with the array's data, filesystem included, from
// offset 0, so a component of a mirror looks like the filesystem itself:
// writing to it directly would corrupt the array.
const (
	mdMagic        = 0xa92b4efc
	mdReserved     = 0x10000 // 0.90: the superblock's 64 KiB-aligned slot at the end
	md0SetUUID0    = 5 * 4   // set_uuid0 u32
	md0MinorVer    = 2 * 4
	md0Size        = 8 * 4 // size u32, KiB
	md0SetUUID1    = 13 * 4
	md0Read        = 16 * 4
	md1MajorVer    = 4
	md1SetUUID     = 16
	md1SetName     = 32
	md1SuperOffset = 144 // super_offset u64, in 512-byte sectors
	md1Read        = 152
)

func probeMDRaid(r io.ReaderAt, size int64) (*Filesystem, error) {
	if size > mdReserved {
		if fs, err := probeMD0(r, size, (size&^(mdReserved-1))-mdReserved); fs != nil || err != nil {
			return fs, err
		}
		if fs, err := probeMD1(r, (size&^0xfff)-0x2000); fs != nil || err != nil {
			return fs, err
		}
	}
	if fs, err := probeMD1(r, 0); fs != nil || err != nil {
		return fs, err
	}
	return probeMD1(r, 0x1000)
}

// probeMD0 reads a 0.90 superblock, which is in the byte order of the
// machine that wrote it.
func probeMD0(r io.ReaderAt, size, off int64) (*Filesystem, error) {
	sb, ok, err := readAt(r, off, md0Read)
	if !ok {
		return nil, err
	}
	var order binary.ByteOrder
	switch {
	case le.Uint32(sb) == mdMagic:
		order = le
	case be.Uint32(sb) == mdMagic:
		order = be
	default:
		return nil, nil
	}
	dataSize := int64(order.Uint32(sb[md0Size:])) << 10
	if size < dataSize+mdReserved || off < dataSize {
		return nil, nil
	}
	// The UUID's four words print most significant byte first.
	var uuid [16]byte
	be.PutUint32(uuid[0:], order.Uint32(sb[md0SetUUID0:]))
	if order.Uint32(sb[md0MinorVer:]) >= 90 {
		for i := range 3 {
			be.PutUint32(uuid[4+4*i:], order.Uint32(sb[md0SetUUID1+4*i:]))
		}
	}
	return &Filesystem{FSType: "linux_raid_member", UUID: formatUUID(uuid[:])}, nil
}

func probeMD1(r io.ReaderAt, off int64) (*Filesystem, error) {
	sb, ok, err := readAt(r, off, md1Read)
	if !ok {
		return nil, err
	}
	if le.Uint32(sb) != mdMagic || le.Uint32(sb[md1MajorVer:]) != 1 || le.Uint64(sb[md1SuperOffset:]) != uint64(off)>>9 {
		return nil, nil
	}
	return &Filesystem{
		FSType: "linux_raid_member",
		UUID:   formatUUID(sb[md1SetUUID : md1SetUUID+16]),
		Label:  cString(sb[md1SetName : md1SetName+32]),
	}, nil
}
