package blockdev

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

const (
	testUUID  = "0b3c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
	testUUID2 = "f00dcafe-0000-4000-8000-0123456789ab"
)

func TestProbe(t *testing.T) {
	withMD := func(img []byte, off int64) []byte {
		makeMD1(t, img, off, testUUID2, "host:0")
		return img
	}
	big := func(img []byte, size int) []byte { return append(img, make([]byte, size-len(img))...) }
	tests := []struct {
		name string
		img  []byte
		want Filesystem
	}{
		{"ext4", makeExt(t, extOpts{uuid: testUUID, label: "dumps", compat: 0x4, incompat: 0x2c2, roCompat: 0x46b}),
			Filesystem{"ext4", testUUID, "dumps"}},
		{"ext4 no journal", makeExt(t, extOpts{uuid: testUUID, incompat: 0x40}), Filesystem{"ext4", testUUID, ""}},
		{"ext3", makeExt(t, extOpts{uuid: testUUID, label: "old", compat: 0x4, incompat: 0x2, roCompat: 0x3}),
			Filesystem{"ext3", testUUID, "old"}},
		{"ext2", makeExt(t, extOpts{uuid: testUUID, label: "older", incompat: 0x2, roCompat: 0x1}),
			Filesystem{"ext2", testUUID, "older"}},
		{"jbd", makeExt(t, extOpts{uuid: testUUID, incompat: 0x8}), Filesystem{"jbd", testUUID, ""}},
		{"ext full label", makeExt(t, extOpts{uuid: testUUID, label: "0123456789abcdef", incompat: 0x40}),
			Filesystem{"ext4", testUUID, "0123456789abcdef"}},
		{"ext zero uuid", makeExt(t, extOpts{uuid: "00000000-0000-0000-0000-000000000000", incompat: 0x40}),
			Filesystem{"ext4", "", ""}},
		{"xfs", makeXFS(t, testUUID, "crash"), Filesystem{"xfs", testUUID, "crash"}},
		{"xfs 12 byte label", makeXFS(t, testUUID, "abcdefghijkl"), Filesystem{"xfs", testUUID, "abcdefghijkl"}},
		{"btrfs", makeBtrfs(t, testUUID, "a much longer btrfs label"), Filesystem{"btrfs", testUUID, "a much longer btrfs label"}},
		{"fat16 dir label", makeFAT16(0x1234ABCD, "BOOTLBL", "DIRLBL"), Filesystem{"vfat", "1234-ABCD", "DIRLBL"}},
		{"fat16 boot label", makeFAT16(0xDEADBEEF, "BOOTLBL", ""), Filesystem{"vfat", "DEAD-BEEF", "BOOTLBL"}},
		{"fat16 no label", makeFAT16(0x0000000F, "NO NAME", ""), Filesystem{"vfat", "0000-000F", ""}},
		{"fat16 dir NO NAME", makeFAT16(1, "BOOT", "NO NAME"), Filesystem{"vfat", "0000-0001", "BOOT"}},
		{"fat32 chained dir", makeFAT32(0xCAFE0042, "BOOT32", "ROOTDIR"), Filesystem{"vfat", "CAFE-0042", "ROOTDIR"}},
		{"fat32 boot label", makeFAT32(0xCAFE0042, "BOOT32", ""), Filesystem{"vfat", "CAFE-0042", "BOOT32"}},
		{"md 1.0 over ext4", withMD(big(makeExt(t, extOpts{uuid: testUUID, incompat: 0x40}), 1<<20), (1<<20)-0x2000),
			Filesystem{"linux_raid_member", testUUID2, "host:0"}},
		{"md 1.2", withMD(make([]byte, 1<<20), 0x1000), Filesystem{"linux_raid_member", testUUID2, "host:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Probe(bytes.NewReader(tt.img), int64(len(tt.img)))
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
			if got.Mountable() != (tt.want.FSType != "jbd" && tt.want.FSType != "linux_raid_member") {
				t.Errorf("Mountable() = %v", got.Mountable())
			}
		})
	}
}

func TestProbeMD090(t *testing.T) {
	const size = 1 << 20
	for _, order := range []struct {
		name string
		put  func([]byte, uint32)
	}{{"little-endian", le.PutUint32}, {"big-endian", be.PutUint32}} {
		img := makeExt(t, extOpts{uuid: testUUID, incompat: 0x40})
		img = append(img, make([]byte, size-len(img))...)
		sb := img[size-0x10000:]
		order.put(sb[0:], 0xa92b4efc)
		order.put(sb[4:], 0)
		order.put(sb[8:], 90)
		order.put(sb[20:], 0x0b3c2d4e)
		order.put(sb[32:], 512) // KiB of data
		order.put(sb[52:], 0x5f604a7b)
		order.put(sb[56:], 0x8c9d0e1f)
		order.put(sb[60:], 0x2a3b4c5d)
		got, err := Probe(bytes.NewReader(img), size)
		if err != nil {
			t.Fatalf("%s: %v", order.name, err)
		}
		if want := (Filesystem{"linux_raid_member", testUUID, ""}); *got != want {
			t.Errorf("%s: got %+v, want %+v", order.name, *got, want)
		}
		// Without the size the end of the device is not looked at.
		got, err = Probe(bytes.NewReader(img), 0)
		if err != nil || got.FSType != "ext4" {
			t.Errorf("%s, size unknown: %+v, %v", order.name, got, err)
		}
	}
}

