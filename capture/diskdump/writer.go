package diskdump

import (
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/gokdump/gokdump/capture/codec"
)

// Buffer sizes of the Writer. Descriptors are flushed in chunks of
// descChunk; page data goes out in writes of up to dataBufSize bytes.
const (
	descChunk   = 4096
	dataBufSize = 1 << 20
)

// Preallocator is implemented by outputs that can reserve disk space for
// a range ahead of writing it. The Writer reserves the header, bitmaps and
// descriptor area before the first page, so that on a disk that fills up
// descriptors can still be written for the pages already stored. An
// *os.File is handled without it (fallocate, or writing zeros).
type Preallocator interface {
	Preallocate(off, size int64) error
}

// Writer writes a kdump-compressed file. Its memory use is bounded (a few
// MiB of buffers plus 12 bytes per bitmap block that holds a dumpable
// page) whatever the size of the dumped machine, and so is its work: the
// bitmaps are max_mapnr bits long, but only the parts given to SetBitmaps
// are written; the rest are holes in the file, as sparse as the file
// system allows.
//
// It is not safe for concurrent use: one goroutine (a pipeline's ordered
// writer) calls it.
//
// The call sequence: NewWriter; SetBitmaps for the bitmap chunks in pfn
// order; StartPages; one WritePage, WriteZeroPage or ExcludePage per
// dumped pfn, in pfn order; Close, or Abort when writing failed.
type Writer struct {
	out          io.WriterAt
	hdr          Header
	lay          layout
	bs           int64
	pfnsPerBlock uint64

	// Bitmap phase.
	bitmapEnd uint64       // pfn after the last chunk given
	blocks    []blockCount // bitmap blocks with dumpable pfns, in order
	zeros     []byte       // one block of zeros
	total     uint64       // dumpable pfns

	// Page phase.
	started  bool
	closed   bool
	err      error // first write error; the Writer is unusable after it
	dataOff  int64 // first byte of page data
	zeroOff  int64 // offset of the shared zero page, or -1
	nextPFN  uint64
	havePFN  bool
	curBlock uint64 // bitmap block of the last page written
	curIdx   int    // its index in blocks
	inBlock  uint32 // pages written or excluded in curBlock
	written  uint64 // descriptors produced
	excluded uint64 // pages ExcludePage took out of the 2nd bitmap

	// Set for Close: the header keeps StatusIncomplete, and the notes are
	// replaced by newNotes, written after the page data.
	incomplete bool
	newNotes   *Header

	descs     []byte // pending descriptors, descSize each
	descIndex uint64 // index of descs[0]

	// When the output can be read back (an *os.File), the 2nd bitmap
	// block of the current pfn, to check each pfn against its bit.
	verify    io.ReaderAt
	bitmapBuf []byte
	bitmapOK  bool

	data    []byte // pending page data
	dataPos int64  // file offset of data[0]
	flushed int64  // end of the page data written out
}

// NewWriter validates hdr and writes the header, the sub-header and the
// notes. Until Close the header carries StatusIncomplete, so a file cut
// short by a crash or power loss says so.
func NewWriter(out io.WriterAt, hdr Header) (*Writer, error) {
	if hdr.VMCOREINFOSize == 0 && hdr.VMCOREINFOOffset == 0 {
		hdr.VMCOREINFOOffset = -1
	}
	if err := hdr.validate(); err != nil {
		return nil, err
	}
	hdr.Notes = append([]byte(nil), hdr.Notes...)
	hdr.Status &^= StatusIncomplete
	bs := int64(hdr.BlockSize)
	w := &Writer{
		out:          out,
		hdr:          hdr,
		lay:          newLayout(bs, int64(len(hdr.Notes)), hdr.MaxMapnr),
		bs:           bs,
		pfnsPerBlock: uint64(bs) * 8,
		zeroOff:      -1,
	}
	if r, ok := out.(io.ReaderAt); ok {
		w.verify = r
	}
	if err := w.writeHeader(true); err != nil {
		return nil, err
	}
	if _, err := out.WriteAt(hdr.encodeSubHeader(w.lay), bs); err != nil {
		return nil, fmt.Errorf("diskdump: write sub-header: %w", err)
	}
	return w, nil
}

