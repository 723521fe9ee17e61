package kexec

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// The x86 zero page (struct boot_params, arch/x86/include/uapi/asm/bootparam.h):
// offsets of the fields the classic loader sets.
const (
	zeroPageSize      = 4096
	bpACPIRSDPAddr    = 0x070 // u64
	bpExtRamdiskImage = 0x0c0 // u32, high half of ramdisk_image
	bpExtRamdiskSize  = 0x0c4
	bpExtCmdLinePtr   = 0x0c8
	bpCCBlobAddress   = 0x13c // u32, SEV-SNP: not ours to pass on
	bpEFIInfo         = 0x1c0 // struct efi_info, 32 bytes
	bpE820Entries     = 0x1e8 // u8
	bpSentinel        = 0x1ef // u8, must be 0 or the kernel wipes what the loader set
	bpHdr             = 0x1f1 // struct setup_header
	bpHdrEnd          = 0x290 // edd_mbr_sig_buffer follows the header's padding
	bpTypeOfLoader    = 0x210 // u8
	bpCode32Start     = 0x214 // u32
	bpRamdiskImage    = 0x218 // u32
	bpRamdiskSize     = 0x21c // u32
	bpCmdLinePtr      = 0x228 // u32
	bpHardwareSubarch = 0x23c // u32
	bpSetupData       = 0x250 // u64
	bpE820Table       = 0x2d0 // struct boot_e820_entry[128], 20 bytes each
	e820MaxZeroPage   = 128

	// e820 types (arch/x86/include/asm/e820/types.h).
	e820RAM      = 1
	e820Reserved = 2
	e820ACPI     = 3
	e820NVS      = 4

	// loaderKexec is type_of_loader for kexec (boot.rst: 0xD).
	loaderKexec = 0x0d << 4

	// bzEntry64 is the 64-bit entry point's offset into the protected-mode
	// kernel (startup_64, boot.rst "64-bit Boot Protocol").
	bzEntry64 = 0x200

	// minControlRoom is free reservation the kernel needs beside the
	// segments: kexec_load takes its control page and the identity-map
	// page tables relocate_kernel runs on from the reservation too.
	minControlRoom = 1 << 20
)

// A Segment is one kexec_segment: Buf is copied to physical address Mem,
// and the rest of MemSz zeroed.
type Segment struct {
	What  string // "kernel", "initrd", "boot params", "purgatory", "elfcorehdr", "dtb"
	Buf   []byte
	Mem   uint64
	MemSz uint64
}

// A ClassicLoad is what kexec_load(2) is given: the segments, inside the
// reservation, and the entry point (the purgatory).
type ClassicLoad struct {
	Entry      uint64
	Segments   []Segment // sorted by Mem
	Cmdline    string    // the capture kernel's, with elfcorehdr= (and acpi_rsdp=) added
	Elfcorehdr uint64
	E820       []E820Entry // x86: the memory map the capture kernel sees
}

// An E820Entry is one entry of the x86 capture kernel's memory map.
type E820Entry struct {
	Range
	Type uint32
}

