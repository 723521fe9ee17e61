package blockdev

import (
	"encoding/hex"
	"hash/crc32"
	"strings"
	"testing"
	"unicode/utf16"
)

// Builders of minimal superblocks and partition tables, enough for the
// probes, with the fields where the kernel's and blkid's sources put them.

func uuidBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("bad uuid %q", s)
	}
	return b
}

// guidBytes is uuidBytes in UEFI's mixed-endian layout.
func guidBytes(t testing.TB, s string) []byte {
	b := uuidBytes(t, s)
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return b
}

type extOpts struct {
	uuid, label                string
	compat, incompat, roCompat uint32
}

func makeExt(t testing.TB, o extOpts) []byte {
	img := make([]byte, 4096)
	sb := img[1024:]
	le.PutUint32(sb[24:], 2) // 4 KiB blocks
	le.PutUint16(sb[56:], 0xEF53)
	le.PutUint32(sb[92:], o.compat)
	le.PutUint32(sb[96:], o.incompat)
	le.PutUint32(sb[100:], o.roCompat)
	copy(sb[104:], uuidBytes(t, o.uuid))
	copy(sb[120:136], o.label)
	return img
}

func makeXFS(t testing.TB, uuid, label string) []byte {
	img := make([]byte, 512)
	copy(img, "XFSB")
	be.PutUint32(img[4:], 4096)
	be.PutUint64(img[8:], 4*16384)
	copy(img[32:], uuidBytes(t, uuid))
	be.PutUint32(img[80:], 1)
	be.PutUint32(img[84:], 16384)
	be.PutUint32(img[88:], 4)
	be.PutUint16(img[102:], 512)
	be.PutUint16(img[104:], 512)
	copy(img[108:120], label)
	img[120], img[121], img[122], img[123] = 12, 9, 9, 3
	img[127] = 25
	return img
}

func makeBtrfs(t testing.TB, uuid, label string) []byte {
	img := make([]byte, 0x10000+0x1000)
	sb := img[0x10000:]
	copy(sb[0x20:], uuidBytes(t, uuid))
	le.PutUint64(sb[0x30:], 0x10000)
	copy(sb[0x40:], "_BHRfS_M")
	copy(sb[0x12B:0x12B+256], label)
	return img
}

// fatLabel pads a label to the 11 bytes FAT stores.
func fatLabel(s string) string { return (s + "           ")[:11] }

func fatDirEntry(name string, attr byte, cluster uint16) []byte {
	e := make([]byte, 32)
	copy(e, fatLabel(name))
	e[11] = attr
	le.PutUint16(e[26:], cluster)
	return e
}

// makeFAT16 builds a FAT16 volume's first sectors: boot sector, two FATs
// of 40 sectors, a 512-entry root directory holding dirLabel ("" for none)
// after a file entry.
func makeFAT16(serial uint32, bootLabel, dirLabel string) []byte {
	img := make([]byte, (1+80+32)*512)
	bs := img
	copy(bs, []byte{0xEB, 0x3C, 0x90})
	copy(bs[3:], "mkfs.fat")
	le.PutUint16(bs[0x0b:], 512)
	bs[0x0d] = 4
	le.PutUint16(bs[0x0e:], 1)
	bs[0x10] = 2
	le.PutUint16(bs[0x11:], 512)
	le.PutUint16(bs[0x13:], 40000)
	bs[0x15] = 0xF8
	le.PutUint16(bs[0x16:], 40)
	bs[0x26] = 0x29
	le.PutUint32(bs[0x27:], serial)
	copy(bs[0x2b:], fatLabel(bootLabel))
	copy(bs[0x36:], "FAT16   ")
	bs[510], bs[511] = 0x55, 0xAA
	root := img[(1+80)*512:]
	copy(root, fatDirEntry("README  TXT", 0x20, 5))
	copy(root[32:], fatDirEntry("", 0x0f, 0)) // a long-name entry
	if dirLabel != "" {
		copy(root[64:], fatDirEntry(dirLabel, 0x08, 0))
	}
	return img
}

