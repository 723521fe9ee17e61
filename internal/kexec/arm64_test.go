package kexec

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// qemuVirtDTB is the device tree QEMU 7.2 gives `-M virt -cpu max -m 1024`
// (dumpdtb), 1 MiB with its free space.
func qemuVirtDTB(t testing.TB) []byte {
	f, err := os.Open("testdata/qemu-virt.dtb.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFDTReal(t *testing.T) {
	b := qemuVirtDTB(t)
	f, err := ParseFDT(b)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range f.Root.Children {
		names = append(names, c.Name)
	}
	for _, want := range []string{"chosen", "memory@40000000", "cpus", "psci", "pl011@9000000"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("no node %s among %v", want, names)
		}
	}
	mem, _ := f.Root.Child("memory@40000000").Prop("reg")
	if hex.EncodeToString(mem) != "00000000400000000000000040000000" {
		t.Errorf("memory reg %x, want 1 GiB at 0x40000000", mem)
	}
	// Written back and read again, the tree is the same, and packed.
	out := f.Bytes()
	g, err := ParseFDT(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, f) || !bytes.Equal(g.Bytes(), out) {
		t.Error("tree changed through Bytes and ParseFDT")
	}
	if len(out) >= len(b) || binary.BigEndian.Uint32(out[4:]) != uint32(len(out)) {
		t.Errorf("written blob is %d bytes (totalsize %d), read %d", len(out), binary.BigEndian.Uint32(out[4:]), len(b))
	}
}

func TestParseFDTRejects(t *testing.T) {
	good := (&FDT{Root: &FDTNode{Props: []FDTProp{{"a", []byte{1, 2, 3, 4}}}}}).Bytes()
	if _, err := ParseFDT(good); err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	for name, mut := range map[string]func(b []byte) []byte{
		"magic":      func(b []byte) []byte { b[0] = 0; return b },
		"short":      func(b []byte) []byte { return b[:20] },
		"totalsize":  func(b []byte) []byte { be.PutUint32(b[4:], uint32(len(b)+1)); return b },
		"struct off": func(b []byte) []byte { be.PutUint32(b[8:], 1<<30); return b },
		"no end":     func(b []byte) []byte { return b[:len(b)-4-2] }, // strings shortened too, totalsize lies
		"prop len": func(b []byte) []byte {
			off := be.Uint32(b[8:])
			be.PutUint32(b[off+12:], 1<<20) // the property's length
			return b
		},
		"version": func(b []byte) []byte { be.PutUint32(b[20:], 3); return b },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseFDT(mut(bytes.Clone(good))); !errors.Is(err, ErrBadFDT) {
				t.Errorf("err = %v, want ErrBadFDT", err)
			}
		})
	}
	// Nesting deeper than fdtMaxDepth.
	root := &FDTNode{}
	for n, i := root, 0; i < fdtMaxDepth+2; i++ {
		c := &FDTNode{Name: "n"}
		n.Children = []*FDTNode{c}
		n = c
	}
	if _, err := ParseFDT((&FDT{Root: root}).Bytes()); !errors.Is(err, ErrBadFDT) {
		t.Errorf("deep tree: err = %v", err)
	}
}