// blockCount is the number of dumpable pfns in one bitmap block.
type blockCount struct {
	blk uint64
	n   uint32
}

func (w *Writer) writeHeader(incomplete bool) error {
	st := w.hdr.Status
	if incomplete {
		st |= StatusIncomplete
	}
	if _, err := w.out.WriteAt(w.hdr.encodeHeader(w.lay, st), 0); err != nil {
		return fmt.Errorf("diskdump: write header: %w", err)
	}
	return nil
}

// SetBitmaps gives the bitmaps for the pfns from startPFN on: bit i of ram
// says whether pfn startPFN+i is RAM (not a hole), bit i of dumpable
// whether its page is in the dump. Chunks come in pfn order, without
// overlapping, and start at multiples of 8 pfns (one bitmap byte); pfns
// never given are neither, and cost nothing: only the bytes given are
// written. Every dumpable pfn must be RAM, and no bit may be set at or
// past MaxMapnr.
func (w *Writer) SetBitmaps(startPFN uint64, ram, dumpable []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.started {
		return errors.New("diskdump: SetBitmaps after StartPages")
	}
	if startPFN%8 != 0 {
		return fmt.Errorf("diskdump: bitmap chunk at pfn %#x not on an 8-pfn boundary", startPFN)
	}
	if startPFN < w.bitmapEnd {
		return fmt.Errorf("diskdump: bitmap chunk at pfn %#x overlaps or precedes pfn %#x", startPFN, w.bitmapEnd)
	}
	if len(ram) != len(dumpable) {
		return fmt.Errorf("diskdump: bitmap chunk at pfn %#x: %d RAM bytes, %d dumpable bytes", startPFN, len(ram), len(dumpable))
	}
	off := int64(startPFN / 8)
	if off > w.lay.bitmapLen || int64(len(ram)) > w.lay.bitmapLen-off {
		return fmt.Errorf("diskdump: bitmap chunk at pfn %#x+%d bytes past max_mapnr %#x", startPFN, len(ram), w.hdr.MaxMapnr)
	}
	// Bits at or past max_mapnr must be clear.
	if end := startPFN + uint64(len(ram))*8; end > w.hdr.MaxMapnr {
		for p := max(w.hdr.MaxMapnr, startPFN); p < end; p++ {
			i := (p - startPFN) / 8
			if (ram[i]|dumpable[i])&(1<<(p%8)) != 0 {
				return fmt.Errorf("diskdump: bitmap bit set for pfn %#x, past max_mapnr %#x", p, w.hdr.MaxMapnr)
			}
			if p%8 == 7 {
				// Whole bytes from here on.
				for j := i + 1; j < uint64(len(ram)); j++ {
					if ram[j]|dumpable[j] != 0 {
						return fmt.Errorf("diskdump: bitmap bit set past max_mapnr %#x (byte %d of chunk at pfn %#x)",
							w.hdr.MaxMapnr, j, startPFN)
					}
				}
				break
			}
		}
	}
	bs := uint64(w.bs)
	for i := uint64(0); i < uint64(len(dumpable)); {
		// The bytes of this chunk in bitmap block blk.
		blk := (uint64(off) + i) / bs
		e := min(uint64(len(dumpable)), (blk+1)*bs-uint64(off))
		var n uint32
		for j := i; j < e; j++ {
			if x := dumpable[j] &^ ram[j]; x != 0 {
				pfn := startPFN + j*8 + uint64(bits.TrailingZeros8(x))
				return fmt.Errorf("diskdump: pfn %#x dumpable but not RAM", pfn)
			}
			n += uint32(bits.OnesCount8(dumpable[j]))
		}
		if n > 0 {
			if k := len(w.blocks); k > 0 && w.blocks[k-1].blk == blk {
				w.blocks[k-1].n += n
			} else {
				w.blocks = append(w.blocks, blockCount{blk, n})
			}
			w.total += uint64(n)
		}
		i = e
	}
	// Bytes of zeros need not be written: the file reads as zeros there,
	// and a bitmap that is mostly holes stays sparse.
	for _, part := range []struct {
		name string
		base int64
		b    []byte
	}{{"1st", w.lay.bitmap1, ram}, {"2nd", w.lay.bitmap2, dumpable}} {
		for lo := 0; lo < len(part.b); {
			for lo < len(part.b) && part.b[lo] == 0 {
				lo++
			}
			hi := lo
			// Runs of set bytes, bridging gaps shorter than a block.
			for z := 0; hi < len(part.b) && z < int(bs); hi++ {
				if part.b[hi] == 0 {
					z++
				} else {
					z = 0
				}
			}
			for hi > lo && part.b[hi-1] == 0 {
				hi--
			}
			if hi > lo {
				at := part.base + off + int64(lo)
				if _, err := w.out.WriteAt(part.b[lo:hi], at); err != nil {
					return w.fail(fmt.Errorf("diskdump: write %s bitmap at %#x: %w", part.name, at, err))
				}
			}
			lo = hi
		}
	}
	w.bitmapEnd = startPFN + uint64(len(ram))*8
	return nil
}

