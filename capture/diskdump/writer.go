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
// MiB of buffers plus 4 bytes per bitmap block) whatever the size of the
// dumped machine. It is not safe for concurrent use: one goroutine (a
// pipeline's ordered writer) calls it.
//
// The call sequence: NewWriter; SetBitmaps for the bitmap chunks in pfn
// order; StartPages; one WritePage or WriteZeroPage per dumped pfn, in pfn
// order; Close, or Abort when writing failed.
type Writer struct {
	out          io.WriterAt
	hdr          Header
	lay          layout
	bs           int64
	pfnsPerBlock uint64

	// Bitmap phase.
	bitmapEnd   uint64   // pfn after the last chunk given
	blockCounts []uint32 // dumpable pfns per bitmap block
	zeros       []byte   // one block of zeros
	total       uint64   // dumpable pfns

	// Page phase.
	started  bool
	closed   bool
	err      error // first write error; the Writer is unusable after it
	dataOff  int64 // first byte of page data
	zeroOff  int64 // offset of the shared zero page, or -1
	nextPFN  uint64
	havePFN  bool
	curBlock uint64 // bitmap block of the last page written
	inBlock  uint32 // pages written in curBlock
	written  uint64 // descriptors produced

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
// whether its page is in the dump. Chunks come in pfn order and start at
// multiples of 8*BlockSize pfns (one bitmap block); pfns of blocks never
// given are neither. Every dumpable pfn must be RAM, and no bit may be set
// at or past MaxMapnr.
func (w *Writer) SetBitmaps(startPFN uint64, ram, dumpable []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.started {
		return errors.New("diskdump: SetBitmaps after StartPages")
	}
	if startPFN%w.pfnsPerBlock != 0 {
		return fmt.Errorf("diskdump: bitmap chunk at pfn %#x not on a %d-pfn boundary", startPFN, w.pfnsPerBlock)
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
	firstBlock := startPFN / w.pfnsPerBlock
	for uint64(len(w.blockCounts)) < firstBlock {
		w.blockCounts = append(w.blockCounts, 0)
	}
	bs := int(w.bs)
	for i := 0; i < len(dumpable); i += bs {
		r, d := ram[i:min(i+bs, len(ram))], dumpable[i:min(i+bs, len(dumpable))]
		var n uint32
		for j := range d {
			if d[j]&^r[j] != 0 {
				pfn := startPFN + uint64(i+j)*8 + uint64(bits.TrailingZeros8(d[j]&^r[j]))
				return fmt.Errorf("diskdump: pfn %#x dumpable but not RAM", pfn)
			}
			n += uint32(bits.OnesCount8(d[j]))
		}
		w.blockCounts = append(w.blockCounts, n)
		w.total += uint64(n)
	}
	if _, err := w.out.WriteAt(ram, w.lay.bitmap1+off); err != nil {
		return w.fail(fmt.Errorf("diskdump: write 1st bitmap at %#x: %w", w.lay.bitmap1+off, err))
	}
	if _, err := w.out.WriteAt(dumpable, w.lay.bitmap2+off); err != nil {
		return w.fail(fmt.Errorf("diskdump: write 2nd bitmap at %#x: %w", w.lay.bitmap2+off, err))
	}
	// Complete a partial last block, so that the bitmaps never end in a
	// hole past the end of the file.
	if tail := len(ram) % bs; tail != 0 {
		for _, base := range []int64{w.lay.bitmap1, w.lay.bitmap2} {
			at := base + off + int64(len(ram))
			if _, err := w.out.WriteAt(w.zeroBlock()[:bs-tail], at); err != nil {
				return w.fail(fmt.Errorf("diskdump: write bitmap at %#x: %w", at, err))
			}
		}
	}
	w.bitmapEnd = startPFN + uint64((len(ram)+bs-1)/bs)*w.pfnsPerBlock
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
	if w.bitmapEnd < uint64(w.lay.bitmapLen)*8 {
		// The last bitmap blocks were not given: write the very last one
		// so that the file covers the bitmaps whatever follows.
		at := w.lay.desc - w.bs
		if _, err := w.out.WriteAt(w.zeroBlock(), at); err != nil {
			return w.fail(fmt.Errorf("diskdump: write 2nd bitmap at %#x: %w", at, err))
		}
	}
	w.dataOff = w.lay.desc + int64(w.total)*descSize
	w.dataPos, w.flushed = w.dataOff, w.dataOff
	w.descs = make([]byte, 0, descChunk*descSize)
	w.data = make([]byte, 0, dataBufSize)
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
	if w.zeroOff < 0 || w.zeroOff+w.bs > w.flushed || w.descIndex >= w.total {
		return nil
	}
	var d [descSize]byte
	PageDesc{Offset: w.zeroOff, Size: uint32(w.bs)}.put(d[:])
	chunk := make([]byte, 0, descChunk*descSize)
	for w.descIndex < w.total {
		n := min(w.total-w.descIndex, descChunk)
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
			if err := w.checkBlock(w.curBlock, w.inBlock); err != nil {
				return err
			}
		}
		w.curBlock, w.inBlock = blk, 0
		w.loadBitmapBlock(blk)
	}
	if blk >= uint64(len(w.blockCounts)) || w.inBlock >= w.blockCounts[blk] {
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

// loadBitmapBlock reads back block blk of the 2nd bitmap, when the
// output allows, so that account can check each pfn's bit. Without it
// only the number of pages per block is checked.
func (w *Writer) loadBitmapBlock(blk uint64) {
	w.bitmapOK = false
	if w.verify == nil || blk >= uint64(len(w.blockCounts)) || w.blockCounts[blk] == 0 {
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

// checkBlock verifies that a bitmap block got one page per set bit.
func (w *Writer) checkBlock(blk uint64, got uint32) error {
	if want := w.blockCounts[blk]; got != want {
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
		if err := w.checkBlock(w.curBlock, w.inBlock); err != nil {
			return errors.Join(err, w.Abort(err))
		}
	}
	if w.written != w.total {
		err := fmt.Errorf("diskdump: %d pages written, the 2nd bitmap sets %d", w.written, w.total)
		return errors.Join(err, w.Abort(err))
	}
	if err := w.flushDescs(); err != nil {
		return w.Abort(err)
	}
	w.closed = true
	return w.writeHeader(false)
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
	if err := w.writeHeader(true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
