package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/gokdump/gokdump/capture/vmcore"
)

// ELF64 sizes and the header fields we rewrite.
const (
	ehdrSize  = 64
	phdrSize  = 56
	shdrSize  = 64
	eFlagsOff = 48
	pnXNum    = 0xffff
)

// Errors a Writer returns; wrapped with detail.
var (
	// ErrIncomplete is wrapped by the errors of Close and Save for a file
	// left marked incomplete: kept pages never written, a failed write.
	ErrIncomplete = errors.New("elfcore: dump incomplete")
	// ErrNotKept is returned by WritePage for a page the layout does not
	// store: dropped, zero-filled in its place, or not held by the source.
	ErrNotKept = errors.New("elfcore: page not kept")
	// ErrOrder is returned by WritePage for a page at or below the last.
	ErrOrder = errors.New("elfcore: pages out of order")
	// ErrNotEmpty is returned by NewWriter for an output file that already
	// holds data: pages never written must read as zeros.
	ErrNotEmpty = errors.New("elfcore: output file not empty")
	// ErrClosed is returned after Close or Abort.
	ErrClosed = errors.New("elfcore: writer closed")
)

// Writer writes one Layout's file.
type Writer struct {
	out io.WriterAt
	l   *Layout

	pc      presence
	ext     int    // first extent that may hold the next page
	last    uint64 // physical address of the last page written
	started bool
	written uint64 // kept pages written
	missing uint64 // kept pages given up (MissingPage)
	end     uint64 // end of the highest byte written
	err     error  // the first write error; later calls return it
	closed  bool

	incomplete bool   // Close sets the incomplete flag
	newNotes   []byte // notes Close writes after the data; nil: none

	// Pages that follow each other in the file are written together: one
	// write(2) per page costs dearly under emulation.
	buf    []byte
	bufOff uint64
}

// writeBuffer bounds the bytes gathered before a write.
const writeBuffer = 1 << 20

// NewWriter writes the ELF header, program headers and notes of l to out,
// which must read as zeros wherever nothing is written, as a new or
// truncated file does: zero-filled pages are not written, and become holes
// in a file system that supports them.
func NewWriter(out io.WriterAt, l *Layout) (*Writer, error) {
	if st, ok := out.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			return nil, fmt.Errorf("%w: %d bytes", ErrNotEmpty, fi.Size())
		}
	}
	w := &Writer{out: out, l: l}
	hdr := l.header(0)
	if _, err := out.WriteAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("elfcore: write headers: %w", err)
	}
	w.end = uint64(len(hdr))
	return w, nil
}

