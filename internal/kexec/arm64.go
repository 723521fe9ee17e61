package kexec

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/klauspost/compress/zstd"
)

// The arm64 kernel Image header (Documentation/arch/arm64/booting.rst).
const (
	arm64TextOffset = 8  // u64
	arm64ImageSize  = 16 // u64, bytes from the load address the kernel uses (bss included)
	arm64Flags      = 24 // u64
	arm64Magic      = 56 // "ARM\x64"
	arm64HeaderLen  = 64

	arm64FlagBE = 1 << 0
	// The page size the kernel is built for: flags bits 1-2.
	arm64FlagPageShift = 1

	// arm64KernelAlign is where an arm64 Image is placed: a 2 MiB
	// boundary (plus text_offset), so up to that much of the
	// reservation below it can go unused.
	arm64KernelAlign = 2 << 20

	// maxArm64Image bounds a decompressed kernel: Debian's is ~35 MiB.
	maxArm64Image = 256 << 20
)

// An Arm64Header is what an arm64 kernel's Image header says about the
// memory the kernel takes, and how the file wrapped the Image.
type Arm64Header struct {
	TextOffset uint64
	ImageSize  uint64 // bytes from the load address the kernel uses, bss included
	PageSize   uint64 // the kernel's page size from the flags: 4, 16 or 64 KiB; 0 unspecified
	Compressed string // how the file was compressed: "", "gzip", "zboot gzip", "zboot zstd"
}

// An Arm64Image is an uncompressed arm64 kernel Image and its header.
type Arm64Image struct {
	Arm64Header
	Data []byte
}

// ParseArm64Image reads an arm64 kernel: an uncompressed Image (Debian's
// vmlinuz), a gzip-compressed one (Image.gz), or an EFI zboot image
// (vmlinuz.efi of Fedora and others: a PE file carrying the compressed
// Image, payload offset and size at 8 and 12, its compression named at 24).
// kexec_load needs the Image itself: no EFI stub runs.
func ParseArm64Image(b []byte) (*Arm64Image, error) {
	r, how, done, err := arm64Payload(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	defer done()
	if how != "" {
		if b, err = io.ReadAll(io.LimitReader(r, maxArm64Image+1)); err != nil {
			return nil, fmt.Errorf("%w: decompress (%s): %w", ErrNotKernel, how, err)
		}
		if len(b) > maxArm64Image {
			return nil, fmt.Errorf("%w: decompresses to more than %d MiB", ErrNotKernel, maxArm64Image>>20)
		}
	}
	h, err := parseArm64Header(b, how, int64(len(b)))
	if err != nil {
		return nil, err
	}
	return &Arm64Image{Arm64Header: *h, Data: b}, nil
}

// ReadArm64Header reads the Image header of an arm64 kernel file of size
// bytes (plain, gzip or EFI zboot, as ParseArm64Image), decompressing no
// more than the header: what an estimate needs without the whole Image.
func ReadArm64Header(r io.ReaderAt, size int64) (*Arm64Header, error) {
	p, how, done, err := arm64Payload(r, size)
	if err != nil {
		return nil, err
	}
	defer done()
	b := make([]byte, arm64HeaderLen)
	n, err := io.ReadFull(p, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("%w: decompress (%s): %w", ErrNotKernel, how, err)
	}
	imageLen := size // a compressed Image's length is not known without inflating it all
	if how != "" {
		imageLen = int64(n)
	}
	return parseArm64Header(b[:n], how, imageLen)
}

// arm64Payload opens the Image inside an arm64 kernel file: the file
// itself, its gzip stream, or an EFI zboot image's payload. how says which
// ("" for the file itself); done releases the decompressor.
func arm64Payload(r io.ReaderAt, size int64) (_ io.Reader, how string, done func(), _ error) {
	var head [64]byte
	n, err := r.ReadAt(head[:min(int64(len(head)), size)], 0)
	if err != nil && err != io.EOF {
		return nil, "", nil, fmt.Errorf("kexec: read kernel: %w", err)
	}
	b := head[:n]
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		z, err := decompressor("gzip", io.NewSectionReader(r, 0, size))
		if err != nil {
			return nil, "", nil, err
		}
		return z, "gzip", z.close, nil
	case len(b) >= 64 && bytes.Equal(b[:2], []byte("MZ")) && bytes.Equal(b[4:8], []byte("zimg")):
		off, n := uint64(binary.LittleEndian.Uint32(b[8:])), uint64(binary.LittleEndian.Uint32(b[12:]))
		comp := string(bytes.TrimRight(b[24:56], "\x00"))
		if off+n > uint64(size) {
			return nil, "", nil, fmt.Errorf("%w: EFI zboot payload %#x+%#x runs past the file's %d bytes", ErrNotKernel, off, n, size)
		}
		z, err := decompressor(comp, io.NewSectionReader(r, int64(off), int64(n)))
		if err != nil {
			return nil, "", nil, err
		}
		return z, "zboot " + comp, z.close, nil
	}
	return io.NewSectionReader(r, 0, size), "", func() {}, nil
}