func (w *Writer) zeroBlock() []byte {
	if w.zeros == nil {
		w.zeros = make([]byte, w.bs)
	}
	return w.zeros
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// StartPages ends the bitmap phase: it fixes the descriptor area and the
// start of the page data, reserves disk space up to the end of the
// descriptors, and, when the dump level excludes zero pages, writes the
// zero page that their descriptors share.
func (w *Writer) StartPages() error {
	if w.err != nil {
		return w.err
	}
	if w.started {
		return errors.New("diskdump: StartPages called twice")
	}
	w.started = true
	// The file covers the bitmaps whatever follows: write the end of the
	// 2nd bitmap (zeros) unless a chunk reached it. Only that one block;
	// the rest of what was not given stays a hole.
	if end := w.lay.bitmap2 + int64(w.bitmapEnd/8); end < w.lay.desc {
		at := max(end, w.lay.desc-w.bs)
		if _, err := w.out.WriteAt(w.zeroBlock()[:w.lay.desc-at], at); err != nil {
			return w.fail(fmt.Errorf("diskdump: write 2nd bitmap at %#x: %w", at, err))
		}
	}
	w.dataOff = w.lay.desc + int64(w.total)*descSize
	w.dataPos, w.flushed = w.dataOff, w.dataOff
	// Buffers no bigger than the dump needs: a small dump costs little.
	w.descs = make([]byte, 0, min(descChunk, w.total+1)*descSize)
	w.data = make([]byte, 0, min(dataBufSize, (int64(w.total)+2)*w.bs))
	if err := preallocate(w.out, w.lay.desc, w.dataOff-w.lay.desc); err != nil {
		return w.fail(fmt.Errorf("diskdump: reserve %d bytes of descriptors at %#x: %w", w.dataOff-w.lay.desc, w.lay.desc, err))
	}
	if w.hdr.DumpLevel&1 != 0 {
		return w.writeZero()
	}
	return nil
}

// writeZero appends the shared zero page to the data.
func (w *Writer) writeZero() error {
	n := int(w.bs)
	if len(w.data)+n > cap(w.data) {
		if err := w.flushData(); err != nil {
			return err
		}
	}
	w.zeroOff = w.dataPos + int64(len(w.data))
	w.data = w.data[:len(w.data)+n]
	clear(w.data[len(w.data)-n:])
	return nil
}

// flushData writes the pending page data. On a short write, flushed
// records how far it got.
func (w *Writer) flushData() error {
	if w.err != nil {
		return w.err
	}
	if len(w.data) == 0 {
		return nil
	}
	n, err := w.out.WriteAt(w.data, w.dataPos)
	w.flushed = w.dataPos + int64(n)
	if err == nil && n < len(w.data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return w.fail(fmt.Errorf("diskdump: write page data at %#x: %w", w.flushed, err))
	}
	w.dataPos += int64(len(w.data))
	w.data = w.data[:0]
	return nil
}

// flushDescs writes the pending descriptors, after the data they point
// at: a descriptor on disk never names data that is not.
func (w *Writer) flushDescs() error {
	if err := w.flushData(); err != nil {
		return err
	}
	if err := w.writeDescs(len(w.descs) / descSize); err != nil {
		return w.fail(err)
	}
	return nil
}

// writeDescs writes the first n pending descriptors and drops them.
func (w *Writer) writeDescs(n int) error {
	if n == 0 {
		return nil
	}
	at := w.lay.desc + int64(w.descIndex)*descSize
	b := w.descs[:n*descSize]
	if _, err := w.out.WriteAt(b, at); err != nil {
		return fmt.Errorf("diskdump: write page descriptors at %#x: %w", at, err)
	}
	w.descIndex += uint64(n)
	w.descs = append(w.descs[:0], w.descs[n*descSize:]...)
	return nil
}

// fillMissing points the descriptors of the pages that never reached the
// disk at the shared zero page. crash reads an incomplete dump's missing
// pages as zeros anyway, but libkdumpfile (and so drgn) refuses a
// descriptor of size 0 and with it any read that touches one. The
// descriptor area was reserved before the first page, so this needs no new
// disk blocks. Without a zero page on disk they are left as they are.
func (w *Writer) fillMissing() error {
	total := w.total - w.excluded
	if w.zeroOff < 0 || w.zeroOff+w.bs > w.flushed || w.descIndex >= total {
		return nil
	}
	var d [descSize]byte
	PageDesc{Offset: w.zeroOff, Size: uint32(w.bs)}.put(d[:])
	chunk := make([]byte, 0, descChunk*descSize)
	for w.descIndex < total {
		n := min(total-w.descIndex, descChunk)
		chunk = chunk[:0]
		for i := uint64(0); i < n; i++ {
			chunk = append(chunk, d[:]...)
		}
		at := w.lay.desc + int64(w.descIndex)*descSize
		if _, err := w.out.WriteAt(chunk, at); err != nil {
			return fmt.Errorf("diskdump: point missing descriptors at the zero page (at %#x): %w", at, err)
		}
		w.descIndex += n
	}
	return nil
}

// account checks pfn against the order and the bitmaps given.
func (w *Writer) account(pfn uint64) error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		return errors.New("diskdump: page written before StartPages")
	}
	if w.closed {
		return errors.New("diskdump: page written after Close")
	}
	if w.havePFN && pfn <= w.nextPFN {
		return fmt.Errorf("diskdump: pfn %#x written after pfn %#x", pfn, w.nextPFN)
	}
	if pfn >= w.hdr.MaxMapnr {
		return fmt.Errorf("diskdump: pfn %#x past max_mapnr %#x", pfn, w.hdr.MaxMapnr)
	}
	blk := pfn / w.pfnsPerBlock
	if !w.havePFN || blk != w.curBlock {
		if w.havePFN {
			if err := w.checkBlock(w.inBlock); err != nil {
				return err
			}
		}
		// Blocks come in order: the one of blk, if any, is further on.
		i := w.curIdx
		if !w.havePFN {
			i = 0
		}
		for i < len(w.blocks) && w.blocks[i].blk < blk {
			i++
		}
		w.curBlock, w.curIdx, w.inBlock = blk, i, 0
		w.loadBitmapBlock()
	}
	if w.curIdx >= len(w.blocks) || w.blocks[w.curIdx].blk != blk || w.inBlock >= w.blocks[w.curIdx].n {
		return fmt.Errorf("diskdump: pfn %#x: more pages than the 2nd bitmap sets in its block", pfn)
	}
	if w.bitmapOK {
		i := pfn % w.pfnsPerBlock
		if w.bitmapBuf[i/8]&(1<<(i%8)) == 0 {
			return fmt.Errorf("diskdump: pfn %#x is not set in the 2nd bitmap", pfn)
		}
	}
	w.inBlock++
	w.nextPFN, w.havePFN = pfn, true
	return nil
}