// header encodes everything before the page data: ELF header, program
// headers, section 0 when PN_XNUM is in use, notes.
func (l *Layout) header(flags uint32) []byte {
	src := l.src
	bo := src.ByteOrder
	nph := 1 + len(l.phdrs)
	buf := make([]byte, l.notesOff+uint64(len(src.NoteData)))
	copy(buf, elf.ELFMAG)
	buf[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	if bo == binary.ByteOrder(binary.BigEndian) {
		buf[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
	} else {
		buf[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	}
	buf[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	bo.PutUint16(buf[16:], uint16(elf.ET_CORE))
	bo.PutUint16(buf[18:], uint16(src.Machine))
	bo.PutUint32(buf[20:], uint32(elf.EV_CURRENT))
	bo.PutUint64(buf[32:], ehdrSize) // e_phoff: readers such as makedumpfile assume 64
	bo.PutUint32(buf[eFlagsOff:], flags)
	bo.PutUint16(buf[52:], ehdrSize)
	bo.PutUint16(buf[54:], phdrSize)
	if l.xnum {
		// As the kernel's core dumps do: e_phnum PN_XNUM, one section
		// header of type SHT_NULL whose sh_info holds the count.
		shoff := uint64(ehdrSize + nph*phdrSize)
		bo.PutUint64(buf[40:], shoff)
		bo.PutUint16(buf[56:], pnXNum)
		bo.PutUint16(buf[58:], shdrSize)
		bo.PutUint16(buf[60:], 1)
		bo.PutUint64(buf[shoff+32:], 1) // sh_size: the section count
		bo.PutUint32(buf[shoff+44:], uint32(nph))
	} else {
		bo.PutUint16(buf[56:], uint16(nph))
	}
	ph := buf[ehdrSize:]
	putPhdr(bo, ph, elf.PT_NOTE, 0, vmcore.Segment{
		Offset: l.notesOff, FileSize: uint64(len(src.NoteData)), MemSize: uint64(len(src.NoteData)),
	}, 4)
	for i, s := range l.phdrs {
		putPhdr(bo, ph[(1+i)*phdrSize:], elf.PT_LOAD, elf.PF_R|elf.PF_W|elf.PF_X, s, 0)
	}
	copy(buf[l.notesOff:], src.NoteData)
	return buf
}

func putPhdr(bo binary.ByteOrder, b []byte, typ elf.ProgType, flags elf.ProgFlag, s vmcore.Segment, align uint64) {
	bo.PutUint32(b[0:], uint32(typ))
	bo.PutUint32(b[4:], uint32(flags))
	bo.PutUint64(b[8:], s.Offset)
	bo.PutUint64(b[16:], s.VirtAddr)
	bo.PutUint64(b[24:], s.PhysAddr)
	bo.PutUint64(b[32:], s.FileSize)
	bo.PutUint64(b[40:], s.MemSize)
	bo.PutUint64(b[48:], align)
}

// WritePage writes the kept page at physical address paddr. Pages come in
// increasing address order; data is the whole page (PageSize bytes), of
// which the writer stores the part the layout holds, once however many
// PT_LOADs show it. Writes are gathered (data may be reused on return), so
// a write error can surface from a later call or from Close.
func (w *Writer) WritePage(paddr uint64, data []byte) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	ps := w.l.pageSize
	if paddr%ps != 0 || uint64(len(data)) != ps {
		return fmt.Errorf("elfcore: WritePage(%#x, %d bytes): want a whole %d-byte page", paddr, len(data), ps)
	}
	if err := w.check(paddr); err != nil {
		return err
	}
	ext := w.l.extents
	for w.ext < len(ext) && ext[w.ext].fileEnd <= paddr {
		w.ext++
	}
	stored := false
	for i := w.ext; i < len(ext) && ext[i].start < paddr+ps; i++ {
		e := ext[i]
		a, b := max(paddr, e.start), min(paddr+ps, e.fileEnd)
		if a >= b {
			continue
		}
		if err := w.write(data[a-paddr:b-paddr], e.off+(a-e.start)); err != nil {
			return err
		}
		stored = true
	}
	if !stored {
		return fmt.Errorf("%w: %#x is not in the layout's file data", ErrNotKept, paddr)
	}
	w.started, w.last = true, paddr
	w.written++
	return nil
}

// check validates paddr as the next kept page.
func (w *Writer) check(paddr uint64) error {
	if w.started && paddr <= w.last {
		return fmt.Errorf("%w: page %#x after %#x", ErrOrder, paddr, w.last)
	}
	if !w.l.kept(&w.pc, paddr/w.l.pageSize) {
		return fmt.Errorf("%w: %#x: dropped by the KeepFunc or not stored by the source", ErrNotKept, paddr)
	}
	return nil
}

// MissingPage takes the place of WritePage for a kept page whose data
// could not be read after the layout was fixed: nothing is written, so the
// file holds zeros there (a hole). The file data cannot shrink any more;
// the caller says what is missing with ReplaceNotes (a GOKDUMP note) and
// SetIncomplete.
func (w *Writer) MissingPage(paddr uint64) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if paddr%w.l.pageSize != 0 {
		return fmt.Errorf("elfcore: MissingPage(%#x): not on a page boundary", paddr)
	}
	if err := w.check(paddr); err != nil {
		return err
	}
	w.started, w.last = true, paddr
	w.missing++
	return nil
}

// SetIncomplete makes Close flag the file incomplete (e_flags bit 0): it
// is whole as a file, but not all the memory it was to hold is there.
func (w *Writer) SetIncomplete() { w.incomplete = true }

// ReplaceNotes makes Close (or Abort) write notes, a block of ELF notes,
// after the page data and point the PT_NOTE at them in place of the
// source's notes written first: notes learnt while writing (the memory
// found missing) join a file whose layout was fixed first.
func (w *Writer) ReplaceNotes(notes []byte) { w.newNotes = append([]byte(nil), notes...) }

// writeNotes writes the notes ReplaceNotes gave at the end of the file
// and the PT_NOTE header that points at them.
func (w *Writer) writeNotes() error {
	if w.newNotes == nil {
		return nil
	}
	at := alignUp(max(w.end, w.l.size), 8)
	if _, err := w.out.WriteAt(w.newNotes, int64(at)); err != nil {
		return fmt.Errorf("elfcore: write notes at %#x: %w", at, err)
	}
	var ph [phdrSize]byte
	n := uint64(len(w.newNotes))
	putPhdr(w.l.src.ByteOrder, ph[:], elf.PT_NOTE, 0, vmcore.Segment{Offset: at, FileSize: n, MemSize: n}, 4)
	if _, err := w.out.WriteAt(ph[:], ehdrSize); err != nil {
		return fmt.Errorf("elfcore: write PT_NOTE header: %w", err)
	}
	w.end = at + n
	w.newNotes = nil
	return nil
}

// write queues p for file offset off, writing out what was queued when p
// does not follow it or the buffer is full.
func (w *Writer) write(p []byte, off uint64) error {
	if len(w.buf) > 0 && (w.bufOff+uint64(len(w.buf)) != off || len(w.buf)+len(p) > writeBuffer) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, min(writeBuffer, max(w.l.stats.KeptPages, 1)*w.l.pageSize))
		}
		w.bufOff = off
	}
	w.buf = append(w.buf, p...)
	return nil
}

