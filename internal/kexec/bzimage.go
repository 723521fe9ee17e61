package kexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Offsets in an x86 bzImage: the legacy boot sector, then the setup header
// at 0x1f1 (Documentation/arch/x86/boot.rst).
const (
	bzSetupSects    = 0x1f1 // u8, 512-byte sectors of setup code after the boot sector; 0 means 4
	bzBootFlag      = 0x1fe // u16, 0xAA55
	bzHeaderMagic   = 0x202 // "HdrS"
	bzVersion       = 0x206 // u16 boot protocol version, 0x020f = 2.15
	bzKernelVersion = 0x20e // u16, version string offset minus 0x200
	bzLoadFlags     = 0x211 // u8
	bzKernelAlign   = 0x230 // u32 (2.05+)
	bzXLoadFlags    = 0x236 // u16 (2.12+)
	bzCmdlineSize   = 0x238 // u32 (2.06+), maximum command line without its NUL
	bzPrefAddress   = 0x258 // u64 (2.10+)
	bzInitSize      = 0x260 // u32 (2.10+), memory the kernel needs to decompress and start

	// bzMinSize is the smallest file the kernel's bzImage64 probe looks at
	// (boot sector plus one sector).
	bzMinSize = 1024
)

const (
	loadedHigh            = 1 << 0 // loadflags: protected-mode code at 1 MiB: a bzImage, not a zImage
	xlfKernel64           = 1 << 0 // xloadflags: has the 64-bit entry point
	xlfCanBeLoadedAbove4G = 1 << 1 // xloadflags: kexec_file_load places images anywhere

	// minKexecProtocol is the oldest boot protocol kexec_file_load accepts
	// (2.12, Linux 3.8): the first with xloadflags.
	minKexecProtocol = 0x020c
)

var hdrS = []byte("HdrS")

// A BzImage is the setup header of an x86 bzImage (vmlinuz), the fields of it
// that kexec_file_load(2) looks at.
type BzImage struct {
	Protocol        uint16 // boot protocol version, 0x020f is 2.15
	SetupSects      int    // sectors of real-mode setup code (0 in the file reads as 4)
	LoadFlags       uint8
	XLoadFlags      uint16
	KernelAlignment uint32 // physical alignment the kernel must be placed at
	CmdlineSize     uint32 // longest command line the kernel takes, without the NUL
	PrefAddress     uint64
	InitSize        uint32 // bytes of memory from the load address the kernel needs to decompress and run
	Version         string // kernel version string from the setup code; "" when absent
}

// SetupSize is the size of the boot sector and setup code that precede the
// protected-mode kernel in the file.
func (b *BzImage) SetupSize() int64 { return int64(b.SetupSects+1) * 512 }

// ProtocolString formats the boot protocol version as the kernel documents
// it, "2.15".
func (b *BzImage) ProtocolString() string {
	return fmt.Sprintf("%d.%02d", b.Protocol>>8, b.Protocol&0xff)
}