// loadBitmapBlock reads back the current block of the 2nd bitmap, when
// the output allows, so that account can check each pfn's bit. Without
// it only the number of pages per block is checked.
func (w *Writer) loadBitmapBlock() {
	w.bitmapOK = false
	blk := w.curBlock
	if w.verify == nil || w.curIdx >= len(w.blocks) || w.blocks[w.curIdx].blk != blk {
		return
	}
	if w.bitmapBuf == nil {
		w.bitmapBuf = make([]byte, w.bs)
	}
	off := w.lay.bitmap2 + int64(blk)*w.bs
	n, err := w.verify.ReadAt(w.bitmapBuf, off)
	if err != nil && !(errors.Is(err, io.EOF) && n >= 0) {
		// Not readable (opened write-only): count only.
		w.verify = nil
		return
	}
	clear(w.bitmapBuf[n:])
	w.bitmapOK = true
}

// checkBlock verifies that the current bitmap block got one page per set
// bit.
func (w *Writer) checkBlock(got uint32) error {
	var want uint32
	if w.curIdx < len(w.blocks) && w.blocks[w.curIdx].blk == w.curBlock {
		want = w.blocks[w.curIdx].n
	}
	if got != want {
		blk := w.curBlock
		return fmt.Errorf("diskdump: %d pages written for pfns %#x–%#x, the 2nd bitmap sets %d",
			got, blk*w.pfnsPerBlock, (blk+1)*w.pfnsPerBlock-1, want)
	}
	return nil
}