// flush writes what is queued. A failure sticks: later calls return it.
func (w *Writer) flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	if _, err := w.out.WriteAt(w.buf, int64(w.bufOff)); err != nil {
		w.err = fmt.Errorf("elfcore: write %d bytes at file offset %#x: %w", len(w.buf), w.bufOff, err)
		return w.err
	}
	w.end = max(w.end, w.bufOff+uint64(len(w.buf)))
	w.buf = w.buf[:0]
	return nil
}

// Written returns how many pages WritePage has accepted.
func (w *Writer) Written() uint64 { return w.written }

// Close finishes the file. When kept pages were never written, or a write
// failed, it marks the file incomplete as Abort does and returns an error
// wrapping ErrIncomplete and the cause.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	var cause error
	if err := w.flush(); err != nil {
		cause = err
	} else if w.written+w.missing < w.l.stats.KeptPages {
		cause = fmt.Errorf("%d of %d kept pages written", w.written, w.l.stats.KeptPages)
	}
	if cause != nil {
		return errors.Join(fmt.Errorf("%w: %w", ErrIncomplete, cause), w.Abort(cause))
	}
	w.closed = true
	if err := w.extend(); err != nil {
		return err
	}
	if err := w.writeNotes(); err != nil {
		return err
	}
	if w.incomplete {
		return w.markIncomplete()
	}
	return nil
}

func (w *Writer) markIncomplete() error {
	var flags [4]byte
	w.l.src.ByteOrder.PutUint32(flags[:], vmcore.FlagIncomplete)
	if _, err := w.out.WriteAt(flags[:], eFlagsOff); err != nil {
		return fmt.Errorf("elfcore: mark incomplete: %w", err)
	}
	return nil
}

// Abort ends a dump that cannot go on (a full disk, an I/O error, a failed
// read of memory): it writes the pages already accepted if it still can,
// sets the incomplete flag (e_flags bit 0) and gives the file its full size
// so it stays readable, the pages never written reading as zeros. cause is
// for the caller's records; Abort returns only the errors of its own
// writes.
func (w *Writer) Abort(cause error) error {
	if w.closed {
		return ErrClosed
	}
	_ = w.flush() // a failure leaves these pages unwritten, nothing more
	w.closed = true
	if err := w.markIncomplete(); err != nil {
		return err
	}
	if err := w.extend(); err != nil {
		return err
	}
	return w.writeNotes()
}

// extend gives the file its planned size: the last pages may be
// zero-filled or never written. Truncate extends without allocating.
func (w *Writer) extend() error {
	size := w.l.size
	if w.end >= size {
		return nil
	}
	if t, ok := w.out.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(int64(size)); err != nil {
			return fmt.Errorf("elfcore: set file size %d: %w", size, err)
		}
	} else if _, err := w.out.WriteAt([]byte{0}, int64(size-1)); err != nil {
		return fmt.Errorf("elfcore: set file size %d: %w", size, err)
	}
	w.end = size
	return nil
}

// Save writes a filtered copy of src to out: the pages keep keeps, in the
// layout opts asks for. It reads src page by page; a failed read or write
// ends the dump, marked incomplete, with an error wrapping ErrIncomplete.
func Save(out io.WriterAt, src *vmcore.File, keep KeepFunc, opts Options) (Stats, error) {
	l, err := NewLayout(src, keep, opts)
	if err != nil {
		return Stats{}, err
	}
	w, err := NewWriter(out, l)
	if err != nil {
		return l.stats, err
	}
	buf := make([]byte, l.pageSize)
	for paddr := range l.KeptPages() {
		err := l.readPage(buf, paddr)
		if err == nil {
			err = w.WritePage(paddr, buf)
		}
		if err != nil {
			return l.stats, errors.Join(fmt.Errorf("%w: %w", ErrIncomplete, err), w.Abort(err))
		}
	}
	return l.stats, w.Close()
}

// readPage reads the page at paddr from the source, the parts of it in
// memory ranges; the rest of buf is zeroed.
func (l *Layout) readPage(buf []byte, paddr uint64) error {
	clear(buf)
	end := paddr + uint64(len(buf))
	i := sort.Search(len(l.merged), func(i int) bool { return l.merged[i].end > paddr })
	for ; i < len(l.merged) && l.merged[i].start < end; i++ {
		a, b := max(paddr, l.merged[i].start), min(end, l.merged[i].end)
		if _, err := l.src.ReadPhys(buf[a-paddr:b-paddr], a); err != nil {
			return err
		}
	}
	return nil
}
