package vmcore

import (
	"bytes"
	"cmp"
	"container/heap"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// Limits on what a header may ask for. They are far above anything a real
// kernel writes (one PT_LOAD per memory range, one note per CPU) and keep a
// corrupt header from sizing huge allocations.
const (
	MaxSegments = 1 << 16 // program headers
	MaxNoteSize = 64 << 20
	MaxNotes    = 1 << 16
)

// Sentinel errors, wrapped with the offset and detail of the fault.
var (
	ErrNotELF       = errors.New("vmcore: not an ELF file")
	ErrNotCore      = errors.New("vmcore: not an ELF core file")
	ErrUnsupported  = errors.New("vmcore: unsupported ELF class or byte order")
	ErrCorrupt      = errors.New("vmcore: corrupt")
	ErrNoVMCOREINFO = errors.New("vmcore: no VMCOREINFO note")
	// ErrHole is returned for reads of physical memory that no PT_LOAD
	// covers, or that a PT_LOAD declares but does not store (p_filesz <
	// p_memsz, as in filtered ELF dumps).
	ErrHole = errors.New("vmcore: address not in dump")
)

// Segment is one PT_LOAD.
type Segment struct {
	Offset   uint64 // file offset of the data
	VirtAddr uint64
	PhysAddr uint64
	FileSize uint64 // bytes present in the file
	MemSize  uint64 // bytes of memory the segment describes
	// Truncated is how many bytes of the header's p_filesz lie past the
	// end of the file (a copy cut short): memory missing, not zero.
	Truncated uint64
}

// Note is one ELF note from the PT_NOTE segment(s).
type Note struct {
	Name   string
	Type   uint32
	Desc   []byte
	Offset int64 // file offset of the note header
}

// NT_PRSTATUS and the VMCOREINFO note's name, as the kernel spells them.
const (
	NT_PRSTATUS    = 1
	NoteVMCOREINFO = "VMCOREINFO"
)

// PRStatus is the part of one CPU's NT_PRSTATUS note a dump tool needs.
type PRStatus struct {
	PID  int32
	Regs []uint64 // the machine's pr_reg in the kernel's order
	Desc []byte   // the whole descriptor
}

// FlagIncomplete is the e_flags bit makedumpfile and gokdump set in an ELF
// dump that could not be finished (a full disk, an interrupted capture).
const FlagIncomplete = 1

// eFlagsOff is where e_flags is in an ELF64 header.
const eFlagsOff = 48

// MarkIncomplete sets FlagIncomplete in the ELF64 header of the file rw,
// whose byte order is bo: every reader then knows the dump is not whole.
func MarkIncomplete(rw interface {
	io.ReaderAt
	io.WriterAt
}, bo binary.ByteOrder) error {
	var b [4]byte
	if _, err := rw.ReadAt(b[:], eFlagsOff); err != nil {
		return fmt.Errorf("vmcore: read e_flags: %w", err)
	}
	bo.PutUint32(b[:], bo.Uint32(b[:])|FlagIncomplete)
	if _, err := rw.WriteAt(b[:], eFlagsOff); err != nil {
		return fmt.Errorf("vmcore: write e_flags: %w", err)
	}
	return nil
}

// File is an open ELF vmcore.
type File struct {
	Class     elf.Class
	ByteOrder binary.ByteOrder
	Machine   elf.Machine
	Flags     uint32 // e_flags; FlagIncomplete marks a dump left incomplete
	// PhOff and PhNum are where the program headers are (e_phoff) and
	// how many (PN_XNUM resolved).
	PhOff int64
	PhNum int

	// Segments are the PT_LOADs in file order.
	Segments []Segment
	// NoteData holds the PT_NOTE segment bytes, concatenated when there are
	// several, and NoteOffset the file offset of the first. Writers copy
	// them verbatim.
	NoteData []byte
	Notes    []Note
	// VMCOREINFO is nil when the dump has no VMCOREINFO note.
	VMCOREINFO *vmcoreinfo.Info
	// VMCOREINFOOffset is the offset within NoteData of the VMCOREINFO
	// note's descriptor, and VMCOREINFOSize its length; -1 when absent.
	VMCOREINFOOffset int64
	VMCOREINFOSize   int64
	PRStatus         []PRStatus
	// NoteErr says why part of the notes was dropped: a note whose sizes
	// overrun its segment ends the walk, as it would for any reader. The
	// notes before it, and a VMCOREINFO note found past it, are kept, and
	// NoteData is then rebuilt from them alone, so that writers copy a
	// block the analysis tools can parse. Nil when every note parsed.
	NoteErr error

	// PageSize is VMCOREINFO's PAGESIZE, or the machine's default.
	PageSize int64

	// Missing is the memory the dump lacks: the data of truncated
	// PT_LOADs and the ranges a GOKDUMP note lists (see NoteGokdump); nil
	// when nothing is missing. Reads of it fail with ErrMissing.
	Missing *Missing
	// Warnings say what of the headers NewFile clipped or could not use,
	// one line each: a truncated file, a segment wrapping the address
	// space, an unreadable GOKDUMP note.
	Warnings []string

	r      io.ReaderAt
	size   int64
	ranges []physRange // sorted, non-overlapping
	closer io.Closer
}

// physRange maps physical [start, end) to file data: [start, fileEnd) is
// stored from offset on, [fileEnd, missEnd) is missing (the file should
// hold it and does not), [missEnd, end) is declared only (p_memsz >
// p_filesz).
type physRange struct {
	start, end uint64 // physical addresses
	fileEnd    uint64 // physical address where file data ends (≤ missEnd)
	missEnd    uint64 // physical address where missing data ends (≤ end)
	offset     uint64 // file offset of start
}

// NewFile reads the ELF headers and notes of a vmcore of size bytes in r.
func NewFile(r io.ReaderAt, size int64) (*File, error) {
	var ident [elf.EI_NIDENT]byte
	if err := readAt(r, ident[:], 0); err != nil {
		return nil, fmt.Errorf("%w: read ident: %v", ErrNotELF, err)
	}
	if string(ident[:4]) != elf.ELFMAG {
		return nil, ErrNotELF
	}
	f := &File{r: r, size: size, VMCOREINFOOffset: -1}
	f.Class = elf.Class(ident[elf.EI_CLASS])
	switch elf.Data(ident[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		f.ByteOrder = binary.LittleEndian
	case elf.ELFDATA2MSB:
		f.ByteOrder = binary.BigEndian
	default:
		return nil, fmt.Errorf("%w: data encoding %d", ErrUnsupported, ident[elf.EI_DATA])
	}
	if f.Class != elf.ELFCLASS64 {
		// Every architecture we dump is 64-bit; a 32-bit vmcore would need
		// its own page tables and struct page layout anyway.
		return nil, fmt.Errorf("%w: class %v", ErrUnsupported, f.Class)
	}
	var hdr elf.Header64
	if err := readStruct(r, 0, f.ByteOrder, &hdr); err != nil {
		return nil, fmt.Errorf("%w: read ELF header: %v", ErrNotELF, err)
	}
	if elf.Type(hdr.Type) != elf.ET_CORE {
		return nil, fmt.Errorf("%w: type %v", ErrNotCore, elf.Type(hdr.Type))
	}
	f.Machine = elf.Machine(hdr.Machine)
	f.Flags = hdr.Flags
	if hdr.Phentsize != 56 {
		return nil, fmt.Errorf("%w: e_phentsize %d, want 56", ErrCorrupt, hdr.Phentsize)
	}
	phnum := uint64(hdr.Phnum)
	if hdr.Phnum == 0xffff {
		// PN_XNUM: the real count is in section 0's sh_info.
		n, err := f.extendedPhnum(hdr)
		if err != nil {
			return nil, err
		}
		phnum = n
	}
	if phnum == 0 || phnum > MaxSegments {
		return nil, fmt.Errorf("%w: %d program headers", ErrCorrupt, phnum)
	}
	if hdr.Phoff > uint64(size) || phnum*56 > uint64(size)-hdr.Phoff {
		return nil, fmt.Errorf("%w: program headers at %#x (%d) past end of file (%d bytes)",
			ErrCorrupt, hdr.Phoff, phnum, size)
	}
	f.PhOff, f.PhNum = int64(hdr.Phoff), int(phnum)
	phbuf := make([]byte, phnum*56)
	if err := readAt(r, phbuf, int64(hdr.Phoff)); err != nil {
		return nil, fmt.Errorf("vmcore: read program headers at %#x: %w", hdr.Phoff, err)
	}
	var notes []elf.Prog64
	for i := uint64(0); i < phnum; i++ {
		var ph elf.Prog64
		b := phbuf[i*56:]
		ph.Type = f.ByteOrder.Uint32(b[0:])
		ph.Flags = f.ByteOrder.Uint32(b[4:])
		ph.Off = f.ByteOrder.Uint64(b[8:])
		ph.Vaddr = f.ByteOrder.Uint64(b[16:])
		ph.Paddr = f.ByteOrder.Uint64(b[24:])
		ph.Filesz = f.ByteOrder.Uint64(b[32:])
		ph.Memsz = f.ByteOrder.Uint64(b[40:])
		ph.Align = f.ByteOrder.Uint64(b[48:])
		off := hdr.Phoff + i*56
		switch elf.ProgType(ph.Type) {
		case elf.PT_LOAD:
			if ph.Filesz > ph.Memsz {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x: p_filesz %#x > p_memsz %#x",
					ErrCorrupt, off, ph.Filesz, ph.Memsz)
			}
			if ph.Memsz > ^uint64(0)-ph.Paddr {
				// Memory up to the top of the address space and beyond
				// is nonsense, but the rest of the dump is not: clip.
				f.Warnings = append(f.Warnings, fmt.Sprintf(
					"PT_LOAD at %#x: physical %#x+%#x wraps the address space; clipped to end at %#x",
					off, ph.Paddr, ph.Memsz, ^uint64(0)))
				ph.Memsz = ^uint64(0) - ph.Paddr
				ph.Filesz = min(ph.Filesz, ph.Memsz)
			}
			var truncated uint64
			if ph.Off > uint64(size) || ph.Filesz > uint64(size)-ph.Off {
				// A truncated file (disk full, copy cut short): keep what
				// is there rather than refuse the whole dump; the rest is
				// missing, which is not the same as zero.
				stored := uint64(0)
				if ph.Off <= uint64(size) {
					stored = uint64(size) - ph.Off
				}
				truncated = ph.Filesz - stored
				ph.Filesz = stored
				f.Warnings = append(f.Warnings, fmt.Sprintf(
					"PT_LOAD at %#x: %d of its %d bytes of data are past the end of the file (%d bytes): missing",
					off, truncated, truncated+stored, size))
			}
			f.Segments = append(f.Segments, Segment{
				Offset: ph.Off, VirtAddr: ph.Vaddr, PhysAddr: ph.Paddr,
				FileSize: ph.Filesz, MemSize: ph.Memsz, Truncated: truncated,
			})
		case elf.PT_NOTE:
			notes = append(notes, ph)
		}
	}
	if err := f.readNotes(notes); err != nil {
		return nil, err
	}
	f.PageSize = defaultPageSize(f.Machine)
	if f.VMCOREINFO != nil {
		if ps, ok := f.VMCOREINFO.PageSize(); ok && ps >= 4096 && ps <= 1<<16 {
			f.PageSize = ps
		}
	}
	f.buildRanges()
	listed := f.Missing
	if listed != nil {
		f.markListed(listed)
	}
	// The note's list stands even where no PT_LOAD declares the memory
	// (gokdump's ELF output declares only what it stores), and so do the
	// pages it counts but cannot list.
	f.Missing = MergeMissing(f.missingPages(), listed)
	return f, nil
}

func (f *File) extendedPhnum(hdr elf.Header64) (uint64, error) {
	if hdr.Shoff == 0 || hdr.Shoff > uint64(f.size) || uint64(f.size)-hdr.Shoff < 64 {
		return 0, fmt.Errorf("%w: PN_XNUM without section header at %#x", ErrCorrupt, hdr.Shoff)
	}
	var b [4]byte
	if err := readAt(f.r, b[:], int64(hdr.Shoff)+44); err != nil {
		return 0, fmt.Errorf("vmcore: read section 0 at %#x: %w", hdr.Shoff, err)
	}
	return uint64(f.ByteOrder.Uint32(b[:])), nil
}

func (f *File) readNotes(phs []elf.Prog64) error {
	var total uint64
	for _, ph := range phs {
		if ph.Filesz > MaxNoteSize || total+ph.Filesz > MaxNoteSize {
			return fmt.Errorf("%w: PT_NOTE at %#x: %d bytes (limit %d)", ErrCorrupt, ph.Off, ph.Filesz, MaxNoteSize)
		}
		if ph.Off > uint64(f.size) || ph.Filesz > uint64(f.size)-ph.Off {
			return fmt.Errorf("%w: PT_NOTE at %#x+%#x past end of file", ErrCorrupt, ph.Off, ph.Filesz)
		}
		total += ph.Filesz
	}
	f.NoteData = make([]byte, 0, total)
	for _, ph := range phs {
		base := len(f.NoteData)
		f.NoteData = f.NoteData[:base+int(ph.Filesz)]
		seg := f.NoteData[base:]
		if err := readAt(f.r, seg, int64(ph.Off)); err != nil {
			return fmt.Errorf("vmcore: read PT_NOTE at %#x: %w", ph.Off, err)
		}
		if err := f.parseNotes(seg, int64(ph.Off), int64(base)); err != nil {
			return err
		}
	}
	if f.NoteErr != nil {
		f.rebuildNotes()
	}
	return nil
}

// parseNotes walks one PT_NOTE segment. fileOff is its file offset and
// dataOff its offset within NoteData.
func (f *File) parseNotes(seg []byte, fileOff, dataOff int64) error {
	ns, err := ParseNotes(seg, f.ByteOrder, f.Machine, fileOff)
	if err != nil {
		// A crashing kernel can leave a note half written (a CPU that
		// never answered the stop NMI). Dropping the whole block would
		// also drop VMCOREINFO, and with it every filter and the kernel
		// log: keep what parsed and look for VMCOREINFO past the damage.
		if f.NoteErr == nil {
			f.NoteErr = err
		}
		if ns.VMCOREINFO == nil && ns.damagedAt >= 0 {
			if n, ok := findVMCOREINFO(seg, ns.damagedAt, f.ByteOrder, fileOff); ok {
				ns.Notes = append(ns.Notes, n) // rebuildNotes parses it
			}
		}
	}
	if len(f.Notes)+len(ns.Notes) > MaxNotes {
		return fmt.Errorf("%w: more than %d notes", ErrCorrupt, MaxNotes)
	}
	f.Notes = append(f.Notes, ns.Notes...)
	f.PRStatus = append(f.PRStatus, ns.PRStatus...)
	if f.VMCOREINFO == nil && ns.VMCOREINFO != nil {
		f.VMCOREINFO = ns.VMCOREINFO
		f.VMCOREINFOOffset = dataOff + ns.VMCOREINFOOffset
		f.VMCOREINFOSize = ns.VMCOREINFOSize
	}
	if ns.MissingErr != nil {
		f.Warnings = append(f.Warnings, ns.MissingErr.Error())
	}
	if ns.Missing != nil {
		f.Missing = MergeMissing(f.Missing, ns.Missing)
	}
	return nil
}

// maxVMCOREINFOTries bounds the VMCOREINFO notes parsed in one block of
// notes, and so the work a block of decoys can cause: a real dump has one.
const maxVMCOREINFOTries = 4

// findVMCOREINFO looks for a well-formed VMCOREINFO note at a 4-byte
// aligned offset of seg at or after from. It parses at most
// maxVMCOREINFOTries candidates, each of at most vmcoreinfo.MaxSize bytes:
// a damaged block full of decoys costs one scan of its bytes.
func findVMCOREINFO(seg []byte, from int, bo binary.ByteOrder, fileOff int64) (Note, bool) {
	name := []byte(NoteVMCOREINFO + "\x00")
	descOff := 12 + int(align4(uint64(len(name))))
	tries := 0
	for pos := (from + 3) &^ 3; pos+descOff <= len(seg) && tries < maxVMCOREINFOTries; pos += 4 {
		if bo.Uint32(seg[pos:]) != uint32(len(name)) || !bytes.Equal(seg[pos+12:pos+12+len(name)], name) {
			continue
		}
		descsz := uint64(bo.Uint32(seg[pos+4:]))
		if descsz == 0 || descsz > vmcoreinfo.MaxSize || descsz > uint64(len(seg)-pos-descOff) {
			continue
		}
		tries++
		desc := seg[pos+descOff : pos+descOff+int(descsz)]
		if _, err := vmcoreinfo.Parse(desc); err != nil {
			continue
		}
		return Note{Name: NoteVMCOREINFO, Type: bo.Uint32(seg[pos+8:]), Desc: desc, Offset: fileOff + int64(pos)}, true
	}
	return Note{}, false
}

// rebuildNotes replaces NoteData by the notes that parsed, re-encoded,
// and parses that block again so that every offset refers to it.
func (f *File) rebuildNotes() {
	var b []byte
	for _, n := range f.Notes {
		b = AppendNote(b, f.ByteOrder, n.Name, n.Type, n.Desc)
	}
	// The only error left can be a VMCOREINFO note kept that does not
	// parse, which NoteErr already reports.
	ns, _ := ParseNotes(b, f.ByteOrder, f.Machine, 0)
	// Keep the file offsets of the originals for error messages.
	for i := range ns.Notes {
		ns.Notes[i].Offset = f.Notes[i].Offset
	}
	f.NoteData, f.Notes, f.PRStatus = b, ns.Notes, ns.PRStatus
	f.VMCOREINFO, f.VMCOREINFOOffset, f.VMCOREINFOSize = ns.VMCOREINFO, ns.VMCOREINFOOffset, ns.VMCOREINFOSize
}

// AppendNote appends an ELF note to b as the kernel writes one: the name
// NUL-terminated, name and descriptor each padded to 4 bytes.
func AppendNote(b []byte, bo binary.ByteOrder, name string, typ uint32, desc []byte) []byte {
	namesz := len(name) + 1
	var h [12]byte
	bo.PutUint32(h[0:], uint32(namesz))
	bo.PutUint32(h[4:], uint32(len(desc)))
	bo.PutUint32(h[8:], typ)
	b = append(b, h[:]...)
	b = append(b, name...)
	b = append(b, make([]byte, int(align4(uint64(namesz)))-len(name))...)
	b = append(b, desc...)
	return append(b, make([]byte, int(align4(uint64(len(desc))))-len(desc))...)
}

// Notes is what ParseNotes found in a block of ELF notes.
type Notes struct {
	Notes      []Note
	PRStatus   []PRStatus
	VMCOREINFO *vmcoreinfo.Info // nil when absent
	// VMCOREINFOOffset is the offset of the VMCOREINFO descriptor within
	// the parsed block, VMCOREINFOSize its length; -1 when absent.
	VMCOREINFOOffset int64
	VMCOREINFOSize   int64
	// Missing is decoded from a GOKDUMP missing-memory note (nil when
	// there is none); MissingErr says why such a note could not be.
	Missing    *Missing
	MissingErr error

	damagedAt int // offset in the block of the damaged note; -1 if none
}

// ParseNotes parses a block of ELF64 notes, as found in a PT_NOTE segment
// or copied into a kdump-compressed file's sub-header. base is the file
// offset of data, used in error messages and Note.Offset. Trailing zero
// padding ends the block. It returns the first error with every note it
// could parse: those before a note that overruns the block, and a
// VMCOREINFO note it cannot parse (kept as a note, VMCOREINFO nil).
func ParseNotes(data []byte, bo binary.ByteOrder, m elf.Machine, base int64) (*Notes, error) {
	ns := &Notes{VMCOREINFOOffset: -1, damagedAt: -1}
	var firstErr error
	tries := 0 // VMCOREINFO notes parsed
	for pos := 0; pos+12 <= len(data); {
		namesz := bo.Uint32(data[pos:])
		descsz := bo.Uint32(data[pos+4:])
		typ := bo.Uint32(data[pos+8:])
		at := base + int64(pos)
		if namesz == 0 && descsz == 0 && typ == 0 {
			// Zero padding after the last note (some writers pad the
			// segment to a page).
			break
		}
		nameEnd := uint64(pos) + 12 + align4(uint64(namesz))
		descEnd := nameEnd + align4(uint64(descsz))
		if nameEnd > uint64(len(data)) || nameEnd+uint64(descsz) > uint64(len(data)) {
			ns.damagedAt = pos
			return ns, cmp.Or(firstErr, fmt.Errorf("%w: note at %#x: namesz %d descsz %d overrun the segment",
				ErrCorrupt, at, namesz, descsz))
		}
		if len(ns.Notes) >= MaxNotes {
			return ns, cmp.Or(firstErr, fmt.Errorf("%w: more than %d notes", ErrCorrupt, MaxNotes))
		}
		name := data[pos+12 : pos+12+int(namesz)]
		if n := len(name); n > 0 && name[n-1] == 0 {
			name = name[:n-1]
		}
		desc := data[nameEnd : nameEnd+uint64(descsz)]
		n := Note{Name: string(name), Type: typ, Desc: desc, Offset: at}
		ns.Notes = append(ns.Notes, n)
		switch {
		case n.Name == NoteVMCOREINFO && ns.VMCOREINFO == nil && tries < maxVMCOREINFOTries:
			tries++
			info, err := vmcoreinfo.Parse(desc)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%w: VMCOREINFO note at %#x: %w", ErrCorrupt, at, err)
				}
				break
			}
			ns.VMCOREINFO = info
			ns.VMCOREINFOOffset = int64(nameEnd)
			ns.VMCOREINFOSize = int64(descsz)
		case n.Name == "CORE" && typ == NT_PRSTATUS:
			ns.PRStatus = append(ns.PRStatus, parsePRStatus(desc, bo, m))
		case n.Name == NoteGokdump && typ == NT_GOKDUMP_MISSING && ns.Missing == nil && ns.MissingErr == nil:
			// Not an error of the block: the note costs only itself.
			mi, err := DecodeMissing(desc, bo)
			if err != nil {
				ns.MissingErr = fmt.Errorf("GOKDUMP note at %#x: %w", at, err)
				break
			}
			ns.Missing = mi
		}
		if descEnd > uint64(len(data)) {
			break
		}
		pos = int(descEnd)
	}
	return ns, firstErr
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// prstatus layout common to LP64 Linux: pr_pid at 32, pr_reg at 112.
const (
	prPIDOff = 32
	prRegOff = 112
)