// parseArm64Header checks the Image header at the start of b, an Image
// of imageLen bytes (as far as known) that the file wrapped as how.
func parseArm64Header(b []byte, how string, imageLen int64) (*Arm64Header, error) {
	if len(b) < arm64HeaderLen || !bytes.Equal(b[arm64Magic:arm64Magic+4], []byte("ARM\x64")) {
		return nil, fmt.Errorf("%w: no arm64 Image header (\"ARM\\x64\" at 56)%s", ErrNotKernel, sniff(bytes.NewReader(b), int64(len(b))))
	}
	le := binary.LittleEndian
	h := &Arm64Header{TextOffset: le.Uint64(b[arm64TextOffset:]), ImageSize: le.Uint64(b[arm64ImageSize:]), Compressed: how}
	h.PageSize = [4]uint64{0, 4 << 10, 16 << 10, 64 << 10}[le.Uint64(b[arm64Flags:])>>arm64FlagPageShift&3]
	switch {
	case le.Uint64(b[arm64Flags:])&arm64FlagBE != 0:
		return nil, fmt.Errorf("%w: a big-endian arm64 kernel", ErrNotKernel)
	case h.ImageSize == 0:
		return nil, fmt.Errorf("%w: image_size is 0 (a kernel before 3.17)", ErrNotKernel)
	case h.ImageSize < uint64(imageLen) || h.ImageSize > maxArm64Image || h.TextOffset >= 2<<20:
		return nil, fmt.Errorf("%w: image_size %#x, text_offset %#x for a %d-byte Image", ErrNotKernel, h.ImageSize, h.TextOffset, imageLen)
	}
	return h, nil
}

// A stream is a decompressing reader and what releases it.
type stream struct {
	io.Reader
	close func()
}

// decompressor decompresses a kernel compressed with comp ("gzip", "zstd").
func decompressor(comp string, r io.Reader) (stream, error) {
	switch comp {
	case "gzip":
		z, err := gzip.NewReader(r)
		if err != nil {
			return stream{}, fmt.Errorf("%w: gzip: %w", ErrNotKernel, err)
		}
		return stream{z, func() { z.Close() }}, nil
	case "zstd", "zstd22":
		z, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxArm64Image), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return stream{}, fmt.Errorf("%w: zstd: %w", ErrNotKernel, err)
		}
		return stream{z, z.Close}, nil
	}
	return stream{}, fmt.Errorf("%w: EFI zboot image compressed with %q; gokdump reads gzip and zstd", ErrNotKernel, comp)
}

