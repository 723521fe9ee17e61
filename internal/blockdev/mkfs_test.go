package blockdev

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// Tests against images made by the real mkfs and sfdisk tools, checked
// against what was asked for and against blkid. Each needs its tool
// (fixture.NeedTool; Debian: e2fsprogs, xfsprogs, dosfstools, btrfs-progs,
// fdisk, util-linux).

// sparseImage creates an image file of size bytes in a test directory.
func sparseImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// blkid returns what `blkid -p -o export` says about an image, or nil if
// blkid is not installed.
func blkid(t *testing.T, img string) map[string]string {
	t.Helper()
	p, err := exec.LookPath("blkid")
	if err != nil {
		if p, err = exec.LookPath("/usr/sbin/blkid"); err != nil {
			t.Log("blkid not installed: not comparing with it")
			return nil
		}
	}
	out := run(t, "", p, "-p", "-o", "export", img)
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = strings.ReplaceAll(v, `\`, "") // export escapes with backslashes
		}
	}
	return kv
}

func probeFile(t *testing.T, img string) *Filesystem {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Probe(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestMkfs(t *testing.T) {
	tests := []struct {
		name string
		tool string
		size int64
		args func(img string) []string
		want Filesystem
	}{
		{"ext4", "mkfs.ext4", 16 << 20, func(img string) []string {
			return []string{"-q", "-F", "-L", "gokdump-ext4", "-U", testUUID, img}
		}, Filesystem{"ext4", testUUID, "gokdump-ext4"}},
		{"ext3", "mkfs.ext3", 16 << 20, func(img string) []string {
			return []string{"-q", "-F", "-L", "e3", "-U", testUUID2, img}
		}, Filesystem{"ext3", testUUID2, "e3"}},
		{"ext2", "mkfs.ext2", 8 << 20, func(img string) []string {
			return []string{"-q", "-F", "-U", testUUID, img}
		}, Filesystem{"ext2", testUUID, ""}},
		{"xfs", "mkfs.xfs", 320 << 20, func(img string) []string {
			return []string{"-q", "-f", "-L", "gokdumpxfs", "-m", "uuid=" + testUUID, img}
		}, Filesystem{"xfs", testUUID, "gokdumpxfs"}},
		{"fat12", "mkfs.vfat", 1 << 20, func(img string) []string {
			return []string{"-n", "SMALL", "-i", "1234ABCD", img}
		}, Filesystem{"vfat", "1234-ABCD", "SMALL"}},
		{"fat16", "mkfs.vfat", 64 << 20, func(img string) []string {
			return []string{"-F", "16", "-n", "GOKDUMP16", "-i", "0badf00d", img}
		}, Filesystem{"vfat", "0BAD-F00D", "GOKDUMP16"}},
		{"fat32", "mkfs.vfat", 128 << 20, func(img string) []string {
			return []string{"-F", "32", "-n", "GOKDUMP32", "-i", "DEADBEEF", img}
		}, Filesystem{"vfat", "DEAD-BEEF", "GOKDUMP32"}},
		{"fat no label", "mkfs.vfat", 4 << 20, func(img string) []string {
			return []string{"-i", "00000001", img}
		}, Filesystem{"vfat", "0000-0001", ""}},
		{"btrfs", "mkfs.btrfs", 256 << 20, func(img string) []string {
			return []string{"-q", "-f", "-L", "gokdump btrfs", "-U", testUUID, img}
		}, Filesystem{"btrfs", testUUID, "gokdump btrfs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool := fixture.NeedTool(t, tt.tool)
			img := sparseImage(t, tt.size)
			run(t, "", tool, tt.args(img)...)
			got := probeFile(t, img)
			if *got != tt.want {
				t.Errorf("Probe = %+v, want %+v", *got, tt.want)
			}
			kv := blkid(t, img)
			if kv == nil {
				return
			}
			// blkid calls ext2 "ext4" on systems whose kernel
			// mounts ext2 with the ext4 driver and lacks ext2.
			if kv["TYPE"] != got.FSType && !(got.FSType == "ext2" && kv["TYPE"] == "ext4") {
				t.Errorf("TYPE: blkid %q, we %q", kv["TYPE"], got.FSType)
			}
			if kv["UUID"] != got.UUID || kv["LABEL"] != got.Label {
				t.Errorf("blkid says UUID=%q LABEL=%q, we %q %q", kv["UUID"], kv["LABEL"], got.UUID, got.Label)
			}
		})
	}
}

// TestFatRelabel checks that the root directory label wins over the boot
// sector's after fatlabel changes it.
func TestFatRelabel(t *testing.T) {
	mkfs := fixture.NeedTool(t, "mkfs.vfat")
	fatlabel := fixture.NeedTool(t, "fatlabel")
	img := sparseImage(t, 8<<20)
	run(t, "", mkfs, "-n", "FIRST", "-i", "11112222", img)
	run(t, "", fatlabel, img, "SECOND")
	got := probeFile(t, img)
	if got.Label != "SECOND" {
		t.Errorf("label %q after relabel", got.Label)
	}
	if kv := blkid(t, img); kv != nil && kv["LABEL"] != got.Label {
		t.Errorf("blkid LABEL=%q, we %q", kv["LABEL"], got.Label)
	}
}

type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func readTableFile(t *testing.T, img string, sectorSize int) *Table {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, err := ReadPartitionTable(f, st.Size(), sectorSize)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// compareSfdisk checks a table against sfdisk's own reading of the image.
func compareSfdisk(t *testing.T, sfdisk, img string, tab *Table) {
	t.Helper()
	var j sfdiskJSON
	if err := json.Unmarshal([]byte(run(t, "", sfdisk, "--json", img)), &j); err != nil {
		t.Fatal(err)
	}
	pt := j.PartitionTable
	if pt.Label != tab.Type || !strings.EqualFold(strings.TrimPrefix(pt.ID, "0x"), tab.UUID) {
		t.Errorf("sfdisk: %s %s; we: %s %s", pt.Label, pt.ID, tab.Type, tab.UUID)
	}
	if len(pt.Partitions) != len(tab.Partitions) {
		t.Fatalf("sfdisk sees %d partitions, we %d", len(pt.Partitions), len(tab.Partitions))
	}
	for i, sp := range pt.Partitions {
		p := tab.Partitions[i]
		num := strings.TrimPrefix(sp.Node, img)
		if num != strconv.Itoa(p.Number) || sp.Start*pt.SectorSize != p.Start || sp.Size*pt.SectorSize != p.Size {
			t.Errorf("partition %d: sfdisk %+v, we %+v", i, sp, p)
		}
		if tab.Type == "gpt" && (!strings.EqualFold(sp.UUID, p.UUID) || sp.Name != p.Label || !strings.EqualFold(sp.Type, p.Type)) {
			t.Errorf("partition %d: sfdisk %+v, we %+v", i, sp, p)
		}
		if tab.Type == "dos" && "0x"+sp.Type != p.Type && "0x0"+sp.Type != p.Type {
			t.Errorf("partition %d type: sfdisk %q, we %q", i, sp.Type, p.Type)
		}
	}
	if kv := blkid(t, img); kv != nil && (kv["PTTYPE"] != tab.Type || kv["PTUUID"] != tab.UUID) {
		t.Errorf("blkid PTTYPE=%q PTUUID=%q, we %q %q", kv["PTTYPE"], kv["PTUUID"], tab.Type, tab.UUID)
	}
}

const linuxFS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

func TestSfdiskGPT(t *testing.T) {
	sfdisk := fixture.NeedTool(t, "sfdisk")
	img := sparseImage(t, 64<<20)
	script := `label: gpt
label-id: 3A9F1C2B-0D4E-4F60-8A7B-9C0D1E2F3A4B
start=1MiB, size=8MiB, type=` + linuxFS + `, uuid=6F1C2D3E-4A5B-4C6D-8E7F-A0B1C2D3E4F5, name="gokdump dumps"
start=10MiB, size=4MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=11111111-2222-4333-8444-555555555555, name="swap ☃"
start=20MiB, size=1MiB, type=` + linuxFS + `, uuid=abcdef01-2345-4678-9abc-def012345678
`
	run(t, script, sfdisk, "-q", img)
	tab := readTableFile(t, img, 0)
	want := []Partition{
		{1, 1 << 20, 8 << 20, "6f1c2d3e-4a5b-4c6d-8e7f-a0b1c2d3e4f5", "gokdump dumps", strings.ToLower(linuxFS)},
		{2, 10 << 20, 4 << 20, "11111111-2222-4333-8444-555555555555", "swap ☃", "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"},
		{3, 20 << 20, 1 << 20, "abcdef01-2345-4678-9abc-def012345678", "", strings.ToLower(linuxFS)},
	}
	if tab.Type != "gpt" || tab.UUID != "3a9f1c2b-0d4e-4f60-8a7b-9c0d1e2f3a4b" || len(tab.Partitions) != 3 {
		t.Fatalf("table %+v", tab)
	}
	for i, w := range want {
		if tab.Partitions[i] != w {
			t.Errorf("partition %d = %+v, want %+v", i, tab.Partitions[i], w)
		}
	}
	compareSfdisk(t, sfdisk, img, tab)

	// Damage the primary header: the backup at the end still reads.
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), 512+60); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := readTableFile(t, img, 512); len(got.Partitions) != 3 || got.Partitions[0] != want[0] {
		t.Errorf("from the backup GPT: %+v", got)
	}
}

func TestSfdiskDOS(t *testing.T) {
	sfdisk := fixture.NeedTool(t, "sfdisk")
	img := sparseImage(t, 32<<20)
	run(t, `label: dos
label-id: 0x1234abcd
start=2048, size=4096, type=83, bootable
start=8192, size=32768, type=5
start=10240, size=2048, type=83
start=14336, size=4096, type=82
start=20480, size=1024, type=c
start=45056, size=2048, type=7
`, sfdisk, "-q", img)
	tab := readTableFile(t, img, 512)
	want := []Partition{
		{1, 2048 * 512, 4096 * 512, "1234abcd-01", "", "0x83"},
		{2, 8192 * 512, 32768 * 512, "1234abcd-02", "", "0x05"},
		{3, 45056 * 512, 2048 * 512, "1234abcd-03", "", "0x07"},
		{5, 10240 * 512, 2048 * 512, "1234abcd-05", "", "0x83"},
		{6, 14336 * 512, 4096 * 512, "1234abcd-06", "", "0x82"},
		{7, 20480 * 512, 1024 * 512, "1234abcd-07", "", "0x0c"},
	}
	if tab.Type != "dos" || tab.UUID != "1234abcd" || len(tab.Partitions) != len(want) {
		t.Fatalf("table %+v", tab)
	}
	for i, w := range want {
		if tab.Partitions[i] != w {
			t.Errorf("partition %d = %+v, want %+v", i, tab.Partitions[i], w)
		}
	}
	// sfdisk lists in number order; so do we once sorted that way.
	sorted := &Table{Type: tab.Type, UUID: tab.UUID}
	for _, n := range []int{1, 2, 3, 5, 6, 7} {
		sorted.Partitions = append(sorted.Partitions, *tab.Partition(n))
	}
	compareSfdisk(t, sfdisk, img, sorted)
}

// A FAT filesystem on a whole device ends its first sector in 55 AA like
// an MBR, but it is not a partition table.
func TestFatIsNotMBR(t *testing.T) {
	mkfs := fixture.NeedTool(t, "mkfs.vfat")
	img := sparseImage(t, 8<<20)
	run(t, "", mkfs, "-n", "FLOPPY", img)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if tab, err := ReadPartitionTable(f, 8<<20, 0); !errors.Is(err, ErrNoPartitionTable) {
		t.Errorf("ReadPartitionTable = %+v, %v; want ErrNoPartitionTable", tab, err)
	}
}