// BuildX86 lays out a classic crash load of the bzImage kernel (the whole
// file; img its parsed header), the initrd (nil for none) and cmdline in
// the reservation ci.Crash, as kexec-tools does for x86-64 but without its
// SHA-checking purgatory:
//
//	kernel      at the reservation's start, aligned to kernel_alignment,
//	            init_size long (room to decompress in place)
//	boot params the zero page, then the command line
//	purgatory   a GDT, a stack and a few instructions: load the GDT the
//	            64-bit boot protocol asks for, rsi = boot params, jump to
//	            startup_64
//	initrd      high, below the ELF core header
//	elfcorehdr  at the top, left out of the capture kernel's RAM
//
// The capture kernel's e820 table holds the low 1 MiB of RAM (the running
// kernel never uses it), the ACPI and reserved ranges, and the reservation
// minus the ELF core header, as the kernel's kexec_file_load builds it
// (arch/x86/kernel/crash.c). No memmap= is added: the e820 table says it.
func BuildX86(ci *CrashInfo, kernel []byte, img *BzImage, initrd []byte, cmdline string) (*ClassicLoad, error) {
	if img == nil {
		return nil, fmt.Errorf("kexec: classic x86 load: %w: no bzImage header", ErrNotKernel)
	}
	t, err := placeTop(ci, len(initrd))
	if err != nil {
		return nil, err
	}
	res, hdr, hdrAddr, hdrMem, initrdAddr, initrdMem := ci.Crash, t.hdr, t.hdrAddr, t.hdrMem, t.initrdAddr, t.initrdMem
	top := res.End + 1

	align := uint64(img.KernelAlignment)
	if align < pageSize || align > 1<<30 || align&(align-1) != 0 {
		align = 2 << 20
	}
	body := kernel[min(int64(len(kernel)), img.SetupSize()):]
	kAddr := alignUp(res.Start, align)
	kMem := alignUp(max(uint64(img.InitSize), uint64(len(body))), pageSize)
	bpAddr := kAddr + kMem
	cmdAddr := bpAddr + zeroPageSize

	if ci.ACPIRSDP != 0 && !hasParam(cmdline, "acpi_rsdp") {
		// Without EFI runtime data the capture kernel finds ACPI only so.
		cmdline += fmt.Sprintf(" acpi_rsdp=%#x", ci.ACPIRSDP)
	}
	cmdline += fmt.Sprintf(" elfcorehdr=%#x", hdrAddr)
	if uint64(len(cmdline)) > uint64(img.CmdlineSize) {
		return nil, fmt.Errorf("kexec: %w: %d bytes with elfcorehdr=, the kernel takes %d", ErrCmdlineTooLong, len(cmdline), img.CmdlineSize)
	}
	bpMem := alignUp(zeroPageSize+uint64(len(cmdline))+1, pageSize)
	purgAddr := bpAddr + bpMem
	purgMem := uint64(2 * pageSize)
	end := purgAddr + purgMem
	if end > initrdAddr || initrdAddr-end < minControlRoom {
		return nil, fmt.Errorf("kexec: %w: kernel %s (init_size), initrd %s, headers and %s free for kexec's page tables need more than the reservation %v (%s)",
			ErrTooLarge, MiB(kMem), MiB(initrdMem), MiB(minControlRoom), res, MiB(res.Size()))
	}

	l := &ClassicLoad{Cmdline: cmdline, Elfcorehdr: hdrAddr, Entry: purgAddr}
	l.E820 = captureE820(ci, Range{hdrAddr, top - 1})
	if len(l.E820) > e820MaxZeroPage {
		return nil, fmt.Errorf("kexec: the capture kernel's memory map has %d entries, the zero page holds %d", len(l.E820), e820MaxZeroPage)
	}
	bp := zeroPage(ci, kernel, l.E820)
	le := binary.LittleEndian
	le.PutUint32(bp[bpCode32Start:], uint32(kAddr))
	le.PutUint32(bp[bpCmdLinePtr:], uint32(cmdAddr))
	le.PutUint32(bp[bpExtCmdLinePtr:], uint32(cmdAddr>>32))
	if len(initrd) > 0 {
		le.PutUint32(bp[bpRamdiskImage:], uint32(initrdAddr))
		le.PutUint32(bp[bpExtRamdiskImage:], uint32(initrdAddr>>32))
		le.PutUint32(bp[bpRamdiskSize:], uint32(len(initrd)))
		le.PutUint32(bp[bpExtRamdiskSize:], uint32(uint64(len(initrd))>>32))
	}
	bpSeg := append(bp, cmdline...)
	bpSeg = append(bpSeg, 0)

	l.Segments = []Segment{
		{What: "kernel", Buf: body, Mem: kAddr, MemSz: kMem},
		{What: "boot params", Buf: bpSeg, Mem: bpAddr, MemSz: bpMem},
		{What: "purgatory", Buf: purgatoryX86(purgAddr, bpAddr, kAddr+bzEntry64), Mem: purgAddr, MemSz: purgMem},
		{What: "elfcorehdr", Buf: hdr, Mem: hdrAddr, MemSz: hdrMem},
	}
	if len(initrd) > 0 {
		l.Segments = append(l.Segments, Segment{What: "initrd", Buf: initrd, Mem: initrdAddr, MemSz: initrdMem})
	}
	sort.Slice(l.Segments, func(i, j int) bool { return l.Segments[i].Mem < l.Segments[j].Mem })
	return l, nil
}