func (w *Writer) addDesc(d PageDesc) error {
	n := len(w.descs)
	w.descs = w.descs[:n+descSize]
	d.put(w.descs[n:])
	w.written++
	if len(w.descs) == cap(w.descs) {
		return w.flushDescs()
	}
	return nil
}

// WritePage stores the page of pfn: data compressed with the codec whose
// flag is flags, or the raw page with flags 0. Pages come in pfn order,
// exactly one per bit set in the 2nd bitmap.
func (w *Writer) WritePage(pfn uint64, data []byte, flags uint32) error {
	if flags == 0 {
		if len(data) != int(w.bs) {
			return fmt.Errorf("diskdump: raw page %#x of %d bytes, want %d", pfn, len(data), w.bs)
		}
	} else {
		if _, err := codec.FromFlags(flags); err != nil {
			return fmt.Errorf("diskdump: page %#x: %w", pfn, err)
		}
		if len(data) == 0 || len(data) >= int(w.bs) {
			return fmt.Errorf("diskdump: compressed page %#x of %d bytes: want 1 to %d", pfn, len(data), w.bs-1)
		}
	}
	if err := w.account(pfn); err != nil {
		return err
	}
	d := PageDesc{Offset: w.dataPos + int64(len(w.data)), Size: uint32(len(data)), Flags: flags}
	if len(w.data)+len(data) > cap(w.data) {
		if err := w.flushData(); err != nil {
			return err
		}
		d.Offset = w.dataPos
	}
	w.data = append(w.data, data...)
	return w.addDesc(d)
}

// WriteZeroPage stores pfn as a page of zeros, sharing one copy of the
// data with every other zero page.
func (w *Writer) WriteZeroPage(pfn uint64) error {
	if err := w.account(pfn); err != nil {
		return err
	}
	if w.zeroOff < 0 {
		if err := w.writeZero(); err != nil {
			return err
		}
	}
	return w.addDesc(PageDesc{Offset: w.zeroOff, Size: uint32(w.bs)})
}

// Close writes what is pending and the final header. It does not sync or
// close the output. When fewer pages were written than the bitmaps
// promise, the file is left flagged incomplete and Close returns an error.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("diskdump: Close called twice")
	}
	if w.err != nil {
		return w.Abort(w.err)
	}
	if !w.started {
		if err := w.StartPages(); err != nil {
			return w.Abort(err)
		}
	}
	if w.havePFN {
		if err := w.checkBlock(w.inBlock); err != nil {
			return errors.Join(err, w.Abort(err))
		}
	}
	if w.written+w.excluded != w.total {
		err := fmt.Errorf("diskdump: %d pages written, the 2nd bitmap sets %d", w.written, w.total-w.excluded)
		return errors.Join(err, w.Abort(err))
	}
	if err := w.flushDescs(); err != nil {
		return w.Abort(err)
	}
	w.closed = true
	if err := w.writeNewNotes(); err != nil {
		// The notes in place stay valid; the file is still whole.
		return errors.Join(err, w.writeHeader(true))
	}
	return w.writeHeader(w.incomplete)
}

