package kexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

func TestParseBzImageReal(t *testing.T) {
	for _, path := range fixture.KernelImages(t) {
		t.Run(fixture.Release(path), func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			b, err := ParseBzImage(f, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			release := fixture.Release(path)
			if !strings.HasPrefix(b.Version, release+" ") {
				t.Errorf("Version = %q, want it to start with %q", b.Version, release)
			}
			if b.Protocol < 0x020c || b.ProtocolString() < "2.12" {
				t.Errorf("Protocol = %#x (%s)", b.Protocol, b.ProtocolString())
			}
			if b.CmdlineSize < 255 {
				t.Errorf("CmdlineSize = %d", b.CmdlineSize)
			}
			// A compressed kernel needs several times its size to
			// decompress; the sizing depends on this.
			if int64(b.InitSize) < 2*fi.Size() {
				t.Errorf("InitSize = %d, file %d", b.InitSize, fi.Size())
			}
			if b.KernelAlignment != 2<<20 {
				t.Errorf("KernelAlignment = %#x", b.KernelAlignment)
			}
			if b.SetupSize() >= fi.Size() || b.SetupSize() < 1024 {
				t.Errorf("SetupSize = %d", b.SetupSize())
			}
		})
	}
}

// fakeBzImage is the smallest image ParseBzImage accepts.
func fakeBzImage() []byte { return fixture.BzImage("6.99.0-test (nobody@nowhere) #1") }

func TestParseBzImageFake(t *testing.T) {
	b, err := ParseBzImage(bytes.NewReader(fakeBzImage()), 8192)
	if err != nil {
		t.Fatal(err)
	}
	want := BzImage{Protocol: 0x020f, SetupSects: 3, LoadFlags: 1, XLoadFlags: 3,
		KernelAlignment: 2 << 20, CmdlineSize: 2047, InitSize: 40 << 20,
		Version: "6.99.0-test (nobody@nowhere) #1"}
	if *b != want {
		t.Errorf("got %+v\nwant %+v", *b, want)
	}
	if b.SetupSize() != 2048 || b.ProtocolString() != "2.15" {
		t.Errorf("SetupSize %d, protocol %s", b.SetupSize(), b.ProtocolString())
	}
}

func TestParseBzImageRejects(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   string // in the message
	}{
		{"empty", func([]byte) []byte { return nil }, "too short"},
		{"short", func(b []byte) []byte { return b[:1023] }, "too short"},
		{"garbage", func([]byte) []byte { return bytes.Repeat([]byte{0x5a}, 4096) }, `no "HdrS"`},
		{"zeros", func([]byte) []byte { return make([]byte, 4096) }, `no "HdrS"`},
		{"elf", func([]byte) []byte { return append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 2000)...) }, "vmlinux"},
		{"gzip", func([]byte) []byte { return append([]byte{0x1f, 0x8b, 8}, make([]byte, 2000)...) }, "gzip"},
		{"cpio", func([]byte) []byte { return append([]byte("070701000000"), make([]byte, 2000)...) }, "swapped"},
		{"arm64", func([]byte) []byte {
			b := make([]byte, 4096)
			copy(b[56:], "ARM\x64")
			return b
		}, "arm64"},
		{"zboot", func([]byte) []byte {
			b := make([]byte, 4096)
			copy(b, "MZ\x00\x00zimg")
			return b
		}, "zboot"},
		{"boot flag", func(b []byte) []byte { b[bzBootFlag] = 0; return b }, "0xaa55"},
		{"old protocol", func(b []byte) []byte { le.PutUint16(b[bzVersion:], 0x020b); return b }, "protocol 2.11"},
		{"zImage", func(b []byte) []byte { b[bzLoadFlags] = 0; return b }, "zImage"},
		{"32-bit", func(b []byte) []byte { le.PutUint16(b[bzXLoadFlags:], xlfCanBeLoadedAbove4G); return b }, "32-bit"},
		{"below 4G", func(b []byte) []byte { le.PutUint16(b[bzXLoadFlags:], xlfKernel64); return b }, "above 4 GiB"},
		{"truncated setup", func(b []byte) []byte { b[bzSetupSects] = 200; return b }, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.mutate(fakeBzImage())
			_, err := ParseBzImage(bytes.NewReader(img), int64(len(img)))
			if !errors.Is(err, ErrNotKernel) {
				t.Fatalf("err = %v, want ErrNotKernel", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

// The size the caller states may exceed what the reader holds: that is a
// short file, not a crash or a success.
func TestParseBzImageSizeLies(t *testing.T) {
	_, err := ParseBzImage(bytes.NewReader(make([]byte, 100)), 1<<20)
	if !errors.Is(err, ErrNotKernel) {
		t.Fatalf("err = %v, want ErrNotKernel", err)
	}
}

func TestVersionOddities(t *testing.T) {
	tests := []struct {
		name string
		ptr  uint16
		text string
		want string
	}{
		{"none", 0, "", ""},
		{"outside setup", 0x1000, "", ""},
		{"unterminated at end", 0x600 - 0x200, strings.Repeat("x", 0x800-0x600), ""},
		{"control chars", 0x600 - 0x200, "6.1\x01\x00", ""},
		{"ok", 0x600 - 0x200, "6.1.0\x00", "6.1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := fakeBzImage()
			clear(img[0x600:0x800])
			binary.LittleEndian.PutUint16(img[bzKernelVersion:], tt.ptr)
			copy(img[0x600:0x800], tt.text)
			b, err := ParseBzImage(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			if b.Version != tt.want {
				t.Errorf("Version = %q, want %q", b.Version, tt.want)
			}
		})
	}
}
