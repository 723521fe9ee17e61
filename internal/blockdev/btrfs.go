package blockdev

import "io"

// btrfs primary superblock (struct btrfs_super_block): 64 KiB into the
// device, fields little-endian.
const (
	btrfsSuperOff  = 0x10000
	btrfsFsid      = 0x20  // fsid[16]
	btrfsBytenr    = 0x30  // bytenr u64: where this copy lives
	btrfsMagicOff  = 0x40  // magic[8]
	btrfsLabel     = 0x12B // label[256], after the embedded dev_item
	btrfsLabelLen  = 256
	btrfsSuperRead = btrfsLabel + btrfsLabelLen
	btrfsMagic     = "_BHRfS_M"
)

// probeBtrfs reads only the primary superblock: a filesystem whose primary
// copy is gone is not mountable without repair anyway.
func probeBtrfs(r io.ReaderAt, _ int64) (*Filesystem, error) {
	sb, ok, err := readAt(r, btrfsSuperOff, btrfsSuperRead)
	if !ok {
		return nil, err
	}
	if string(sb[btrfsMagicOff:btrfsMagicOff+8]) != btrfsMagic || le.Uint64(sb[btrfsBytenr:]) != btrfsSuperOff {
		return nil, nil
	}
	return &Filesystem{
		FSType: "btrfs",
		UUID:   formatUUID(sb[btrfsFsid : btrfsFsid+16]),
		Label:  cString(sb[btrfsLabel : btrfsLabel+btrfsLabelLen]),
	}, nil
}