// makeFAT32 builds a FAT32 volume whose root directory spans clusters 2
// and 3 (one 512-byte sector each), the label entry in the second.
func makeFAT32(serial uint32, bootLabel, dirLabel string) []byte {
	const reserved, fatLen = 32, 600
	dataStart := (reserved + 2*fatLen) * 512
	img := make([]byte, dataStart+2*512)
	bs := img
	copy(bs, []byte{0xEB, 0x58, 0x90})
	le.PutUint16(bs[0x0b:], 512)
	bs[0x0d] = 1
	le.PutUint16(bs[0x0e:], reserved)
	bs[0x10] = 2
	bs[0x15] = 0xF8
	le.PutUint32(bs[0x20:], 70000)
	le.PutUint32(bs[0x24:], fatLen)
	le.PutUint32(bs[0x2c:], 2)
	le.PutUint32(bs[0x43:], serial)
	copy(bs[0x47:], fatLabel(bootLabel))
	copy(bs[0x52:], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xAA
	fat := img[reserved*512:]
	le.PutUint32(fat[2*4:], 3)          // cluster 2 -> 3
	le.PutUint32(fat[3*4:], 0x0FFFFFFF) // end of chain
	c2 := img[dataStart:]
	for i := range 16 {
		copy(c2[i*32:], fatDirEntry("FILE"+string(rune('A'+i))+"   BIN", 0x20, uint16(10+i)))
	}
	if dirLabel != "" {
		copy(img[dataStart+512:], fatDirEntry(dirLabel, 0x08, 0))
	}
	return img
}

// makeMD1 puts an md metadata 1.x superblock at off of img.
func makeMD1(t testing.TB, img []byte, off int64, uuid, name string) {
	sb := img[off:]
	le.PutUint32(sb, 0xa92b4efc)
	le.PutUint32(sb[4:], 1)
	copy(sb[16:], uuidBytes(t, uuid))
	copy(sb[32:64], name)
	le.PutUint64(sb[144:], uint64(off)>>9)
}

type gptPart struct {
	typ, uuid, name string
	first, last     uint64
	index           int // entry slot
}

// makeGPT writes a protective MBR, primary and backup GPT for a disk of
// size bytes with sectors of ss bytes.
func makeGPT(t testing.TB, size int64, ss int, disk string, parts []gptPart) []byte {
	img := make([]byte, size)
	lastLBA := uint64(size/int64(ss)) - 1
	mbr := img[:512]
	e := mbr[446:]
	e[4] = 0xEE
	le.PutUint32(e[8:], 1)
	le.PutUint32(e[12:], uint32(min(lastLBA, 0xffffffff)))
	mbr[510], mbr[511] = 0x55, 0xAA

	const n, esize = 128, 128
	entries := make([]byte, n*esize)
	for _, p := range parts {
		en := entries[p.index*esize:]
		copy(en[0:], guidBytes(t, p.typ))
		copy(en[16:], guidBytes(t, p.uuid))
		le.PutUint64(en[32:], p.first)
		le.PutUint64(en[40:], p.last)
		for i, c := range utf16.Encode([]rune(p.name)) {
			le.PutUint16(en[56+2*i:], c)
		}
	}
	entrySectors := uint64(n * esize / ss)
	header := func(my, alt, entriesLBA uint64) []byte {
		h := make([]byte, 92)
		copy(h, "EFI PART")
		le.PutUint32(h[8:], 0x00010000)
		le.PutUint32(h[12:], 92)
		le.PutUint64(h[24:], my)
		le.PutUint64(h[32:], alt)
		le.PutUint64(h[40:], 2+entrySectors)
		le.PutUint64(h[48:], lastLBA-1-entrySectors)
		copy(h[56:], guidBytes(t, disk))
		le.PutUint64(h[72:], entriesLBA)
		le.PutUint32(h[80:], n)
		le.PutUint32(h[84:], esize)
		le.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	copy(img[ss:], header(1, lastLBA, 2))
	copy(img[2*ss:], entries)
	backupEntries := lastLBA - entrySectors
	copy(img[backupEntries*uint64(ss):], entries)
	copy(img[lastLBA*uint64(ss):], header(lastLBA, 1, backupEntries))
	return img
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
