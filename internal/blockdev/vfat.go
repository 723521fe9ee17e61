package blockdev

import (
	"fmt"
	"io"
)

// FAT boot sector (BIOS parameter block), little-endian and unaligned.
const (
	fatSectorSize   = 0x0b // u16
	fatClusterSize  = 0x0d // u8, sectors per cluster
	fatReserved     = 0x0e // u16, sectors before the first FAT
	fatFATs         = 0x10 // u8
	fatDirEntries   = 0x11 // u16, root directory entries (FAT12/16)
	fatSectors16    = 0x13 // u16, 0 if the u32 count is used
	fatMedia        = 0x15 // u8
	fatLength16     = 0x16 // u16, sectors per FAT; 0 on FAT32
	fatSectors32    = 0x20 // u32
	fatLength32     = 0x24 // u32, FAT32 sectors per FAT
	fatRootCluster  = 0x2c // u32, FAT32 root directory's first cluster
	fat16Serial     = 0x27 // FAT12/16 extended BPB: volume serial
	fat16Label      = 0x2b // FAT12/16 extended BPB: label[11]
	fat16Magic      = 0x36 // "FAT12   ", "FAT16   ", "FAT     ", "MSDOS"
	fat32Serial     = 0x43
	fat32Label      = 0x47
	fat32Magic      = 0x52 // "FAT32   ", "MSWIN"
	fatBootSigOff   = 0x1fe
	fatDirEntrySize = 32

	fat12Max = 0xff4
	fat16Max = 0xfff4
	fat32Max = 0x0ffffff6

	fatAttrVolumeID = 0x08
	fatAttrDir      = 0x10
	fatAttrLongName = 0x0f
	fatAttrMask     = 0x3f
	fatEntryFree    = 0xe5

	// Bounds on the root directory walk in search of the label entry.
	fatMaxDirEntries = 1 << 16
	fatMaxClusters   = 100
)

const fatNoName = "NO NAME    "

// vfatBPB is the decoded geometry of a valid FAT boot sector.
type vfatBPB struct {
	sectorSize, clusterSize, reserved, fats uint64
	dirEntries, fatLength, rootCluster      uint64
	fat32                                   bool
}

// parseVFAT checks that a boot sector describes a FAT filesystem the way
// the kernel's and blkid's checks do, and decodes its geometry.
func parseVFAT(bs []byte) (*vfatBPB, bool) {
	magic16, magic32 := string(bs[fat16Magic:fat16Magic+8]), string(bs[fat32Magic:fat32Magic+8])
	named := magic32[:5] == "MSWIN" || magic32 == "FAT32   " || magic16[:5] == "MSDOS" ||
		magic16 == "FAT16   " || magic16 == "FAT12   " || magic16 == "FAT     "
	if !named {
		// Without a type string, insist on the boot signature, and
		// rule out the FAT-like headers OS/2 puts on JFS and HPFS.
		if bs[fatBootSigOff] != 0x55 || bs[fatBootSigOff+1] != 0xaa || magic16 == "JFS     " || magic16 == "HPFS    " {
			return nil, false
		}
	}
	b := &vfatBPB{
		sectorSize:  uint64(le.Uint16(bs[fatSectorSize:])),
		clusterSize: uint64(bs[fatClusterSize]),
		reserved:    uint64(le.Uint16(bs[fatReserved:])),
		fats:        uint64(bs[fatFATs]),
		dirEntries:  uint64(le.Uint16(bs[fatDirEntries:])),
		fatLength:   uint64(le.Uint16(bs[fatLength16:])),
	}
	media := bs[fatMedia]
	if b.fats == 0 || b.reserved == 0 || (media < 0xf8 && media != 0xf0) || !isPowerOf2(b.clusterSize) ||
		!isPowerOf2(b.sectorSize) || b.sectorSize < 512 || b.sectorSize > 4096 {
		return nil, false
	}
	sectors := uint64(le.Uint16(bs[fatSectors16:]))
	if sectors == 0 {
		sectors = uint64(le.Uint32(bs[fatSectors32:]))
	}
	if b.fatLength == 0 {
		b.fatLength = uint64(le.Uint32(bs[fatLength32:]))
		b.fat32 = b.fatLength != 0
		b.rootCluster = uint64(le.Uint32(bs[fatRootCluster:]))
	}
	dirSectors := (b.dirEntries*fatDirEntrySize + b.sectorSize - 1) / b.sectorSize
	overhead := b.reserved + b.fatLength*b.fats + dirSectors
	if sectors < overhead {
		return nil, false
	}
	clusters := (sectors - overhead) / b.clusterSize
	maxClusters := uint64(fat12Max)
	switch {
	case b.fat32:
		maxClusters = fat32Max
	case clusters > fat12Max:
		maxClusters = fat16Max
	}
	if clusters > maxClusters {
		return nil, false
	}
	return b, true
}