// ExcludePage takes pfn, set in the 2nd bitmap, out of it: its page could
// not be read, and it is missing from the dump rather than stored as
// anything. Readers then report it as not dumped. It comes in pfn order
// like WritePage. The bit can be cleared only in an output the Writer can
// read back (an *os.File opened for reading and writing); otherwise the
// page is stored as a zero page and excluded is false.
func (w *Writer) ExcludePage(pfn uint64) (excluded bool, err error) {
	if err := w.account(pfn); err != nil {
		return false, err
	}
	if !w.bitmapOK {
		if w.zeroOff < 0 {
			if err := w.writeZero(); err != nil {
				return false, err
			}
		}
		return false, w.addDesc(PageDesc{Offset: w.zeroOff, Size: uint32(w.bs)})
	}
	i := pfn % w.pfnsPerBlock
	w.bitmapBuf[i/8] &^= 1 << (i % 8)
	at := w.lay.bitmap2 + int64(pfn/8)
	if _, err := w.out.WriteAt(w.bitmapBuf[i/8:i/8+1], at); err != nil {
		return false, w.fail(fmt.Errorf("diskdump: clear pfn %#x in the 2nd bitmap at %#x: %w", pfn, at, err))
	}
	w.excluded++
	return true, nil
}

// SetIncomplete makes Close leave the header flagged incomplete
// (StatusIncomplete): the dump is whole as a file, but the memory it was
// to hold is not all there.
func (w *Writer) SetIncomplete() { w.incomplete = true }

// ReplaceNotes makes Close (or Abort) write notes, a block of ELF notes
// with the VMCOREINFO descriptor at viOff (viSize bytes; -1 and 0 for
// none), after the page data, and point the sub-header at them in place
// of the notes NewWriter wrote. This is how notes learnt while writing
// (the memory found missing) join a file whose layout was fixed first.
func (w *Writer) ReplaceNotes(notes []byte, viOff, viSize int64) error {
	h := w.hdr
	h.Notes = append([]byte(nil), notes...)
	h.VMCOREINFOOffset, h.VMCOREINFOSize = viOff, viSize
	if viSize == 0 && viOff == 0 {
		h.VMCOREINFOOffset = -1
	}
	if err := h.validate(); err != nil {
		return err
	}
	w.newNotes = &h
	return nil
}

// writeNewNotes writes the notes ReplaceNotes gave after the page data,
// then the sub-header pointing at them.
func (w *Writer) writeNewNotes() error {
	if w.newNotes == nil {
		return nil
	}
	h := w.newNotes
	w.newNotes = nil
	at := w.flushed
	if w.started {
		at = max(at, w.dataOff)
	} else {
		at = w.lay.desc
	}
	if _, err := w.out.WriteAt(h.Notes, at); err != nil {
		return fmt.Errorf("diskdump: write notes at %#x: %w", at, err)
	}
	if _, err := w.out.WriteAt(h.encodeSubHeaderAt(w.lay, at), w.bs); err != nil {
		return fmt.Errorf("diskdump: write sub-header: %w", err)
	}
	w.hdr.Notes, w.hdr.VMCOREINFOOffset, w.hdr.VMCOREINFOSize = h.Notes, h.VMCOREINFOOffset, h.VMCOREINFOSize
	return nil
}

// Abort ends a dump that cannot go on (the disk filled, an I/O error, a
// failed read of memory): it writes what page data it still can, the
// descriptors of the pages whose data is on disk, and the header with
// StatusIncomplete. The file stays readable; pages without a descriptor
// read as zeros. cause is for the caller's records; Abort returns only
// the errors of its own writes.
func (w *Writer) Abort(cause error) error {
	if w.closed {
		return errors.New("diskdump: Abort after Close")
	}
	w.closed = true
	var errs []error
	if w.started {
		if w.err == nil {
			// The data may still fit; a failure leaves w.flushed short.
			_ = w.flushData()
		}
		// Keep the descriptors whose data reached the disk. Descriptors
		// are in data order except the shared zero page's, so check each.
		keep := 0
		for i := 0; i+descSize <= len(w.descs); i += descSize {
			d := getDesc(w.descs[i:])
			if d.Offset+int64(d.Size) > w.flushed {
				break
			}
			keep++
		}
		if err := w.writeDescs(keep); err != nil {
			errs = append(errs, err)
		} else if err := w.fillMissing(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.writeNewNotes(); err != nil {
		errs = append(errs, err)
	}
	if err := w.writeHeader(true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