func arm64CrashInfo(t *testing.T) *CrashInfo {
	iomem := `40000000-4fffffff : System RAM
  40210000-41abffff : Kernel code
  41ac0000-4217ffff : reserved
  48000000-4fffffff : Crash kernel
50000000-7fffffff : System RAM
`
	proc, sys := crashFixture(t, iomem, 2)
	if err := os.WriteFile(filepath.Join(sys, "kernel/kexec_crash_size"), []byte(fmt.Sprint(128<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	ci, err := ReadCrashInfo(proc, sys, elf.EM_AARCH64)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

func fakeArm64Image(size int) []byte {
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b, 0xfa405a4d) // code0: "MZ" and a branch, as real Images
	le.PutUint64(b[arm64ImageSize:], uint64(size)+3<<20)
	le.PutUint64(b[arm64Flags:], 0xa) // 4K pages, anywhere
	copy(b[arm64Magic:], "ARM\x64")
	return b
}

func TestBuildArm64(t *testing.T) {
	ci := arm64CrashInfo(t)
	img, err := ParseArm64Image(fakeArm64Image(5 << 20))
	if err != nil {
		t.Fatal(err)
	}
	initrd := bytes.Repeat([]byte{9}, 3<<20+5)
	l, err := BuildArm64(ci, img, qemuVirtDTB(t), initrd, "console=ttyAMA0 nr_cpus=1 reset_devices")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "entry %#x\n", l.Entry)
	var dtb Segment
	for i, s := range l.Segments {
		fmt.Fprintf(&out, "segment %-11s %#x-%#x buf %#x\n", s.What, s.Mem, s.Mem+s.MemSz-1, len(s.Buf))
		if s.Mem&(pageSize-1) != 0 || s.MemSz&(pageSize-1) != 0 || uint64(len(s.Buf)) > s.MemSz ||
			s.Mem < ci.Crash.Start || s.Mem+s.MemSz-1 > ci.Crash.End || i > 0 && l.Segments[i-1].Mem+l.Segments[i-1].MemSz > s.Mem {
			t.Errorf("segment %s misplaced", s.What)
		}
		if s.What == "dtb" {
			dtb = s
		}
	}
	f, err := ParseFDT(dtb.Buf)
	if err != nil {
		t.Fatal(err)
	}
	ch := f.Root.Child("chosen")
	for _, name := range []string{"bootargs", "linux,elfcorehdr", "linux,usable-memory-range", "linux,initrd-start", "linux,initrd-end", "stdout-path"} {
		v, ok := ch.Prop(name)
		if !ok {
			t.Errorf("/chosen lacks %s", name)
		}
		fmt.Fprintf(&out, "chosen %s = %q\n", name, v)
	}
	checkGolden(t, "classic-arm64.golden", out.String())
	// The purgatory hands the kernel the DTB.
	for _, s := range l.Segments {
		if s.What == "purgatory" && !bytes.Equal(s.Buf, purgatoryArm64(dtb.Mem, ci.Crash.Start)) {
			t.Errorf("purgatory does not pass the DTB at %#x and jump to the kernel at %#x", dtb.Mem, ci.Crash.Start)
		}
	}
	// Without an initrd the running kernel's initrd properties go.
	l, err = BuildArm64(ci, img, dtb.Buf, nil, "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Segments {
		if s.What == "dtb" {
			g, _ := ParseFDT(s.Buf)
			if _, ok := g.Root.Child("chosen").Prop("linux,initrd-start"); ok {
				t.Error("linux,initrd-start left without an initrd")
			}
		}
	}
}

// TestPurgatoryArm64 compares with what llvm-mc assembles from the
// listing in purgatoryArm64's comment, DTB 0x48000000, kernel 0x46200000.
func TestPurgatoryArm64(t *testing.T) {
	want := "c0000058e4000058e1031faae2031faae3031faa80001fd6" + "0000004800000000" + "0000204600000000"
	if got := hex.EncodeToString(purgatoryArm64(0x48000000, 0x46200000)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// zboot wraps a compressed payload as an EFI zboot image does: "MZ",
// "zimg", the payload's offset and size, the compression's name.
func zboot(comp string, payload []byte) []byte {
	b := make([]byte, 512, 512+len(payload))
	copy(b, "MZ")
	copy(b[4:], "zimg")
	binary.LittleEndian.PutUint32(b[8:], 512)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(payload)))
	copy(b[24:], comp)
	return append(b, payload...)
}

func gzipped(b []byte) []byte {
	var gz bytes.Buffer
	z := gzip.NewWriter(&gz)
	z.Write(b)
	z.Close()
	return gz.Bytes()
}

func zstded(b []byte) []byte {
	zs, _ := zstd.NewWriter(nil)
	defer zs.Close()
	return zs.EncodeAll(b, nil)
}

func TestParseArm64Image(t *testing.T) {
	raw := fakeArm64Image(1 << 20)
	gz, zst := bytes.NewBuffer(gzipped(raw)), zstded(raw)
	for _, tc := range []struct {
		name, how string
		in        []byte
	}{
		{"Image", "", raw},
		{"Image.gz", "gzip", gz.Bytes()},
		{"zboot gzip", "zboot gzip", zboot("gzip", gz.Bytes())},
		{"zboot zstd", "zboot zstd", zboot("zstd", zst)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ParseArm64Image(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(img.Data, raw) || img.Compressed != tc.how || img.ImageSize != 4<<20 {
				t.Errorf("compressed %q, image_size %#x, data equal %v", img.Compressed, img.ImageSize, bytes.Equal(img.Data, raw))
			}
		})
	}
	be := bytes.Clone(raw)
	be[arm64Flags] |= arm64FlagBE
	old := bytes.Clone(raw)
	clear(old[arm64ImageSize : arm64ImageSize+8])
	for _, tc := range []struct {
		name, text string
		in         []byte
	}{
		{"bzImage", "no arm64 Image header", fakeBzImage()},
		{"big-endian", "big-endian", be},
		{"pre-3.17", "image_size is 0", old},
		{"zboot lzma", `"lzma"`, zboot("lzma", []byte{1})},
		{"zboot truncated", "runs past", zboot("gzip", gz.Bytes())[:600]},
		{"bad gzip", "gzip", []byte{0x1f, 0x8b, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "zboot truncated" {
				tc.in = bytes.Clone(tc.in)
			}
			_, err := ParseArm64Image(tc.in)
			if !errors.Is(err, ErrNotKernel) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v, want ErrNotKernel saying %q", err, tc.text)
			}
		})
	}
}

func TestKcoreLayout(t *testing.T) {
	ram := []Range{{0x1000, 0x9fbff}, {0x100000, 0x3ffdcfff}}
	for _, tc := range []struct {
		name              string
		progs             []*elf.Prog
		off, text, textVA uint64
	}{
		{"x86-64", []*elf.Prog{
			{ProgHeader: elf.ProgHeader{Type: elf.PT_LOAD, Vaddr: 0xffffffff9a000000, Paddr: 0x1000000, Memsz: 0x2000000}},
			{ProgHeader: elf.ProgHeader{Type: elf.PT_LOAD, Vaddr: 0xffffc90000000000, Paddr: ^uint64(0), Memsz: 1 << 40}}, // vmalloc
			{ProgHeader: elf.ProgHeader{Type: elf.PT_LOAD, Vaddr: 0xffff9c4c80001000, Paddr: 0x1000, Memsz: 0x9e000}},
			{ProgHeader: elf.ProgHeader{Type: elf.PT_LOAD, Vaddr: 0xffff9c4c80100000, Paddr: 0x100000, Memsz: 0x3fedd000}},
		}, 0xffff9c4c80000000, 0x1000000, 0xffffffff9a000000},
		{"no kcore entries with physical addresses", []*elf.Prog{
			{ProgHeader: elf.ProgHeader{Type: elf.PT_LOAD, Vaddr: 0xffffc90000000000, Paddr: ^uint64(0), Memsz: 1 << 40}},
		}, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := &CrashInfo{RAM: ram}
			kcoreLayout(ci, tc.progs)
			if ci.PageOffset != tc.off || ci.Text.Start != tc.text || ci.TextVaddr != tc.textVA {
				t.Errorf("page offset %#x, text %#x at %#x; want %#x, %#x at %#x", ci.PageOffset, ci.Text.Start, ci.TextVaddr, tc.off, tc.text, tc.textVA)
			}
		})
	}
}