func parsePRStatus(desc []byte, bo binary.ByteOrder, m elf.Machine) PRStatus {
	ps := PRStatus{Desc: desc}
	if len(desc) >= prPIDOff+4 {
		ps.PID = int32(bo.Uint32(desc[prPIDOff:]))
	}
	n := archOf(m).nregs
	if n > 0 && len(desc) >= prRegOff+8*n {
		ps.Regs = make([]uint64, n)
		for i := range ps.Regs {
			ps.Regs[i] = bo.Uint64(desc[prRegOff+8*i:])
		}
	}
	return ps
}

// buildRanges turns the PT_LOADs into sorted, non-overlapping physical
// ranges. On x86_64 the kernel-text PT_LOAD repeats memory that a RAM
// PT_LOAD also covers. Where segments overlap, an address is read from the
// first segment in address order that stores it in the file, so the data
// of one still serves when the other's was cut off (a truncated copy keeps
// the kernel-text data, which comes first, after losing the RAM's). An
// address no segment stores is missing when one should have stored it (its
// data is past the end of the file), else declared only.
func (f *File) buildRanges() {
	type seg struct {
		start, fileEnd, missEnd, end, offset uint64
	}
	var segs []seg
	var points []uint64
	for _, s := range f.Segments {
		if s.MemSize == 0 {
			continue
		}
		fe := s.PhysAddr + s.FileSize
		sg := seg{s.PhysAddr, fe, fe + min(s.Truncated, s.MemSize-s.FileSize), s.PhysAddr + s.MemSize, s.Offset}
		segs = append(segs, sg)
		points = append(points, sg.start, sg.fileEnd, sg.missEnd, sg.end)
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	// Sweep the intervals between boundaries, with the segments that
	// store, that miss and that declare each one in heaps ordered by
	// segment position.
	var storing, missing, declaring idxHeap
	var b rangeBuilder
	next := 0
	for k := 0; k+1 < len(points); k++ {
		x, y := points[k], points[k+1]
		if x == y {
			continue
		}
		for ; next < len(segs) && segs[next].start <= x; next++ {
			if segs[next].fileEnd > segs[next].start {
				heap.Push(&storing, next)
			}
			if segs[next].missEnd > segs[next].fileEnd {
				heap.Push(&missing, next)
			}
			heap.Push(&declaring, next)
		}
		for storing.Len() > 0 && segs[storing[0]].fileEnd <= x {
			heap.Pop(&storing)
		}
		for missing.Len() > 0 && segs[missing[0]].missEnd <= x {
			heap.Pop(&missing)
		}
		for declaring.Len() > 0 && segs[declaring[0]].end <= x {
			heap.Pop(&declaring)
		}
		// With no segment storing x, a segment in the missing heap that
		// has begun (all have) and not ended its missing part is past its
		// stored part: x is missing.
		switch {
		case storing.Len() > 0:
			i := storing[0]
			b.add(i, kindStored, x, y, segs[i].offset+(x-segs[i].start))
		case missing.Len() > 0:
			b.add(missing[0], kindMissing, x, y, 0)
		case declaring.Len() > 0:
			b.add(declaring[0], kindDeclared, x, y, 0)
		}
	}
	f.ranges = b.out
}

// The kinds of memory a range holds, in the order they come in one.
const (
	kindStored = iota
	kindMissing
	kindDeclared
)

// rangeBuilder makes physRanges from intervals given in address order,
// merging an interval into the last range when it continues it: same
// owner, contiguous, and a kind that may follow (stored, then missing,
// then declared).
type rangeBuilder struct {
	out  []physRange
	last int // owner of out's last range
}

func (b *rangeBuilder) add(owner, kind int, x, y, offset uint64) {
	if n := len(b.out); n > 0 && b.last == owner && b.out[n-1].end == x {
		r := &b.out[n-1]
		switch {
		case kind == kindStored && r.fileEnd == x && r.offset+(x-r.start) == offset:
			r.end, r.fileEnd, r.missEnd = y, y, y
			return
		case kind == kindMissing && r.missEnd == x:
			r.end, r.missEnd = y, y
			return
		case kind == kindDeclared:
			r.end = y
			return
		}
	}
	r := physRange{start: x, end: y, fileEnd: x, missEnd: x, offset: offset}
	switch kind {
	case kindStored:
		r.fileEnd, r.missEnd = y, y
	case kindMissing:
		r.missEnd = y
	}
	b.out = append(b.out, r)
	b.last = owner
}

// markListed makes the memory m lists missing: a dump that says it lacks
// pages (its own GOKDUMP note) may still hold zeros for them in the file.
func (f *File) markListed(m *Missing) {
	ps := m.PageSize
	var b rangeBuilder
	j := 0
	for i, r := range f.ranges {
		// The range's parts: stored, missing, declared.
		parts := [3]struct{ lo, hi uint64 }{{r.start, r.fileEnd}, {r.fileEnd, r.missEnd}, {r.missEnd, r.end}}
		for kind, p := range parts {
			for x := p.lo; x < p.hi; {
				for j < len(m.Ranges) && m.Ranges[j].End()*ps <= x {
					j++
				}
				y, k := p.hi, kind
				if j < len(m.Ranges) {
					lo, hi := m.Ranges[j].Start*ps, m.Ranges[j].End()*ps
					switch {
					case lo <= x:
						y, k = min(y, hi), kindMissing
					case lo < y:
						y = lo
					}
				}
				off := uint64(0)
				if k == kindStored {
					off = r.offset + (x - r.start)
				}
				b.add(i, k, x, y, off)
				x = y
			}
		}
	}
	f.ranges = b.out
}

// missingPages lists, in pages, the memory the ranges miss: partly
// missing pages count whole.
func (f *File) missingPages() *Missing {
	ps := uint64(f.PageSize)
	var m *Missing
	var last uint64 // pfn after the last page added
	for _, r := range f.ranges {
		if r.missEnd == r.fileEnd {
			continue
		}
		if m == nil {
			m = &Missing{PageSize: ps}
		}
		lo, hi := max(r.fileEnd/ps, last), ceilDiv(r.missEnd, ps)
		if lo < hi {
			m.Add(lo, hi-lo)
			last = hi
		}
	}
	return m
}

func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

// idxHeap is a min-heap of segment positions.
type idxHeap []int

func (h idxHeap) Len() int           { return len(h) }
func (h idxHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h idxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idxHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *idxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// PhysRange is a range of physical memory present in the dump's headers.
type PhysRange struct {
	Start, End uint64 // [Start, End) physical addresses
	// FileEnd ≤ End: bytes from FileEnd to End are not in the file. Of
	// them, the first Missing bytes are missing (the file should hold
	// them: a truncated copy, pages a GOKDUMP note lists); the rest are
	// declared only (excluded pages of a filtered ELF dump).
	FileEnd uint64
	Missing uint64
}

// PhysRanges returns the physical memory ranges, sorted, not overlapping.
func (f *File) PhysRanges() []PhysRange {
	out := make([]PhysRange, len(f.ranges))
	for i, r := range f.ranges {
		out[i] = PhysRange{Start: r.start, End: r.end, FileEnd: r.fileEnd, Missing: r.missEnd - r.fileEnd}
	}
	return out
}

// MaxPFN returns one past the highest page frame number the dump covers.
// It cannot wrap: memory up to the top of the address space gives
// 2^64/PageSize.
func (f *File) MaxPFN() uint64 {
	if len(f.ranges) == 0 {
		return 0
	}
	return ceilDiv(f.ranges[len(f.ranges)-1].end, uint64(f.PageSize))
}

// Size returns the size of the underlying file.
func (f *File) Size() int64 { return f.size }

// ReaderAt returns the reader the File reads from.
func (f *File) ReaderAt() io.ReaderAt { return f.r }

// find returns the index of the range holding addr, or -1.
func (f *File) find(addr uint64) int {
	i := sort.Search(len(f.ranges), func(i int) bool { return f.ranges[i].end > addr })
	if i < len(f.ranges) && f.ranges[i].start <= addr {
		return i
	}
	return -1
}

// FileOffset returns the file offset holding physical address addr and how
// many bytes from there are stored contiguously, or ok=false for a hole.
func (f *File) FileOffset(addr uint64) (off int64, n uint64, ok bool) {
	i := f.find(addr)
	if i < 0 || addr >= f.ranges[i].fileEnd {
		return 0, 0, false
	}
	r := f.ranges[i]
	return int64(r.offset + (addr - r.start)), r.fileEnd - addr, true
}

// ReadPhys reads len(p) bytes of physical memory at addr. A read that
// touches an address the dump does not hold fails with ErrHole after
// reading what precedes it; when the dump should hold it but does not (a
// truncated file, a short read, a range its GOKDUMP note lists), the
// error wraps ErrMissing as well.
func (f *File) ReadPhys(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		off, n, ok := f.FileOffset(a)
		if !ok {
			if i := f.find(a); i >= 0 && a < f.ranges[i].missEnd {
				return done, fmt.Errorf("%w: physical %#x: %w", ErrHole, a, ErrMissing)
			}
			return done, fmt.Errorf("%w: physical %#x", ErrHole, a)
		}
		want := uint64(len(p) - done)
		if n < want {
			want = n
		}
		m, err := f.r.ReadAt(p[done:done+int(want)], off)
		done += m
		if err != nil && !(errors.Is(err, io.EOF) && uint64(m) == want) {
			// io.ReaderAt may return io.EOF with a complete read that
			// ends at the end of the file; only a short read is a fault.
			if errors.Is(err, io.EOF) {
				return done, fmt.Errorf("%w: physical %#x at file offset %#x: truncated: %w",
					ErrHole, a, off, ErrMissing)
			}
			return done, fmt.Errorf("vmcore: read physical %#x at file offset %#x: %w", a, off, err)
		}
	}
	return done, nil
}

// Close releases the file when the File opened it.
func (f *File) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

func readStruct(r io.ReaderAt, off int64, bo binary.ByteOrder, v any) error {
	buf := make([]byte, binary.Size(v))
	if err := readAt(r, buf, off); err != nil {
		return err
	}
	_, err := binary.Decode(buf, bo, v)
	return err
}

// readAt fills p from off. io.ReaderAt may report io.EOF along with a
// complete read that ends at the end of the input; that is success.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if err != nil && n == len(p) && errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
