package blockdev

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type fakeDev struct {
	name         string
	major, minor int
	partition    int    // 0 for a whole device
	parent       string // whole device of a partition
	content      []byte // the device node's contents; nil: no node
	size         int64  // bytes; 0 means len(content)
}

// fakeTree is a directory shaped like /sys and /dev: sysfs devices under
// sys/devices/virtual/block, linked from sys/class/block, and regular files
// standing in for device nodes.
type fakeTree struct {
	t    *testing.T
	root string
}

func newFakeTree(t *testing.T) *fakeTree {
	root := t.TempDir()
	for _, d := range []string{"sys/class/block", "sys/devices/virtual/block", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeTree{t, root}
}

func (f *fakeTree) sys() Sys {
	return Sys{SysDir: filepath.Join(f.root, "sys"), DevDir: filepath.Join(f.root, "dev")}
}

// write and add report failures with Errorf, not Fatal: TestWait calls
// add from another goroutine.
func (f *fakeTree) write(path, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Error(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		f.t.Error(err)
	}
}

// add creates the device's node and sysfs directory, then its
// /sys/class/block link, last, as the kernel makes it appear at once.
func (f *fakeTree) add(d fakeDev) {
	f.t.Helper()
	rel := d.name
	if d.partition != 0 {
		rel = filepath.Join(d.parent, d.name)
	}
	dir := filepath.Join(f.root, "sys/devices/virtual/block", rel)
	size := d.size
	if size == 0 {
		size = int64(len(d.content))
	}
	f.write(filepath.Join(dir, "dev"), strconv.Itoa(d.major)+":"+strconv.Itoa(d.minor)+"\n")
	f.write(filepath.Join(dir, "size"), strconv.FormatInt(size/512, 10)+"\n")
	if d.partition != 0 {
		f.write(filepath.Join(dir, "partition"), strconv.Itoa(d.partition)+"\n")
	} else {
		f.write(filepath.Join(dir, "queue", "logical_block_size"), "512\n")
	}
	if d.content != nil {
		f.write(filepath.Join(f.root, "dev", d.name), string(d.content))
	}
	link := filepath.Join(f.root, "sys/class/block", d.name)
	if err := os.Symlink(filepath.Join("../../devices/virtual/block", rel), link); err != nil {
		f.t.Error(err)
	}
}

const (
	vda2UUID = "11111111-2222-4333-8444-555555555555"
	mdUUID   = "99999999-8888-4777-8666-555555555555"
)

// standardTree holds: vda, a GPT disk with an ext4 partition and an xfs
// one; vdb, a whole-disk btrfs; vdc, an md RAID component; loop0, empty;
// sr0, whose node is missing.
func standardTree(t *testing.T) *fakeTree {
	f := newFakeTree(t)
	const ss = 512
	disk := makeGPT(t, 4096*ss, ss, "3a9f1c2b-0d4e-4f60-8a7b-9c0d1e2f3a4b", []gptPart{
		{typ: linuxFS, uuid: testUUID2, name: "gokdump dumps", first: 64, last: 2047, index: 0},
		{typ: linuxFS, uuid: vda2UUID, name: "other", first: 2048, last: 4000, index: 1},
	})
	f.add(fakeDev{name: "vda", major: 253, minor: 0, content: disk})
	f.add(fakeDev{name: "vda1", major: 253, minor: 1, partition: 1, parent: "vda",
		content: makeExt(t, extOpts{uuid: testUUID, label: "DUMPS", compat: 0x4, incompat: 0x2c2})})
	f.add(fakeDev{name: "vda2", major: 253, minor: 2, partition: 2, parent: "vda",
		content: makeXFS(t, vda2UUID, "other")})
	f.add(fakeDev{name: "vdb", major: 253, minor: 16, content: makeBtrfs(t, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "spare")})
	md := make([]byte, 64<<10)
	makeMD1(t, md, 0x1000, mdUUID, "host:0")
	f.add(fakeDev{name: "vdc", major: 253, minor: 32, content: md})
	f.add(fakeDev{name: "loop0", major: 7, minor: 0, content: []byte{}})
	f.add(fakeDev{name: "sr0", major: 11, minor: 0, size: 1 << 20})
	return f
}

func TestList(t *testing.T) {
	f := standardTree(t)
	devs, err := f.sys().List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range devs {
		names = append(names, d.Name)
	}
	// Whole devices first, each group by device number.
	if got := strings.Join(names, " "); got != "loop0 sr0 vda vdb vdc vda1 vda2" {
		t.Errorf("order %q", got)
	}
	d := devs[5]
	want := Device{Name: "vda1", Path: filepath.Join(f.root, "dev", "vda1"), Major: 253, Minor: 1, Size: 4096,
		Partition: 1, Parent: "vda"}
	if d.Name != want.Name || d.Path != want.Path || d.Major != want.Major || d.Minor != want.Minor ||
		d.Size != want.Size || d.Partition != want.Partition || d.Parent != want.Parent {
		t.Errorf("vda1 = %+v, want %+v", d, want)
	}
	if devs[2].Partition != 0 || devs[2].Parent != "" || devs[2].Size != 4096*512 {
		t.Errorf("vda = %+v", devs[2])
	}
}

func TestFind(t *testing.T) {
	f := standardTree(t)
	s := f.sys()
	tests := []struct{ spec, want string }{
		{"UUID=" + strings.ToUpper(testUUID), "vda1"},
		{"LABEL=DUMPS", "vda1"},
		{"PARTLABEL=gokdump dumps", "vda1"},
		{"PARTUUID=" + strings.ToUpper(testUUID2), "vda1"},
		{"PARTUUID=" + vda2UUID, "vda2"},
		{"UUID=" + vda2UUID, "vda2"},
		{"LABEL=spare", "vdb"},
		{"/dev/vdb", "vdb"},
		{"/dev/../dev/vda2", "vda2"},
		{filepath.Join(f.root, "dev", "vda1"), "vda1"},
	}
	for _, tt := range tests {
		d, err := Find(tt.spec, s)
		if err != nil {
			t.Errorf("Find(%q): %v", tt.spec, err)
			continue
		}
		if d.Name != tt.want {
			t.Errorf("Find(%q) = %s, want %s", tt.spec, d.Name, tt.want)
		}
	}

	d, err := s.Find("LABEL=DUMPS")
	if err != nil {
		t.Fatal(err)
	}
	if d.FS == nil || d.FS.FSType != "ext4" || d.PartLabel != "gokdump dumps" || d.PartUUID != testUUID2 {
		t.Errorf("vda1 probed as %+v, FS %+v", d, d.FS)
	}
	d, _ = s.Find("/dev/vda")
	if d.Table == nil || d.Table.Type != "gpt" || d.FS != nil {
		t.Errorf("vda: table %+v, FS %+v", d.Table, d.FS)
	}
	d, _ = s.Find("/dev/vdc")
	if d.FS == nil || d.FS.Mountable() {
		t.Errorf("vdc: %+v", d.FS)
	}
}

func TestFindNotFound(t *testing.T) {
	f := standardTree(t)
	for _, spec := range []string{"LABEL=nope", "UUID=" + mdUUID, "PARTLABEL=DUMPS", "/dev/vdz"} {
		_, err := Find(spec, f.sys())
		var nf *NotFoundError
		if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Find(%q): err = %v, want NotFoundError", spec, err)
		}
		if len(nf.Seen) != 7 {
			t.Errorf("Find(%q): %d devices seen, want 7", spec, len(nf.Seen))
		}
		msg := err.Error()
		for _, want := range []string{
			"no device matches " + spec,
			"vda1 253:1 4.0 KiB partition 1 of vda TYPE=ext4 UUID=" + testUUID + ` LABEL="DUMPS" PARTUUID=` + testUUID2 + ` PARTLABEL="gokdump dumps"`,
			"vda 253:0 2.0 MiB PTTYPE=gpt PTUUID=3a9f1c2b-0d4e-4f60-8a7b-9c0d1e2f3a4b",
			`vdb 253:16 68.0 KiB TYPE=btrfs UUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee LABEL="spare"`,
			"vdc 253:32 64.0 KiB TYPE=linux_raid_member UUID=" + mdUUID,
			"loop0 7:0 0 B (empty)",
			"sr0 11:0 1.0 MiB (open ",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("Find(%q): error\n%s\ndoes not mention\n%s", spec, msg, want)
			}
		}
	}
}

