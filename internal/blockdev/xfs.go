package blockdev

import "io"

// xfs superblock (struct xfs_dsb): at offset 0, fields big-endian.
const (
	xfsBlockSize  = 4   // sb_blocksize u32
	xfsDBlocks    = 8   // sb_dblocks u64
	xfsUUID       = 32  // sb_uuid[16]
	xfsRextSize   = 80  // sb_rextsize u32, in blocks
	xfsAGBlocks   = 84  // sb_agblocks u32
	xfsAGCount    = 88  // sb_agcount u32
	xfsSectSize   = 102 // sb_sectsize u16
	xfsInodeSize  = 104 // sb_inodesize u16
	xfsFname      = 108 // sb_fname[12]
	xfsBlockLog   = 120 // sb_blocklog u8
	xfsSectLog    = 121
	xfsInodeLog   = 122
	xfsInopbLog   = 123
	xfsImaxPct    = 127
	xfsSuperRead  = 128
	xfsMinAGBlock = 64
)

func probeXFS(r io.ReaderAt, _ int64) (*Filesystem, error) {
	sb, ok, err := readAt(r, 0, xfsSuperRead)
	if !ok {
		return nil, err
	}
	if string(sb[:4]) != "XFSB" || !xfsSane(sb) {
		return nil, nil
	}
	return &Filesystem{
		FSType: "xfs",
		UUID:   formatUUID(sb[xfsUUID : xfsUUID+16]),
		Label:  cString(sb[xfsFname : xfsFname+12]),
	}, nil
}

// xfsSane checks the geometry as mount would, so that a stray "XFSB" is
// not taken for a filesystem.
func xfsSane(sb []byte) bool {
	blockSize := uint64(be.Uint32(sb[xfsBlockSize:]))
	sectSize := uint64(be.Uint16(sb[xfsSectSize:]))
	inodeSize := uint64(be.Uint16(sb[xfsInodeSize:]))
	blockLog, sectLog, inodeLog := uint(sb[xfsBlockLog]), uint(sb[xfsSectLog]), uint(sb[xfsInodeLog])
	agCount := uint64(be.Uint32(sb[xfsAGCount:]))
	agBlocks := uint64(be.Uint32(sb[xfsAGBlocks:]))
	dBlocks := be.Uint64(sb[xfsDBlocks:])
	rextBytes := uint64(be.Uint32(sb[xfsRextSize:])) * blockSize

	switch {
	case agCount == 0,
		sectLog < 9 || sectLog > 15 || sectSize != 1<<sectLog,
		blockLog < 9 || blockLog > 16 || blockSize != 1<<blockLog,
		inodeLog < 8 || inodeLog > 11 || inodeSize != 1<<inodeLog,
		blockLog-inodeLog != uint(sb[xfsInopbLog]),
		rextBytes < 4<<10 || rextBytes > 1<<30,
		sb[xfsImaxPct] > 100,
		dBlocks == 0,
		dBlocks > agCount*agBlocks,
		dBlocks < (agCount-1)*agBlocks+xfsMinAGBlock:
		return false
	}
	return true
}
