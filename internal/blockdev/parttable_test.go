package blockdev

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestGPT(t *testing.T) {
	parts := []gptPart{
		{typ: linuxFS, uuid: testUUID, name: "dumps", first: 256, last: 511, index: 0},
		{typ: linuxFS, uuid: testUUID2, name: "third slot", first: 512, last: 767, index: 2},
	}
	for _, ss := range []int{512, 4096} {
		img := makeGPT(t, 1024*int64(ss), ss, "3a9f1c2b-0d4e-4f60-8a7b-9c0d1e2f3a4b", parts)
		for _, given := range []int{0, ss} {
			tab, err := ReadPartitionTable(bytes.NewReader(img), int64(len(img)), given)
			if err != nil {
				t.Fatalf("sector size %d (given %d): %v", ss, given, err)
			}
			want := []Partition{
				{1, 256 * int64(ss), 256 * int64(ss), testUUID, "dumps", strings.ToLower(linuxFS)},
				{3, 512 * int64(ss), 256 * int64(ss), testUUID2, "third slot", strings.ToLower(linuxFS)},
			}
			if tab.Type != "gpt" || tab.UUID != "3a9f1c2b-0d4e-4f60-8a7b-9c0d1e2f3a4b" || len(tab.Partitions) != 2 {
				t.Fatalf("sector size %d: %+v", ss, tab)
			}
			for i := range want {
				if tab.Partitions[i] != want[i] {
					t.Errorf("sector size %d: partition %+v, want %+v", ss, tab.Partitions[i], want[i])
				}
			}
			if tab.Partition(3) == nil || tab.Partition(2) != nil {
				t.Errorf("Partition(n) lookup wrong")
			}
		}
		// The wrong sector size given finds nothing.
		other := 4096
		if ss == 4096 {
			other = 512
		}
		if _, err := ReadPartitionTable(bytes.NewReader(img), int64(len(img)), other); err == nil {
			t.Errorf("sector size %d read as %d", ss, other)
		}
	}
}

func TestGPTDamage(t *testing.T) {
	const ss = 512
	fresh := func() []byte {
		return makeGPT(t, 1024*ss, ss, testUUID, []gptPart{{typ: linuxFS, uuid: testUUID2, name: "p", first: 40, last: 99}})
	}
	read := func(img []byte, size int64) (*Table, error) {
		return ReadPartitionTable(bytes.NewReader(img), size, 0)
	}

	// Primary entries damaged: the backup copy serves.
	img := fresh()
	img[2*ss+20] ^= 0xff
	if tab, err := read(img, int64(len(img))); err != nil || len(tab.Partitions) != 1 || tab.Partitions[0].UUID != testUUID2 {
		t.Errorf("backup not used: %+v, %v", tab, err)
	}
	// ... unless the size, and so the backup's place, is unknown.
	if _, err := read(img, 0); err == nil || !strings.Contains(err.Error(), "bad CRC") {
		t.Errorf("err = %v, want bad CRC", err)
	}
	// Both damaged.
	img[len(img)-ss-32*ss+20] ^= 0xff
	if _, err := read(img, int64(len(img))); err == nil {
		t.Errorf("both copies damaged, no error")
	}

	// A header claiming a huge entry array is refused before reading it.
	img = fresh()
	le.PutUint32(img[ss+80:], 1<<24)
	h := img[ss : ss+92]
	le.PutUint32(h[16:], 0)
	le.PutUint32(h[16:], crc32IEEE(h))
	if _, err := read(img, 0); err == nil || !strings.Contains(err.Error(), "entries of") {
		t.Errorf("err = %v, want refusal of the entry count", err)
	}

	// No 55 AA at all.
	if _, err := read(make([]byte, 4096), 4096); !errors.Is(err, ErrNoPartitionTable) {
		t.Errorf("zeros: %v", err)
	}
}

func TestMBR(t *testing.T) {
	img := make([]byte, 64<<10)
	le.PutUint32(img[440:], 0xCAFE0001)
	entry := func(sector []byte, i int, typ byte, start, length uint32) {
		e := sector[446+16*i:]
		e[4] = typ
		le.PutUint32(e[8:], start)
		le.PutUint32(e[12:], length)
	}
	img[510], img[511] = 0x55, 0xAA
	entry(img, 0, 0x83, 1, 10)
	entry(img, 3, 0x0f, 20, 100) // extended, in slot 4
	// EBR chain: 20 -> 40 -> 20 again (a loop, which must end the walk).
	ebr1 := img[20*512:]
	ebr1[510], ebr1[511] = 0x55, 0xAA
	entry(ebr1, 0, 0x83, 2, 5)  // sectors 22..26
	entry(ebr1, 1, 0x05, 20, 5) // next EBR at 20+20 = 40
	ebr2 := img[40*512:]
	ebr2[510], ebr2[511] = 0x55, 0xAA
	entry(ebr2, 0, 0x07, 1, 3)  // sectors 41..43
	entry(ebr2, 1, 0x05, 0, 10) // back to 20: a loop
	tab, err := ReadPartitionTable(bytes.NewReader(img), int64(len(img)), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{1, 512, 10 * 512, "cafe0001-01", "", "0x83"},
		{4, 20 * 512, 100 * 512, "cafe0001-04", "", "0x0f"},
		{5, 22 * 512, 5 * 512, "cafe0001-05", "", "0x83"},
		{6, 41 * 512, 3 * 512, "cafe0001-06", "", "0x07"},
	}
	if tab.Type != "dos" || tab.UUID != "cafe0001" || len(tab.Partitions) != len(want) {
		t.Fatalf("%+v", tab)
	}
	for i := range want {
		if tab.Partitions[i] != want[i] {
			t.Errorf("partition %+v, want %+v", tab.Partitions[i], want[i])
		}
	}

	// Boot code where entries should be: not a table.
	img[446] = 0x7c
	if _, err := ReadPartitionTable(bytes.NewReader(img), int64(len(img)), 0); !errors.Is(err, ErrNoPartitionTable) {
		t.Errorf("bad boot flag: %v", err)
	}
	// A FAT boot sector is not a table either.
	if _, err := ReadPartitionTable(bytes.NewReader(makeFAT16(1, "A", "")), 0, 0); !errors.Is(err, ErrNoPartitionTable) {
		t.Errorf("FAT: %v", err)
	}
}
