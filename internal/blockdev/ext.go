package blockdev

import "io"

// ext2/3/4 superblock: 1024 bytes into the device; fields little-endian.
const (
	extSuperOff     = 1024
	extLogBlockSize = 24 // s_log_block_size: block size is 1024 << this
	extMagicOff     = 56 // s_magic
	extMagic        = 0xEF53
	extCompatOff    = 92  // s_feature_compat
	extIncompatOff  = 96  // s_feature_incompat
	extROCompatOff  = 100 // s_feature_ro_compat
	extUUIDOff      = 104 // s_uuid[16]
	extLabelOff     = 120 // s_volume_name[16]
	extSuperRead    = 136 // through the label

	extCompatHasJournal   = 0x4
	extIncompatFiletype   = 0x2
	extIncompatRecover    = 0x4
	extIncompatJournalDev = 0x8
	extIncompatMetaBG     = 0x10

	extROCompatSparseSuper = 0x1
	extROCompatLargeFile   = 0x2
	extROCompatBtreeDir    = 0x4
)

// Features an ext2 or ext3 driver understands; anything beyond makes the
// filesystem ext4, which is how blkid tells the three apart.
const (
	ext2Incompat  = extIncompatFiletype | extIncompatMetaBG
	ext3Incompat  = ext2Incompat | extIncompatRecover
	ext23ROCompat = extROCompatSparseSuper | extROCompatLargeFile | extROCompatBtreeDir
)

func probeExt(r io.ReaderAt, _ int64) (*Filesystem, error) {
	sb, ok, err := readAt(r, extSuperOff, extSuperRead)
	if !ok {
		return nil, err
	}
	if le.Uint16(sb[extMagicOff:]) != extMagic {
		return nil, nil
	}
	if le.Uint32(sb[extLogBlockSize:]) > 6 { // blocks are 1 KiB to 64 KiB
		return nil, nil
	}
	compat := le.Uint32(sb[extCompatOff:])
	incompat := le.Uint32(sb[extIncompatOff:])
	roCompat := le.Uint32(sb[extROCompatOff:])

	var typ string
	switch {
	case incompat&extIncompatJournalDev != 0:
		typ = "jbd"
	case compat&extCompatHasJournal != 0 && incompat&^ext3Incompat == 0 && roCompat&^ext23ROCompat == 0:
		typ = "ext3"
	case compat&extCompatHasJournal == 0 && incompat&^ext2Incompat == 0 && roCompat&^ext23ROCompat == 0:
		typ = "ext2"
	default:
		typ = "ext4"
	}
	return &Filesystem{
		FSType: typ,
		UUID:   formatUUID(sb[extUUIDOff : extUUIDOff+16]),
		Label:  cString(sb[extLabelOff : extLabelOff+16]),
	}, nil
}