func FuzzParseFDT(f *testing.F) {
	f.Add((&FDT{Root: &FDTNode{Props: []FDTProp{{"a", []byte{1}}}, Children: []*FDTNode{{Name: "chosen"}}}}).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		fdt, err := ParseFDT(b)
		if err != nil {
			return
		}
		out := fdt.Bytes()
		g, err := ParseFDT(out)
		if err != nil {
			t.Fatalf("a tree we wrote does not parse: %v", err)
		}
		if !bytes.Equal(g.Bytes(), out) {
			t.Fatal("writing is not stable")
		}
	})
}

func FuzzParseArm64Image(f *testing.F) {
	f.Add(fakeArm64Image(4096))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := ParseArm64Image(b)
		if err == nil && (img.ImageSize < uint64(len(img.Data)) || len(img.Data) > maxArm64Image) {
			t.Fatalf("accepted image_size %#x for %d bytes", img.ImageSize, len(img.Data))
		}
	})
}

// FuzzReadArm64Header: reading only the header never disagrees with
// reading the whole Image, whatever the wrapping.
func FuzzReadArm64Header(f *testing.F) {
	raw := fakeArm64Image(4096)
	f.Add(raw)
	f.Add(gzipped(raw))
	f.Add(zboot("zstd", zstded(raw)))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadArm64Header(bytes.NewReader(b), int64(len(b)))
		img, ierr := ParseArm64Image(b)
		if ierr == nil && (err != nil || *h != img.Arm64Header) {
			t.Fatalf("whole Image %+v, header alone %+v, %v", img.Arm64Header, h, err)
		}
		if err == nil && (h.ImageSize == 0 || h.ImageSize > maxArm64Image) {
			t.Fatalf("accepted image_size %#x", h.ImageSize)
		}
	})
}
