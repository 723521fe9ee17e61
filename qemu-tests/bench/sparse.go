package main

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
	"golang.org/x/sys/unix"
)

// x86_64 constants, as arch/x86 spells them.
const (
	startKernelMap = 0xffffffff80000000 // __START_KERNEL_map
	pagePresent    = 1 << 0
	pagePSE        = 1 << 7
	pmdAddrMask    = ((1 << 52) - 1) &^ (1<<21 - 1) // address bits of a 2 MiB page's PMD entry
	pudAddrMask    = ((1 << 52) - 1) &^ (1<<30 - 1) // of a 1 GiB page's PUD entry
	tableAddrMask  = ((1 << 52) - 1) &^ 0xfff
)

// maxOrder is the order of the free blocks the added RAM is made of: 4 MiB,
// the largest buddy block of the 6.1 kernel (MAX_ORDER 11).
const maxOrder = 10

// patternChunks is how many distinct 2 MiB of struct pages the new memory
// map cycles through: enough that a reader's cache of recently read pages
// (makedumpfile keeps a few) misses as it would on a real memory map, few
// enough that the file stays small.
const patternChunks = 32

// makeSparse writes dst: the x86_64 ELF vmcore base with extra bytes of
// RAM added at the first GiB boundary at or above 4 GiB past base's
// memory, in a sparse file. The added RAM is what a machine with more
// memory, nearly all free, would show a dump tool:
//
//   - mem_section gets the new sections: those of its first root in place,
//     the roots after it pointing to one page of present sections;
//   - the kernel's page tables map the new RAM's part of vmemmap with
//     2 MiB pages, cycling through the first patternChunks × 2 MiB of the
//     new RAM (the PMD tables past the first one are one table, mapped by
//     every PUD entry that needs one);
//   - each of those chunks holds the struct pages of 32768 page frames
//     that are free buddy blocks of order 10, so every new page frame is
//     in one.
//
// Both tools then read a memory map for every new page frame, 64 bytes
// each, and filter all of the new RAM as free at -d 16 (and read it all at
// -d 1, where it is zero); the file stores only the 64 MiB of chunks and
// two pages: a terabyte of RAM costs that much disk. It needs
// SPARSEMEM_EXTREME, 4-level paging and the new memory map within one PUD
// table, and RAM past the first root of mem_section to end at a root's
// boundary, which a 6.1 x86_64 dump given up to 16 GiB, or RAM up to a
// multiple of 32 GiB (up to 64 TiB), satisfies.
func makeSparse(base, dst string, extra uint64) error {
	in, err := os.Open(base)
	if err != nil {
		return err
	}
	defer in.Close()
	ef, err := elf.NewFile(in)
	if err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Data != elf.ELFDATA2LSB || ef.Type != elf.ET_CORE || ef.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s: not an x86_64 ELF core", base)
	}
	src, err := vmcore.NewFile(in, fileSize(in))
	if err != nil {
		return err
	}
	var top, directMap uint64
	haveDirect := false
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		top = max(top, p.Paddr+p.Memsz)
		// The direct map is where the kernel's vmcore puts RAM: the
		// segment with the lowest virtual address (the kernel image sits
		// higher, at __START_KERNEL_map).
		if d := p.Vaddr - p.Paddr; !haveDirect || d < directMap {
			directMap, haveDirect = d, true
		}
	}
	if !haveDirect || extra == 0 || extra%(4<<20) != 0 {
		return fmt.Errorf("%s: no PT_LOAD, or %d bytes of RAM to add (want a multiple of 4 MiB)", base, extra)
	}
	start := max(uint64(4)<<30, (top+1<<30-1)&^(1<<30-1))
	patches, err := structPages(src, start, extra, directMap)
	if err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}

	progs := ef.Progs
	phnum := len(progs) + 1
	hdr := make([]byte, 64+56*phnum)
	if _, err := in.ReadAt(hdr[:64], 0); err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint64(hdr[32:], 64) // e_phoff: makedumpfile expects the headers there
	le.PutUint64(hdr[40:], 0)  // e_shoff
	le.PutUint16(hdr[60:], 0)  // e_shnum
	le.PutUint16(hdr[62:], 0)  // e_shstrndx
	le.PutUint16(hdr[56:], uint16(phnum))

	out, err := os.OpenFile(dst+".tmp", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(dst + ".tmp")
	defer out.Close()
	align := func(a uint64) uint64 { return (a + 4095) &^ 4095 }
	putPhdr := func(i int, p elf.ProgHeader, at uint64) {
		b := hdr[64+56*i:]
		le.PutUint32(b[0:], uint32(p.Type))
		le.PutUint32(b[4:], uint32(p.Flags))
		le.PutUint64(b[8:], at)
		le.PutUint64(b[16:], p.Vaddr)
		le.PutUint64(b[24:], p.Paddr)
		le.PutUint64(b[32:], p.Filesz)
		le.PutUint64(b[40:], p.Memsz)
		le.PutUint64(b[48:], p.Align)
	}
	// Segments in their order, memory page-aligned as /proc/vmcore has it.
	type placed struct{ paddr, size, off uint64 }
	var loads []placed
	off := uint64(len(hdr))
	for i, p := range progs {
		if p.Type == elf.PT_LOAD {
			off = align(off)
			loads = append(loads, placed{p.Paddr, p.Filesz, off})
		}
		if p.Filesz > 0 {
			src := io.NewSectionReader(in, int64(p.Off), int64(p.Filesz))
			if _, err := io.Copy(io.NewOffsetWriter(out, int64(off)), src); err != nil {
				return fmt.Errorf("copy segment %d: %w", i, err)
			}
		}
		putPhdr(i, p.ProgHeader, off)
		off += p.Filesz
	}
	off = align(off)
	putPhdr(phnum-1, elf.ProgHeader{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W | elf.PF_X,
		Vaddr: directMap + start, Paddr: start, Filesz: extra, Memsz: extra}, off)
	loads = append(loads, placed{start, extra, off})
	if err := out.Truncate(int64(off + extra)); err != nil {
		return err
	}
	// Physical memory the kernel image segment and the direct map both
	// hold is patched in both.
	for _, pt := range patches {
		n := 0
		for _, l := range loads {
			if pt.paddr >= l.paddr && pt.paddr+uint64(len(pt.data)) <= l.paddr+l.size {
				if _, err := out.WriteAt(pt.data, int64(l.off+pt.paddr-l.paddr)); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("physical %#x is in no segment", pt.paddr)
		}
	}
	if _, err := out.WriteAt(hdr, 0); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

func fileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// patch is bytes to write at a physical address of the new vmcore.
type patch struct {
	paddr uint64
	data  []byte
}

// structPages returns the writes that give the RAM [start, start+size) of
// src's machine sections, a memory map and free struct pages (see
// makeSparse). directMap is where the kernel maps physical memory.
func structPages(src *vmcore.File, start, ramSize, directMap uint64) ([]patch, error) {
	info := src.VMCOREINFO
	if info == nil {
		return nil, errors.New("no VMCOREINFO")
	}
	mem, err := kmem.New(src, info, src.Machine)
	if err != nil {
		return nil, err
	}
	var missing []string
	get := func(what string, v int64, ok bool) uint64 {
		if !ok {
			missing = append(missing, what)
		}
		return uint64(v)
	}
	sym := func(name string) uint64 {
		v, ok := info.Symbol(name)
		return get("SYMBOL("+name+")", int64(v), ok)
	}
	size := func(name string) uint64 { v, ok := info.Size(name); return get("SIZE("+name+")", v, ok) }
	offset := func(name string) uint64 { v, ok := info.Offset(name); return get("OFFSET("+name+")", v, ok) }
	number := func(name string) uint64 { v, ok := info.Number(name); return get("NUMBER("+name+")", v, ok) }
	pageStruct, secSize := size("page"), size("mem_section")
	mapOff := offset("mem_section.section_mem_map")
	mapcountOff, privateOff := offset("page._mapcount"), offset("page.private")
	secBits, physBase := number("SECTION_SIZE_BITS"), number("phys_base")
	buddy := number("PAGE_BUDDY_MAPCOUNT_VALUE")
	pgdVirt, roots := sym("init_top_pgt"), sym("mem_section")
	if len(missing) > 0 {
		return nil, fmt.Errorf("VMCOREINFO lacks %v", missing)
	}
	if secSize == 0 || secSize > 4096 || 4096%secSize != 0 || secBits <= 12+maxOrder || secBits > 40 ||
		mapcountOff+4 > pageStruct || privateOff+8 > pageStruct || pageStruct > 4096 || (2<<20)%pageStruct != 0 {
		return nil, fmt.Errorf("unexpected layout: SIZE(mem_section)=%d SIZE(page)=%d SECTION_SIZE_BITS=%d",
			secSize, pageStruct, secBits)
	}
	if l5, ok := info.Number("pgtable_l5_enabled"); ok && l5 != 0 {
		return nil, errors.New("5-level paging is not supported")
	}
	nroots, ok := info.Length("mem_section")
	if !ok || nroots <= 1 {
		return nil, errors.New("not SPARSEMEM_EXTREME")
	}
	pfnShift := secBits - 12
	perRoot := 4096 / secSize
	end := start + ramSize
	firstSec, endSec := (start>>12)>>pfnShift, (end>>12)>>pfnShift
	if (start>>12)%(1<<pfnShift) != 0 || (end>>12)%(1<<pfnShift) != 0 ||
		(endSec > perRoot && endSec%perRoot != 0) || endSec > uint64(nroots)*perRoot {
		return nil, fmt.Errorf("sections %d..%d: RAM past the first root of %d must end at a root's boundary, within %d roots",
			firstSec, endSec, perRoot, nroots)
	}

	// The three pages of data the new RAM holds: the struct pages every
	// 2 MiB of the new memory map maps to, a root of present sections,
	// a PMD table of 2 MiB pages of them.
	pattern, rootPage, pmdPage := start, start+patternChunks*2<<20, start+patternChunks*2<<20+4096
	if ramSize < patternChunks*2<<20+8192 {
		return nil, fmt.Errorf("%d bytes of RAM to add: want at least %d", ramSize, patternChunks*2<<20+8192)
	}
	var out []patch

	entry := func(table, idx uint64) (uint64, error) {
		var b [8]byte
		if _, err := src.ReadPhys(b[:], table+idx*8); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	pgd := pgdVirt - startKernelMap + physBase

	// mem_section: the encoded section_mem_map of a vmemmap kernel is
	// the address of pfn 0's struct page, flags in its low bits; every
	// section has the same.
	block, err := mem.U64(roots)
	if err != nil || block == 0 {
		return nil, fmt.Errorf("mem_section root 0: %v", err)
	}
	var tmpl uint64
	for nr := uint64(0); nr < firstSec; nr++ {
		e, err := mem.U64(block + nr*secSize + mapOff)
		if err != nil {
			return nil, err
		}
		if e&3 == 3 { // SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
			tmpl = e
		}
		if e != 0 && e&3 != 3 {
			return nil, fmt.Errorf("section %d: unexpected section_mem_map %#x", nr, e)
		}
	}
	if tmpl == 0 {
		return nil, errors.New("no present section to copy")
	}
	vmemmap := tmpl &^ 0xfff
	for nr := firstSec; nr < min(endSec, perRoot); nr++ {
		va := block + nr*secSize + mapOff
		if e, err := mem.U64(va); err != nil || e != 0 {
			return nil, fmt.Errorf("section %d is there already (%#x, %v)", nr, e, err)
		}
		pa, _, err := mem.Translate(va)
		if err != nil {
			return nil, err
		}
		out = append(out, patch{pa, binary.LittleEndian.AppendUint64(nil, tmpl)})
	}
	if endSec > perRoot {
		root := make([]byte, 4096)
		for i := uint64(0); i < perRoot; i++ {
			binary.LittleEndian.PutUint64(root[i*secSize+mapOff:], tmpl)
		}
		out = append(out, patch{rootPage, root})
		// The roots are direct-map addresses, which the readers
		// translate with the page tables: map the new RAM's first GiB
		// there with a 1 GiB page, as the kernel maps RAM.
		dva := directMap + start
		dpgde, err := entry(pgd, (dva>>39)&511)
		if err != nil || dpgde&pagePresent == 0 {
			return nil, fmt.Errorf("direct map PGD entry %#x: %v", dpgde, err)
		}
		dpud := dpgde & tableAddrMask
		idx := (dva >> 30) & 511
		if e, err := entry(dpud, idx); err != nil || e != 0 {
			return nil, fmt.Errorf("direct map PUD entry %d is in use (%#x, %v)", idx, e, err)
		}
		const gigPage = pagePresent | 1<<1 | 1<<5 | 1<<6 | pagePSE | 1<<63 // present, RW, accessed, dirty, 1 GiB, NX
		out = append(out, patch{dpud + idx*8, binary.LittleEndian.AppendUint64(nil, start&pudAddrMask|gigPage)})
		for r := uint64(1); r < endSec/perRoot; r++ {
			va := roots + r*8
			if e, err := mem.U64(va); err != nil || e != 0 {
				return nil, fmt.Errorf("mem_section root %d is there already (%#x, %v)", r, e, err)
			}
			pa, _, err := mem.Translate(va)
			if err != nil {
				return nil, err
			}
			out = append(out, patch{pa, binary.LittleEndian.AppendUint64(nil, directMap+rootPage)})
		}
	}

	// Page tables: vmemmap's 2 MiB pages of the new page frames all map
	// to the pattern; the first PMD table gets entries, the PUD entries
	// after it the one PMD table.
	mapBytes := (ramSize >> 12) * pageStruct
	if mapBytes%(2<<20) != 0 {
		return nil, fmt.Errorf("memory map of %d bytes is not whole 2 MiB pages", mapBytes)
	}
	vstart, vend := vmemmap+(start>>12)*pageStruct, vmemmap+(end>>12)*pageStruct
	if vstart>>39 != (vend-1)>>39 {
		return nil, errors.New("the new memory map crosses a PGD entry")
	}
	pgde, err := entry(pgd, (vstart>>39)&511)
	if err != nil || pgde&pagePresent == 0 {
		return nil, fmt.Errorf("vmemmap PGD entry %#x: %v", pgde, err)
	}
	pud := pgde & tableAddrMask
	pude, err := entry(pud, (vstart>>30)&511)
	if err != nil || pude&pagePresent == 0 || pude&pagePSE != 0 {
		return nil, fmt.Errorf("vmemmap PUD entry %#x: %v", pude, err)
	}
	if vmemmap>>30 != vstart>>30 {
		return nil, errors.New("vmemmap's first PMD table does not cover the start of the new memory map")
	}
	pmd := pude & tableAddrMask
	pmdTmpl, err := entry(pmd, (vmemmap>>21)&511)
	if err != nil || pmdTmpl&pagePresent == 0 || pmdTmpl&pagePSE == 0 {
		return nil, fmt.Errorf("vmemmap is not mapped with 2 MiB pages (PMD entry %#x, %v)", pmdTmpl, err)
	}
	// The PMD entry of vmemmap's 2 MiB page number i.
	toPattern := func(i uint64) []byte {
		chunk := pattern + i%patternChunks*2<<20
		return binary.LittleEndian.AppendUint64(nil, pmdTmpl&^pmdAddrMask|chunk&pmdAddrMask)
	}
	firstEnd := min(vend, (vstart>>30+1)<<30)
	for va := vstart; va < firstEnd; va += 2 << 20 {
		idx := (va >> 21) & 511
		if e, err := entry(pmd, idx); err != nil || e != 0 {
			return nil, fmt.Errorf("PMD entry %d is in use (%#x, %v)", idx, e, err)
		}
		out = append(out, patch{pmd + idx*8, toPattern(idx)})
	}
	if vend > firstEnd {
		table := make([]byte, 4096)
		for i := uint64(0); i < 512; i++ {
			copy(table[i*8:], toPattern(i))
		}
		out = append(out, patch{pmdPage, table})
		pudTmpl := pude&^tableAddrMask | pmdPage&tableAddrMask
		for va := firstEnd; va < vend; va += 1 << 30 {
			idx := (va >> 30) & 511
			if e, err := entry(pud, idx); err != nil || e != 0 {
				return nil, fmt.Errorf("PUD entry %d is in use (%#x, %v)", idx, e, err)
			}
			out = append(out, patch{pud + idx*8, binary.LittleEndian.AppendUint64(nil, pudTmpl)})
		}
	}

	// The struct pages of 2 MiB of memory map: free buddy blocks of
	// order 10 (the pattern's page frames are 2 MiB-aligned multiples of
	// it).
	pat := make([]byte, 2<<20)
	per := uint64(2<<20) / pageStruct
	for pfn := uint64(0); pfn < per; pfn += 1 << maxOrder {
		rec := pat[pfn*pageStruct:]
		binary.LittleEndian.PutUint32(rec[mapcountOff:], uint32(buddy))
		binary.LittleEndian.PutUint64(rec[privateOff:], maxOrder)
	}
	if (start>>12)%per != 0 || per%(1<<maxOrder) != 0 {
		return nil, fmt.Errorf("the new RAM at %#x is not aligned to the memory map's 2 MiB pages", start)
	}
	for c := uint64(0); c < patternChunks; c++ {
		out = append(out, patch{pattern + c*2<<20, pat})
	}
	return out, nil
}

// dataExtents returns the [start, end) ranges of f that hold data, or the
// whole file where the filesystem cannot tell.
func dataExtents(f *os.File) [][2]int64 {
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	size := st.Size()
	var out [][2]int64
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from off on
		}
		if err != nil {
			return [][2]int64{{0, size}}
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return [][2]int64{{0, size}}
		}
		out = append(out, [2]int64{d, h})
		off = h
	}
	return out
}
