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

// File is an open ELF vmcore.
type File struct {
	Class     elf.Class
	ByteOrder binary.ByteOrder
	Machine   elf.Machine
	Flags     uint32 // e_flags; FlagIncomplete marks a dump left incomplete

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

	r      io.ReaderAt
	size   int64
	ranges []physRange // sorted, non-overlapping
	closer io.Closer
}

// physRange maps physical [start, end) to file data.
type physRange struct {
	start, end uint64 // physical addresses
	fileEnd    uint64 // physical address where file data ends (≤ end)
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
			if ph.Off > uint64(size) || ph.Filesz > uint64(size)-ph.Off {
				// A truncated file (disk full, copy cut short): keep what
				// is there rather than refuse the whole dump.
				if ph.Off > uint64(size) {
					ph.Filesz = 0
				} else {
					ph.Filesz = uint64(size) - ph.Off
				}
			}
			if ph.Paddr+ph.Memsz < ph.Paddr {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x: physical range wraps", ErrCorrupt, off)
			}
			f.Segments = append(f.Segments, Segment{
				Offset: ph.Off, VirtAddr: ph.Vaddr, PhysAddr: ph.Paddr,
				FileSize: ph.Filesz, MemSize: ph.Memsz,
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
	return nil
}

// findVMCOREINFO looks for a well-formed VMCOREINFO note at a 4-byte
// aligned offset of seg at or after from.
func findVMCOREINFO(seg []byte, from int, bo binary.ByteOrder, fileOff int64) (Note, bool) {
	name := []byte(NoteVMCOREINFO + "\x00")
	descOff := 12 + int(align4(uint64(len(name))))
	for pos := (from + 3) &^ 3; pos+descOff <= len(seg); pos += 4 {
		if bo.Uint32(seg[pos:]) != uint32(len(name)) || !bytes.Equal(seg[pos+12:pos+12+len(name)], name) {
			continue
		}
		descsz := uint64(bo.Uint32(seg[pos+4:]))
		if descsz == 0 || descsz > uint64(len(seg)-pos-descOff) {
			continue
		}
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
		case n.Name == NoteVMCOREINFO && ns.VMCOREINFO == nil:
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
// the kernel-text data, which comes first, after losing the RAM's).
func (f *File) buildRanges() {
	type seg struct {
		start, fileEnd, end, offset uint64
	}
	var segs []seg
	var points []uint64
	for _, s := range f.Segments {
		if s.MemSize == 0 {
			continue
		}
		sg := seg{s.PhysAddr, s.PhysAddr + s.FileSize, s.PhysAddr + s.MemSize, s.Offset}
		segs = append(segs, sg)
		points = append(points, sg.start, sg.fileEnd, sg.end)
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	// Sweep the intervals between boundaries, with the segments that store
	// and that declare each one in heaps ordered by segment position.
	var storing, declaring idxHeap
	var out []physRange
	last := -1 // segment of out's last range
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
			heap.Push(&declaring, next)
		}
		for storing.Len() > 0 && segs[storing[0]].fileEnd <= x {
			heap.Pop(&storing)
		}
		for declaring.Len() > 0 && segs[declaring[0]].end <= x {
			heap.Pop(&declaring)
		}
		n := len(out)
		switch {
		case storing.Len() > 0:
			i := storing[0]
			s := segs[i]
			if n > 0 && last == i && out[n-1].end == x && out[n-1].fileEnd == x {
				out[n-1].end, out[n-1].fileEnd = y, y
				continue
			}
			out = append(out, physRange{start: x, end: y, fileEnd: y, offset: s.offset + (x - s.start)})
			last = i
		case declaring.Len() > 0:
			i := declaring[0]
			if n > 0 && last == i && out[n-1].end == x {
				out[n-1].end = y
				continue
			}
			s := segs[i]
			out = append(out, physRange{start: x, end: y, fileEnd: x, offset: s.offset + (x - s.start)})
			last = i
		}
	}
	f.ranges = out
}

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
	// FileEnd ≤ End: bytes from FileEnd to End are declared but absent
	// (excluded pages of a filtered ELF dump).
	FileEnd uint64
}

// PhysRanges returns the physical memory ranges, sorted, not overlapping.
func (f *File) PhysRanges() []PhysRange {
	out := make([]PhysRange, len(f.ranges))
	for i, r := range f.ranges {
		out[i] = PhysRange{Start: r.start, End: r.end, FileEnd: r.fileEnd}
	}
	return out
}

// MaxPFN returns one past the highest page frame number the dump covers.
func (f *File) MaxPFN() uint64 {
	if len(f.ranges) == 0 {
		return 0
	}
	ps := uint64(f.PageSize)
	return (f.ranges[len(f.ranges)-1].end + ps - 1) / ps
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
// reading what precedes it.
func (f *File) ReadPhys(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		off, n, ok := f.FileOffset(a)
		if !ok {
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
				return done, fmt.Errorf("%w: physical %#x at file offset %#x: truncated",
					ErrHole, a, off)
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