func TestProbeNothing(t *testing.T) {
	rnd := make([]byte, 1<<17)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	ext := makeExt(t, extOpts{uuid: testUUID, incompat: 0x40})
	badBlock := makeExt(t, extOpts{uuid: testUUID, incompat: 0x40})
	le.PutUint32(badBlock[1024+24:], 40)
	xfsBad := makeXFS(t, testUUID, "x")
	be.PutUint32(xfsBad[88:], 0) // no allocation groups
	btrfsMoved := makeBtrfs(t, testUUID, "x")
	le.PutUint64(btrfsMoved[0x10030:], 0x4000000) // a backup copy's bytenr
	fatBadMedia := makeFAT16(1, "X", "")
	fatBadMedia[0x15] = 0x12
	fatNoSig := makeFAT16(1, "X", "")
	copy(fatNoSig[0x36:], "        ")
	fatNoSig[510] = 0
	mbrOnly := make([]byte, 4096)
	mbrOnly[510], mbrOnly[511] = 0x55, 0xAA
	mbrOnly[446+4] = 0x83

	for name, img := range map[string][]byte{
		"empty":            nil,
		"zeros":            make([]byte, 1<<17),
		"random":           rnd,
		"ext truncated":    ext[:1024+57],
		"ext too short":    ext[:1100],
		"ext bad block":    badBlock,
		"xfs bad geometry": xfsBad,
		"xfs truncated":    makeXFS(t, testUUID, "x")[:100],
		"btrfs truncated":  makeBtrfs(t, testUUID, "x")[:0x10100],
		"btrfs bytenr":     btrfsMoved,
		"fat bad media":    fatBadMedia,
		"fat unsigned":     fatNoSig,
		"fat truncated":    makeFAT16(1, "X", "")[:300],
		"mbr":              mbrOnly,
	} {
		fs, err := Probe(bytes.NewReader(img), int64(len(img)))
		if !errors.Is(err, ErrNoFilesystem) {
			t.Errorf("%s: got %+v, %v; want ErrNoFilesystem", name, fs, err)
			continue
		}
		if !strings.Contains(err.Error(), "no filesystem recognised") {
			t.Errorf("%s: message %q", name, err)
		}
	}
}

func TestProbeAmbivalent(t *testing.T) {
	img := makeXFS(t, testUUID, "new")
	img = append(img, make([]byte, 4096-len(img))...)
	copy(img[1024:], makeExt(t, extOpts{uuid: testUUID2, incompat: 0x40})[1024:2048])
	_, err := Probe(bytes.NewReader(img), int64(len(img)))
	if !errors.Is(err, ErrAmbivalent) || !strings.Contains(err.Error(), "ext4, xfs") {
		t.Errorf("err = %v, want ErrAmbivalent naming ext4 and xfs", err)
	}
}

// failingReader fails reads past limit with EIO, like a bad sector.
type failingReader struct {
	r     io.ReaderAt
	limit int64
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, syscall.EIO
	}
	return f.r.ReadAt(p, off)
}

func TestProbeIOError(t *testing.T) {
	img := make([]byte, 1<<17)
	_, err := Probe(failingReader{bytes.NewReader(img), 0}, int64(len(img)))
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrNoFilesystem) {
		t.Errorf("err = %v, want EIO", err)
	}
	// A filesystem readable where its superblock is still found when
	// other probes hit the bad sector.
	ext := makeExt(t, extOpts{uuid: testUUID, incompat: 0x40})
	ext = append(ext, make([]byte, 1<<17-len(ext))...)
	fs, err := Probe(failingReader{bytes.NewReader(ext), 0x8000}, int64(len(ext)))
	if err != nil || fs.FSType != "ext4" {
		t.Errorf("got %+v, %v", fs, err)
	}
}

func TestFormatSize(t *testing.T) {
	for n, w := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 30: "1.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := formatSize(n); got != w {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, w)
		}
	}
}

// FuzzProbe probes images made by editing valid ones (fixture.Patched:
// the input is an image number and edits), so that inputs stay small
// while the images span the 64 KiB to the btrfs superblock and more.
func FuzzProbe(f *testing.F) {
	bases := [][]byte{
		makeExt(f, extOpts{uuid: testUUID, label: "x", incompat: 0x40}),
		makeXFS(f, testUUID, "x"),
		makeFAT16(1, "A", "B"),
		makeFAT32(1, "A", "B"),
		makeBtrfs(f, testUUID, "x"),
		makeGPT(f, 64<<10, 512, testUUID, []gptPart{{typ: testUUID, uuid: testUUID2, name: "p", first: 40, last: 80}}),
	}
	for i := range bases {
		f.Add([]byte{byte(i)})
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		data := fixture.Patched(bases, in)
		r := bytes.NewReader(data)
		fs, err := Probe(r, int64(len(data)))
		if (fs == nil) == (err == nil) {
			t.Fatalf("Probe = %v, %v", fs, err)
		}
		if err != nil && !errors.Is(err, ErrNoFilesystem) && !errors.Is(err, ErrAmbivalent) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if fs != nil && fs.FSType == "vfat" && len(fs.UUID) != 9 {
			t.Fatalf("vfat UUID %q", fs.UUID)
		}
		tab, err := ReadPartitionTable(r, int64(len(data)), 0)
		if (tab == nil) == (err == nil) {
			t.Fatalf("ReadPartitionTable = %v, %v", tab, err)
		}
		if tab != nil {
			for _, p := range tab.Partitions {
				if p.Number < 1 || p.Size <= 0 || p.Start < 0 {
					t.Fatalf("partition %+v", p)
				}
			}
		}
	})
}