func TestFindAmbiguous(t *testing.T) {
	f := standardTree(t)
	f.add(fakeDev{name: "vdd", major: 253, minor: 48, content: makeExt(t, extOpts{uuid: testUUID, label: "DUMPS", incompat: 0x40})})
	_, err := Find("LABEL=DUMPS", f.sys())
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "vda1") || !strings.Contains(err.Error(), "vdd") {
		t.Errorf("err = %v, want ErrAmbiguous naming vda1 and vdd", err)
	}
	// A unique property of one of them still finds it.
	if d, err := Find("PARTLABEL=gokdump dumps", f.sys()); err != nil || d.Name != "vda1" {
		t.Errorf("Find by PARTLABEL: %v, %v", d, err)
	}
}

func TestFindBadInput(t *testing.T) {
	f := standardTree(t)
	if _, err := Find("label=DUMPS", f.sys()); !errors.Is(err, ErrBadSpec) {
		t.Errorf("bad spec: %v", err)
	}
	if _, err := Find("LABEL=x", Sys{SysDir: filepath.Join(f.root, "nonexistent")}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("missing sysfs: %v", err)
	}
	// A sysfs entry with a malformed dev file is an error, not a skip.
	f.write(filepath.Join(f.root, "sys/devices/virtual/block/bad/dev"), "nonsense\n")
	if err := os.Symlink("../../devices/virtual/block/bad", filepath.Join(f.root, "sys/class/block/bad")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sys().List(); err == nil || !strings.Contains(err.Error(), "bad device number") {
		t.Errorf("malformed dev: %v", err)
	}
}

func TestWait(t *testing.T) {
	f := standardTree(t)
	s := f.sys()

	// A device that appears while waiting is found.
	const delay = 150 * time.Millisecond
	late := makeXFS(t, testUUID2, "late")
	go func() {
		time.Sleep(delay)
		f.add(fakeDev{name: "nvme0n1", major: 259, minor: 0, content: late})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	d, err := s.Wait(ctx, "LABEL=late", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "nvme0n1" || time.Since(start) < delay {
		t.Errorf("found %s after %v", d.Name, time.Since(start))
	}

	// One that never appears: the error says how long, why, and what
	// was there.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s.Wait(ctx, "LABEL=never", 30*time.Millisecond)
	if took := time.Since(start); took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v", took)
	}
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrNotFound and DeadlineExceeded", err)
	}
	for _, want := range []string{"no device matches LABEL=never after ", "context deadline exceeded", `LABEL="late"`, `LABEL="DUMPS"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v does not mention %q", err, want)
		}
	}

	// Errors waiting cannot cure return at once.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start = time.Now()
	if _, err := s.Wait(ctx, "PARTUUID=", 10*time.Millisecond); !errors.Is(err, ErrBadSpec) {
		t.Errorf("bad spec: %v", err)
	}
	if _, err := (Sys{SysDir: filepath.Join(f.root, "none")}).Wait(ctx, "LABEL=x", 10*time.Millisecond); err == nil {
		t.Errorf("no sysfs: no error")
	}
	f.add(fakeDev{name: "vdd", major: 253, minor: 48, content: makeExt(t, extOpts{uuid: testUUID, label: "DUMPS", incompat: 0x40})})
	if _, err := s.Wait(ctx, "LABEL=DUMPS", 10*time.Millisecond); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("ambiguous: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("permanent errors took %v", took)
	}

	// An expired context still gets one look.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if d, err := s.Wait(ctx, "LABEL=spare", time.Second); err != nil || d.Name != "vdb" {
		t.Errorf("expired context: %v, %v", d, err)
	}
}

func TestParseSpec(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Spec
		ok   bool
	}{
		{"UUID=0b3c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", Spec{ByUUID, "0b3c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"}, true},
		{"UUID=ABCD-1234", Spec{ByUUID, "ABCD-1234"}, true},
		{"LABEL=with = sign", Spec{ByLabel, "with = sign"}, true},
		{"PARTUUID=1234abcd-05", Spec{ByPartUUID, "1234abcd-05"}, true},
		{"PARTLABEL=EFI system partition", Spec{ByPartLabel, "EFI system partition"}, true},
		{"/dev/disk/../vda1", Spec{ByPath, "/dev/vda1"}, true},
		{"UUID=xyz", Spec{}, false},
		{"UUID=", Spec{}, false},
		{"LABEL=", Spec{}, false},
		{"uuid=abcd", Spec{}, false},
		{"vda1", Spec{}, false},
		{"", Spec{}, false},
	} {
		got, err := ParseSpec(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadSpec) {
			t.Errorf("ParseSpec(%q): %v is not ErrBadSpec", tt.in, err)
		}
		if err == nil && tt.want.Kind != ByPath && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

// TestFindByNode checks that a path outside DevDir, like a
// /dev/disk/by-id link, finds the device with its device number.
func TestFindByNode(t *testing.T) {
	f := standardTree(t)
	node := filepath.Join(t.TempDir(), "by-id-virtio-dumps-part1")
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(253, 1))); err != nil {
		t.Skipf("cannot make a device node (needs root): %v", err)
	}
	d, err := Find(node, f.sys())
	if err != nil || d.Name != "vda1" {
		t.Errorf("Find(%s) = %v, %v; want vda1", node, d, err)
	}
	// A regular file is not a node: nothing matches it.
	if _, err := Find(filepath.Join(f.root, "sys", "class"), f.sys()); !errors.Is(err, ErrNotFound) {
		t.Errorf("non-node path: %v", err)
	}
}