func probeVFAT(r io.ReaderAt, _ int64) (*Filesystem, error) {
	bs, ok, err := readAt(r, 0, 512)
	if !ok {
		return nil, err
	}
	b, ok := parseVFAT(bs)
	if !ok {
		return nil, nil
	}
	serialOff, labelOff := fat16Serial, fat16Label
	if b.fat32 {
		serialOff, labelOff = fat32Serial, fat32Label
	}
	// mkfs.vfat and Windows keep the label in a root directory entry too,
	// and that one is what later relabelling changes: prefer it.
	label, err := vfatDirLabel(r, b)
	if err != nil {
		return nil, err
	}
	if label == "" || label == fatNoName {
		label = string(bs[labelOff : labelOff+11])
	}
	if label == fatNoName {
		label = ""
	}
	s := bs[serialOff : serialOff+4]
	return &Filesystem{
		FSType: "vfat",
		UUID:   fmt.Sprintf("%02X%02X-%02X%02X", s[3], s[2], s[1], s[0]),
		Label:  cString([]byte(label)),
	}, nil
}

// vfatDirLabel returns the volume label entry of the root directory, or ""
// if there is none.
func vfatDirLabel(r io.ReaderAt, b *vfatBPB) (string, error) {
	fatStart := b.reserved * b.sectorSize
	dataStart := (b.reserved + b.fatLength*b.fats) * b.sectorSize
	if !b.fat32 {
		label, _, err := scanFATDir(r, dataStart, min(b.dirEntries, fatMaxDirEntries))
		return label, err
	}
	clusterBytes := b.clusterSize * b.sectorSize
	fatEntries := b.fatLength * b.sectorSize / 4
	next := b.rootCluster
	for range fatMaxClusters {
		if next < 2 || next >= fatEntries {
			break
		}
		label, end, err := scanFATDir(r, dataStart+(next-2)*clusterBytes, clusterBytes/fatDirEntrySize)
		if label != "" || end || err != nil {
			return label, err
		}
		e, ok, err := readAt(r, int64(fatStart+next*4), 4)
		if !ok {
			return "", err
		}
		next = uint64(le.Uint32(e) & 0x0fffffff)
	}
	return "", nil
}

// scanFATDir looks through n directory entries at off for the volume
// label. end is true once the directory's end marker is seen.
func scanFATDir(r io.ReaderAt, off, n uint64) (label string, end bool, err error) {
	const chunk = 4096 / fatDirEntrySize
	for i := uint64(0); i < n; i += chunk {
		k := min(chunk, n-i)
		buf, ok, err := readAt(r, int64(off+i*fatDirEntrySize), int(k*fatDirEntrySize))
		if !ok {
			return "", true, err
		}
		for j := uint64(0); j < k; j++ {
			e := buf[j*fatDirEntrySize : (j+1)*fatDirEntrySize]
			attr := e[11]
			switch {
			case e[0] == 0:
				return "", true, nil
			case e[0] == fatEntryFree,
				le.Uint16(e[20:]) != 0 || le.Uint16(e[26:]) != 0, // has clusters: a file
				attr&fatAttrMask == fatAttrLongName:
				continue
			case attr&(fatAttrVolumeID|fatAttrDir) == fatAttrVolumeID:
				return string(e[:11]), true, nil
			}
		}
	}
	return "", false, nil
}