// topPlacement is what both machines put at the reservation's top: the
// ELF core header, the initrd below it.
type topPlacement struct {
	hdr                   []byte
	hdrAddr, hdrMem       uint64
	initrdAddr, initrdMem uint64
}

// placeTop builds the ELF core header and places it and an initrd of
// initrdLen bytes at the top of the reservation.
func placeTop(ci *CrashInfo, initrdLen int) (topPlacement, error) {
	var t topPlacement
	hdr, err := ci.Elfcorehdr()
	if err != nil {
		return t, err
	}
	res := ci.Crash
	if res.Start&(pageSize-1) != 0 || (res.End+1)&(pageSize-1) != 0 {
		return t, fmt.Errorf("kexec: crash reservation %v is not page aligned", res)
	}
	t.hdr, t.hdrMem, t.initrdMem = hdr, alignUp(uint64(len(hdr)), pageSize), alignUp(uint64(initrdLen), pageSize)
	if t.hdrMem+t.initrdMem > res.Size() {
		return t, fmt.Errorf("kexec: %w: initrd %s and headers need more than the reservation %v (%s)", ErrTooLarge, MiB(t.initrdMem), res, MiB(res.Size()))
	}
	t.hdrAddr = res.End + 1 - t.hdrMem
	t.initrdAddr = t.hdrAddr - t.initrdMem
	return t, nil
}

// captureE820 is the x86 capture kernel's memory map: RAM below 1 MiB,
// the firmware's ACPI, NVS and reserved ranges, the low reservations, and
// the reservation minus keep (the ELF core header, which must survive the
// capture kernel's boot).
func captureE820(ci *CrashInfo, keep Range) []E820Entry {
	var m []E820Entry
	add := func(rs []Range, typ uint32) {
		for _, r := range rs {
			m = append(m, E820Entry{r, typ})
		}
	}
	var low []Range
	for _, r := range ci.RAM {
		if r.Start < 1<<20 {
			low = append(low, Range{r.Start, min(r.End, 1<<20-1)})
		}
	}
	add(subtract(low, append([]Range{ci.Crash}, ci.CrashLow...)), e820RAM)
	add(ci.ACPI, e820ACPI)
	add(ci.NVS, e820NVS)
	add(ci.Reserved, e820Reserved)
	add(ci.CrashLow, e820RAM)
	add(subtract([]Range{ci.Crash}, []Range{keep}), e820RAM)
	sort.Slice(m, func(i, j int) bool { return m[i].Start < m[j].Start })
	return m
}

// zeroPage fills the capture kernel's boot_params: the running kernel's
// (its firmware facts: screen, EDD, ACPI RSDP, secure boot state) with the
// new kernel's setup header, and what must not be inherited cleared: EFI
// (its memory map and runtime services are not passed on), setup_data
// (the running kernel's, in memory the capture kernel does not own), the
// SEV blob.
func zeroPage(ci *CrashInfo, kernel []byte, e820 []E820Entry) []byte {
	bp := make([]byte, zeroPageSize)
	copy(bp, ci.BootParams)
	subarch := binary.LittleEndian.Uint32(bp[bpHardwareSubarch:])
	clear(bp[bpEFIInfo : bpEFIInfo+32])
	clear(bp[bpCCBlobAddress : bpCCBlobAddress+4])
	clear(bp[bpHdr:bpHdrEnd])
	clear(bp[bpE820Table : bpE820Table+e820MaxZeroPage*20])
	bp[bpSentinel] = 0
	// The setup header runs from 0x1f1 to 0x202 plus the jump's byte at
	// 0x201 (boot.rst).
	hdrEnd := min(0x202+int(kernel[0x201]), bpHdrEnd, len(kernel))
	copy(bp[bpHdr:hdrEnd], kernel[bpHdr:hdrEnd])
	bp[bpTypeOfLoader] = loaderKexec
	binary.LittleEndian.PutUint32(bp[bpHardwareSubarch:], subarch)
	binary.LittleEndian.PutUint64(bp[bpSetupData:], 0)
	bp[bpE820Entries] = byte(len(e820))
	for i, e := range e820 {
		o := bpE820Table + 20*i
		binary.LittleEndian.PutUint64(bp[o:], e.Start)
		binary.LittleEndian.PutUint64(bp[o+8:], e.Size())
		binary.LittleEndian.PutUint32(bp[o+16:], e.Type)
	}
	return bp
}