// BuildArm64 lays out a classic crash load of an arm64 Image, the initrd
// (nil for none) and cmdline in the reservation ci.Crash, given the
// running kernel's device tree (/sys/firmware/fdt):
//
//	kernel     at the reservation's first 2 MiB boundary plus text_offset,
//	           image_size long
//	dtb        the running kernel's, /chosen set: bootargs,
//	           linux,elfcorehdr, linux,usable-memory-range (the
//	           reservations: the capture kernel's only RAM) and
//	           linux,initrd-start/-end (removed without an initrd)
//	purgatory  x0 = the DTB, x1-x3 = 0, branch to the kernel, as
//	           booting.rst asks (the kernel enters it with the MMU off)
//	initrd     high, below the ELF core header
//	elfcorehdr at the top; the capture kernel reserves it
//	           (linux,elfcorehdr)
func BuildArm64(ci *CrashInfo, img *Arm64Image, dtb []byte, initrd []byte, cmdline string) (*ClassicLoad, error) {
	t, err := placeTop(ci, len(initrd))
	if err != nil {
		return nil, err
	}
	res, hdr, hdrAddr, hdrMem, initrdAddr, initrdMem := ci.Crash, t.hdr, t.hdrAddr, t.hdrMem, t.initrdAddr, t.initrdMem
	fdt, err := ParseFDT(dtb)
	if err != nil {
		return nil, err
	}
	kAddr := alignUp(res.Start, arm64KernelAlign) + img.TextOffset
	kMem := alignUp(img.ImageSize, pageSize)

	if err := setChosen(fdt, ci, Range{hdrAddr, hdrAddr + uint64(len(hdr)) - 1}, initrdAddr, uint64(len(initrd)), cmdline); err != nil {
		return nil, err
	}
	dtbBytes := fdt.Bytes()
	if len(dtbBytes) > 2<<20 {
		return nil, fmt.Errorf("kexec: the device tree is %d bytes, booting.rst allows 2 MiB", len(dtbBytes))
	}
	dtbAddr := kAddr + kMem
	dtbMem := alignUp(uint64(len(dtbBytes)), pageSize)
	purgAddr := dtbAddr + dtbMem
	end := purgAddr + pageSize
	if end > initrdAddr || initrdAddr-end < minControlRoom {
		return nil, fmt.Errorf("kexec: %w: kernel %s (image_size), initrd %s, device tree, headers and %s free need more than the reservation %v (%s)",
			ErrTooLarge, MiB(kMem), MiB(initrdMem), MiB(minControlRoom), res, MiB(res.Size()))
	}
	l := &ClassicLoad{Cmdline: cmdline, Elfcorehdr: hdrAddr, Entry: purgAddr}
	l.Segments = []Segment{
		{What: "kernel", Buf: img.Data, Mem: kAddr, MemSz: kMem},
		{What: "dtb", Buf: dtbBytes, Mem: dtbAddr, MemSz: dtbMem},
		{What: "purgatory", Buf: purgatoryArm64(dtbAddr, kAddr), Mem: purgAddr, MemSz: pageSize},
		{What: "elfcorehdr", Buf: hdr, Mem: hdrAddr, MemSz: hdrMem},
	}
	if len(initrd) > 0 {
		l.Segments = append(l.Segments, Segment{What: "initrd", Buf: initrd, Mem: initrdAddr, MemSz: initrdMem})
	}
	sort.Slice(l.Segments, func(i, j int) bool { return l.Segments[i].Mem < l.Segments[j].Mem })
	return l, nil
}

// setChosen writes what the arm64 capture kernel reads from /chosen.
func setChosen(f *FDT, ci *CrashInfo, hdr Range, initrdAddr, initrdLen uint64, cmdline string) error {
	ac, sc, err := f.cells()
	if err != nil {
		return err
	}
	ch := f.Root.Child("chosen")
	if ch == nil {
		ch = &FDTNode{Name: "chosen"}
		f.Root.Children = append(f.Root.Children, ch)
	}
	elfhdr, err := encodeRegs(ac, sc, hdr)
	if err != nil {
		return err
	}
	usable, err := encodeRegs(ac, sc, append([]Range{ci.Crash}, ci.CrashLow...)...)
	if err != nil {
		return err
	}
	ch.SetProp("linux,elfcorehdr", elfhdr)
	ch.SetProp("linux,usable-memory-range", usable)
	ch.SetProp("bootargs", append([]byte(cmdline), 0))
	if initrdLen > 0 {
		ch.SetProp("linux,initrd-start", binary.BigEndian.AppendUint64(nil, initrdAddr))
		ch.SetProp("linux,initrd-end", binary.BigEndian.AppendUint64(nil, initrdAddr+initrdLen))
	} else {
		ch.DelProp("linux,initrd-start")
		ch.DelProp("linux,initrd-end")
	}
	return nil
}

// purgatoryArm64 generates the arm64 purgatory: booting.rst wants x0 =
// the DTB's physical address and x1-x3 = 0 at the kernel's first
// instruction; kexec_load's entry gets neither. The literals sit 8-byte
// aligned: with the MMU off, memory is Device and unaligned loads fault.
//
//	ldr x0, dtb
//	ldr x4, kernel
//	mov x1, xzr; mov x2, xzr; mov x3, xzr
//	br  x4
//	dtb:    .quad DTB
//	kernel: .quad KERNEL
func purgatoryArm64(dtb, kernel uint64) []byte {
	ldr := func(rt, at, lit uint32) uint32 { return 0x58000000 | ((lit-at)/4)<<5 | rt }
	insns := []uint32{
		ldr(0, 0x00, 0x18),
		ldr(4, 0x04, 0x20),
		0xaa1f03e1, // mov x1, xzr
		0xaa1f03e2, // mov x2, xzr
		0xaa1f03e3, // mov x3, xzr
		0xd61f0080, // br x4
	}
	var b []byte
	for _, in := range insns {
		b = binary.LittleEndian.AppendUint32(b, in)
	}
	b = binary.LittleEndian.AppendUint64(b, dtb)
	return binary.LittleEndian.AppendUint64(b, kernel)
}