// ParseBzImage reads the setup header of the size-byte x86 kernel image r
// and checks it the way the kernel's bzImage64 loader does before
// kexec_file_load(2) would, so that a wrong file is reported as such (as
// ErrNotKernel, with a guess at what the file is) rather than as ENOEXEC.
func ParseBzImage(r io.ReaderAt, size int64) (*BzImage, error) {
	if size < bzMinSize {
		return nil, fmt.Errorf("%w: %d bytes is too short for a bzImage%s", ErrNotKernel, size, sniff(r, size))
	}
	var h [bzMinSize]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: shorter than its stated %d bytes", ErrNotKernel, size)
		}
		return nil, fmt.Errorf("read bzImage header: %w", err)
	}
	if !bytes.Equal(h[bzHeaderMagic:bzHeaderMagic+4], hdrS) {
		return nil, fmt.Errorf("%w: no \"HdrS\" setup header at %#x, so not an x86 bzImage%s", ErrNotKernel, bzHeaderMagic, sniff(r, size))
	}
	le := binary.LittleEndian
	if flag := le.Uint16(h[bzBootFlag:]); flag != 0xaa55 {
		return nil, fmt.Errorf("%w: boot sector flag %#04x, want 0xaa55", ErrNotKernel, flag)
	}
	b := &BzImage{
		Protocol:        le.Uint16(h[bzVersion:]),
		SetupSects:      int(h[bzSetupSects]),
		LoadFlags:       h[bzLoadFlags],
		XLoadFlags:      le.Uint16(h[bzXLoadFlags:]),
		KernelAlignment: le.Uint32(h[bzKernelAlign:]),
		CmdlineSize:     le.Uint32(h[bzCmdlineSize:]),
		PrefAddress:     le.Uint64(h[bzPrefAddress:]),
		InitSize:        le.Uint32(h[bzInitSize:]),
	}
	if b.SetupSects == 0 {
		b.SetupSects = 4
	}
	if b.Protocol < minKexecProtocol {
		return nil, fmt.Errorf("%w: boot protocol %s, kexec_file_load needs 2.12 (Linux 3.8) or later", ErrNotKernel, b.ProtocolString())
	}
	if b.LoadFlags&loadedHigh == 0 {
		return nil, fmt.Errorf("%w: a zImage (loads below 1 MiB), not a bzImage", ErrNotKernel)
	}
	if b.XLoadFlags&xlfKernel64 == 0 {
		return nil, fmt.Errorf("%w: no 64-bit entry point (a 32-bit kernel?)", ErrNotKernel)
	}
	if b.XLoadFlags&xlfCanBeLoadedAbove4G == 0 {
		return nil, fmt.Errorf("%w: the kernel cannot be loaded above 4 GiB (XLF_CAN_BE_LOADED_ABOVE_4G unset)", ErrNotKernel)
	}
	if size < b.SetupSize() {
		return nil, fmt.Errorf("%w: truncated: %d bytes, less than its %d bytes of setup code", ErrNotKernel, size, b.SetupSize())
	}
	b.Version = readVersion(r, le.Uint16(h[bzKernelVersion:]), b.SetupSize())
	return b, nil
}

// readVersion reads the NUL-terminated version string the header points at,
// if it lies inside the setup code; it is informational, so anything odd
// yields "".
func readVersion(r io.ReaderAt, ptr uint16, setupSize int64) string {
	if ptr == 0 {
		return ""
	}
	off := int64(ptr) + 0x200
	if off >= setupSize {
		return ""
	}
	buf := make([]byte, min(256, setupSize-off))
	n, _ := r.ReadAt(buf, off)
	buf = buf[:n]
	end := bytes.IndexByte(buf, 0)
	if end <= 0 {
		return ""
	}
	for _, c := range buf[:end] {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return string(buf[:end])
}

// sniff guesses what a file that is not a bzImage is, for the error message.
func sniff(r io.ReaderAt, size int64) string {
	var b [64]byte
	n, _ := r.ReadAt(b[:min(int64(len(b)), size)], 0)
	p := b[:n]
	switch {
	case bytes.HasPrefix(p, []byte("\x7fELF")):
		return " (an ELF file: a vmlinux? kexec_file_load takes the compressed vmlinuz)"
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		return " (gzip data: an initrd, or a compressed kernel of another architecture?)"
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return " (zstd data: an initrd?)"
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return " (xz data: an initrd?)"
	case bytes.HasPrefix(p, []byte("070701")), bytes.HasPrefix(p, []byte("070702")):
		return " (a cpio archive: kernel and initrd swapped?)"
	case len(p) >= 64 && bytes.Equal(p[56:60], []byte("ARM\x64")):
		return " (an arm64 kernel Image)"
	case len(p) >= 8 && bytes.Equal(p[:2], []byte("MZ")) && bytes.Equal(p[4:8], []byte("zimg")):
		return " (an EFI zboot image: a compressed arm64, RISC-V or LoongArch kernel)"
	}
	return ""
}