// Where things sit in the x86 purgatory segment.
const (
	purgGDTDesc  = 0x80  // lgdt's operand: u16 limit, u64 base
	purgGDT      = 0x100 // four descriptors: null, null, __BOOT_CS, __BOOT_DS
	purgStackTop = 2 * pageSize
	bootCS       = 0x10 // __BOOT_CS
	bootDS       = 0x18 // __BOOT_DS
)

// purgatoryX86 generates the x86-64 purgatory at physical address base.
// relocate_kernel enters it in 64-bit mode on identity-mapped page tables,
// interrupts off, with the dead kernel's GDT still loaded (at a virtual
// address those tables do not map). startup_64 wants (boot.rst, 64-bit boot
// protocol): a GDT with 4 GiB flat __BOOT_CS (0x10, execute/read) and
// __BOOT_DS (0x18, read/write) loaded, CS = __BOOT_CS, DS = ES = SS =
// __BOOT_DS, interrupts off, rsi = the boot params. So:
//
//	cli
//	lgdt  gdt_desc(%rip)
//	mov   $stack_top, %rsp
//	mov   $__BOOT_DS, %eax; mov %eax, %ds, %es, %ss, %fs, %gs
//	push  $__BOOT_CS; lea 1f(%rip), %rax; push %rax; lretq
//	1: mov $boot_params, %rsi; mov $entry, %rax; jmp *%rax
func purgatoryX86(base, bootParams, entry uint64) []byte {
	b := make([]byte, 0, purgGDT+32)
	le := binary.LittleEndian
	b = append(b, 0xfa)                         // cli
	b = append(b, 0x0f, 0x01, 0x15, 0, 0, 0, 0) // lgdt rel32(%rip)
	le.PutUint32(b[len(b)-4:], uint32(purgGDTDesc-len(b)))
	b = append(b, 0x48, 0xbc) // movabs $imm64, %rsp
	b = le.AppendUint64(b, base+purgStackTop)
	b = append(b, 0xb8, bootDS, 0, 0, 0) // mov $__BOOT_DS, %eax
	for _, modrm := range []byte{0xd8, 0xc0, 0xd0, 0xe0, 0xe8} {
		b = append(b, 0x8e, modrm) // mov %eax, %ds / %es / %ss / %fs / %gs
	}
	b = append(b, 0x6a, bootCS)                 // push $__BOOT_CS
	b = append(b, 0x48, 0x8d, 0x05, 0, 0, 0, 0) // lea rel32(%rip), %rax
	lea := len(b)
	b = append(b, 0x50)       // push %rax
	b = append(b, 0x48, 0xcb) // lretq
	le.PutUint32(b[lea-4:], uint32(len(b)-lea))
	b = append(b, 0x48, 0xbe) // movabs $imm64, %rsi
	b = le.AppendUint64(b, bootParams)
	b = append(b, 0x48, 0xb8) // movabs $imm64, %rax
	b = le.AppendUint64(b, entry)
	b = append(b, 0xff, 0xe0) // jmp *%rax
	if len(b) > purgGDTDesc {
		panic("kexec: x86 purgatory code overlaps its GDT descriptor")
	}
	b = b[:purgGDT+32]
	le.PutUint16(b[purgGDTDesc:], 4*8-1)
	le.PutUint64(b[purgGDTDesc+2:], base+purgGDT)
	le.PutUint64(b[purgGDT+2*8:], 0x00af9a000000ffff) // __BOOT_CS: 64-bit code, base 0, limit 4 GiB
	le.PutUint64(b[purgGDT+3*8:], 0x00cf92000000ffff) // __BOOT_DS: data, read/write, base 0, limit 4 GiB
	return b
}

// hasParam reports whether cmdline sets the parameter key.
func hasParam(cmdline, key string) bool {
	for _, a := range splitCmdline(cmdline) {
		if paramKey(a) == key {
			return true
		}
	}
	return false
}
