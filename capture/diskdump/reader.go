package diskdump

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/bits"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// ErrHole is vmcore.ErrHole: reads of pages the dump does not hold fail
// with it, whichever kind of dump they read.
var ErrHole = vmcore.ErrHole

// Reader cache sizes.
const (
	bitmapCacheBlocks = 16  // per bitmap
	descCacheEntries  = 256 // descriptors read at once
)

// File is an open kdump-compressed file. Its methods are safe for
// concurrent use.
type File struct {
	// Header is the file's header and sub-header.
	Header Header
	// Machine is the crashed machine, from the utsname machine field.
	Machine elf.Machine
	// Notes, PRStatus and VMCOREINFO are parsed from the ELF notes the
	// sub-header carries. VMCOREINFO is nil when there is none.
	Notes      []vmcore.Note
	PRStatus   []vmcore.PRStatus
	VMCOREINFO *vmcoreinfo.Info
	// NoteErr says why the ELF notes of the sub-header were dropped, in
	// part or whole: a note overrunning the block ends the walk, and the
	// notes before it are kept; VMCOREINFO is then taken from where the
	// sub-header points. Pages read all the same. Nil when every note
	// parsed.
	NoteErr error

	r        io.ReaderAt
	size     int64
	lay      layout
	maxMapnr uint64
	pfnsPer  uint64 // pfns per bitmap block
	// index has an entry for each block of the 2nd bitmap that sets a
	// bit below max_mapnr, in block order: its memory is bounded by the
	// bitmap data the file holds, not by the span it describes.
	index    []rankEntry
	dumped   uint64 // bits set in the 2nd bitmap below max_mapnr
	descBase uint64 // rank of the file's first pfn (split dumps)
	ndesc    uint64
	dataOff  int64 // end of the descriptor area
	// Where the sub-header says the notes and VMCOREINFO are, when inside
	// the file.
	notes, vmcoreinfo Range
	closer            io.Closer

	mu        sync.Mutex
	bm1, bm2  bitmapCache
	descBuf   []byte
	descFirst uint64 // index of descBuf's first descriptor
	descN     int    // valid descriptors in descBuf
	cbuf      []byte // compressed page
	pbuf      []byte // last page read for a partial ReadPhys
	pbufPFN   uint64
	pbufOK    bool
}

// decompressors are shared by every File: a zstd decoder is costly to
// make, and a File reads one page at a time.
var decompressors = sync.Pool{New: func() any { return codec.NewDecompressor() }}

type bitmapCache struct {
	off   int64 // file offset of the bitmap
	tag   [bitmapCacheBlocks]uint64
	valid [bitmapCacheBlocks]bool
	data  [bitmapCacheBlocks][]byte
}

// OpenFile opens the kdump-compressed file at path.
func OpenFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("diskdump: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("diskdump: %w", err)
	}
	f, err := Open(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.closer = fh
	return f, nil
}

// Close closes the file if OpenFile opened it.
func (f *File) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func machineOf(s string) elf.Machine {
	switch s {
	case "x86_64":
		return elf.EM_X86_64
	case "aarch64", "arm64":
		return elf.EM_AARCH64
	}
	return elf.EM_NONE
}

// Open reads the headers, notes and bitmaps of the kdump-compressed file
// of size bytes in r. Page data is read on demand. Format errors are
// *FormatError; a damaged note block is not one (see File.NoteErr).
//
// Open reads the 2nd bitmap once to index it, skipping the holes of a
// sparse file and keeping an entry only per bitmap block that sets a bit:
// its time and memory follow the bitmap data the file holds, whatever
// max_mapnr claims.
func Open(r io.ReaderAt, size int64) (*File, error) {
	hb := make([]byte, headerSize)
	if size < headerSize {
		return nil, formatErr(ErrNotKdump, 0, "disk_dump_header", "%d bytes, too short for a header", size)
	}
	if _, err := r.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("diskdump: read header: %w", err)
	}
	if IsFlattened(hb) {
		return nil, fmt.Errorf("%w (makedumpfile -R, or diskdump.Unflatten)", ErrFlattened)
	}
	switch string(hb[:8]) {
	case Signature:
	case "DISKDUMP":
		return nil, formatErr(ErrUnsupported, offSignature, "signature", "old diskdump format")
	default:
		return nil, formatErr(ErrNotKdump, offSignature, "signature", "signature %q", hb[:8])
	}
	le := binary.LittleEndian
	f := &File{r: r, size: size}
	h := &f.Header
	h.HeaderVersion = int(int32(le.Uint32(hb[offHeaderVersion:])))
	u := hb[offUtsname:]
	h.Sysname = cstring(u[0*utsLen : 1*utsLen])
	h.Nodename = cstring(u[1*utsLen : 2*utsLen])
	h.Release = cstring(u[2*utsLen : 3*utsLen])
	h.Version = cstring(u[3*utsLen : 4*utsLen])
	h.Machine = cstring(u[4*utsLen : 5*utsLen])
	h.Domainname = cstring(u[5*utsLen : 6*utsLen])
	f.Machine = machineOf(h.Machine)
	sec, usec := int64(le.Uint64(hb[offTimestamp:])), int64(le.Uint64(hb[offTimestamp+8:]))
	if sec != 0 || usec != 0 {
		h.Timestamp = time.Unix(sec, usec*1000)
	}
	h.Status = le.Uint32(hb[offStatus:])
	bs := int64(int32(le.Uint32(hb[offBlockSize:])))
	subHdrBlocks := int64(int32(le.Uint32(hb[offSubHdrSize:])))
	bitmapBlocks := int64(le.Uint32(hb[offBitmapBlocks:]))
	maxMapnr := uint64(le.Uint32(hb[offMaxMapnr:]))
	h.CurrentCPU = int(le.Uint32(hb[offCurrentCPU:]))
	h.NrCPUs = int(int32(le.Uint32(hb[offNrCPUs:])))

	if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		if be := int64(binary.BigEndian.Uint32(hb[offBlockSize:])); be >= MinBlockSize && be <= MaxBlockSize && be&(be-1) == 0 {
			return nil, formatErr(ErrUnsupported, offBlockSize, "block_size", "big-endian dump")
		}
		return nil, formatErr(ErrCorrupt, offBlockSize, "block_size",
			"block size %d, not a power of two from %d to %d", bs, MinBlockSize, MaxBlockSize)
	}
	h.BlockSize = int(bs)
	if h.HeaderVersion < 1 {
		return nil, formatErr(ErrUnsupported, offHeaderVersion, "header_version", "header version %d", h.HeaderVersion)
	}
	if subHdrBlocks < 1 || subHdrBlocks > size/bs {
		return nil, formatErr(ErrCorrupt, offSubHdrSize, "sub_hdr_size",
			"sub-header of %d blocks in a file of %d bytes", subHdrBlocks, size)
	}
	bitmap1 := (1 + subHdrBlocks) * bs
	if bitmapBlocks < 2 || bitmapBlocks%2 != 0 || bitmap1 > size || bitmapBlocks > (size-bitmap1)/bs {
		return nil, formatErr(ErrCorrupt, offBitmapBlocks, "bitmap_blocks",
			"%d bitmap blocks at %#x in a file of %d bytes", bitmapBlocks, bitmap1, size)
	}
	f.lay = layout{bs: bs, subHdrBlocks: subHdrBlocks, bitmapLen: bitmapBlocks / 2 * bs, bitmap1: bitmap1}
	f.lay.bitmap2 = bitmap1 + f.lay.bitmapLen
	f.lay.desc = f.lay.bitmap2 + f.lay.bitmapLen
	f.pfnsPer = uint64(bs) * 8

	// Sub-header: its fields exist from the header version noted.
	sb := make([]byte, subHeaderSize)
	if _, err := r.ReadAt(sb, bs); err != nil {
		return nil, fmt.Errorf("diskdump: read sub-header at %#x: %w", bs, err)
	}
	v := h.HeaderVersion
	h.PhysBase = le.Uint64(sb[offPhysBase:])
	h.DumpLevel = int(int32(le.Uint32(sb[offDumpLevel:])))
	h.VMCOREINFOOffset = -1
	mapnrAt := int64(offMaxMapnr)
	if m := le.Uint64(sb[offMaxMapnr64:]); v >= 6 && m != 0 {
		maxMapnr, mapnrAt = m, bs+offMaxMapnr64
	}
	if maxMapnr > MaxMapnr || maxMapnr > uint64(f.lay.bitmapLen)*8 {
		return nil, formatErr(ErrCorrupt, mapnrAt, "max_mapnr",
			"max_mapnr %#x beyond the %d-byte bitmaps (or the %#x pages of a 52-bit physical address space)",
			maxMapnr, f.lay.bitmapLen, uint64(MaxMapnr))
	}
	f.maxMapnr = maxMapnr
	h.MaxMapnr = maxMapnr
	h.EndPFN = maxMapnr
	if v >= 2 && le.Uint32(sb[offSplit:]) != 0 {
		h.Split = true
		at := bs + offStartPFN
		if v >= 6 {
			h.StartPFN, h.EndPFN = le.Uint64(sb[offStartPFN64:]), le.Uint64(sb[offEndPFN64:])
			at = bs + offStartPFN64
		} else {
			h.StartPFN, h.EndPFN = le.Uint64(sb[offStartPFN:]), le.Uint64(sb[offEndPFN:])
		}
		if h.StartPFN > h.EndPFN || h.EndPFN > maxMapnr {
			return nil, formatErr(ErrCorrupt, at, "start_pfn",
				"split dump pfns %#x–%#x, max_mapnr %#x", h.StartPFN, h.EndPFN, maxMapnr)
		}
	}
	f.readNotes(sb)
	if v >= 5 {
		h.EraseInfoOffset = int64(le.Uint64(sb[offOffsetEraseinfo:]))
		h.EraseInfoSize = int64(le.Uint64(sb[offSizeEraseinfo:]))
	}

	f.bm1.off, f.bm2.off = f.lay.bitmap1, f.lay.bitmap2
	if err := f.buildIndex(); err != nil {
		return nil, err
	}
	first, err := f.rankAt(h.StartPFN)
	if err != nil {
		return nil, err
	}
	end, err := f.rankAt(h.EndPFN)
	if err != nil {
		return nil, err
	}
	f.descBase, f.ndesc = first, end-first
	if f.ndesc > uint64(MaxFlatOffset/descSize) {
		return nil, formatErr(ErrCorrupt, f.lay.bitmap2, "bitmap", "%d pages dumped, more than any file holds", f.ndesc)
	}
	f.dataOff = f.lay.desc + int64(f.ndesc)*descSize
	f.descBuf = make([]byte, descCacheEntries*descSize)
	f.cbuf = make([]byte, bs)
	f.pbuf = make([]byte, bs)
	return f, nil
}

// readNotes reads the ELF notes and VMCOREINFO the sub-header points at.
// Damage costs only itself: it is recorded in NoteErr, and the notes that
// parsed and a VMCOREINFO that does are kept.
func (f *File) readNotes(sb []byte) {
	le := binary.LittleEndian
	h := &f.Header
	bs := f.lay.bs
	damaged := func(err error) {
		if f.NoteErr == nil {
			f.NoteErr = err
		}
	}
	inFile := func(off, n uint64) bool { return off <= uint64(f.size) && n <= uint64(f.size)-off }
	var noteOff, noteSize uint64
	if h.HeaderVersion >= 4 {
		noteOff, noteSize = le.Uint64(sb[offOffsetNote:]), le.Uint64(sb[offSizeNote:])
	}
	switch {
	case noteSize == 0:
	case noteSize > MaxNoteSize || !inFile(noteOff, noteSize):
		damaged(formatErr(ErrCorrupt, bs+offOffsetNote, "offset_note",
			"notes at %#x+%#x, past the end of the file (%d bytes) or over %d bytes", noteOff, noteSize, f.size, MaxNoteSize))
		noteSize = 0
	default:
		f.notes = Range{int64(noteOff), int64(noteSize)}
		h.Notes = make([]byte, noteSize)
		if _, err := f.r.ReadAt(h.Notes, int64(noteOff)); err != nil {
			damaged(fmt.Errorf("diskdump: read notes at %#x: %w", noteOff, err))
			h.Notes, noteSize = nil, 0
			break
		}
		ns, err := vmcore.ParseNotes(h.Notes, binary.LittleEndian, f.Machine, int64(noteOff))
		if err != nil {
			damaged(fmt.Errorf("%w: notes: %w", ErrCorrupt, err))
		}
		f.Notes, f.PRStatus, f.VMCOREINFO = ns.Notes, ns.PRStatus, ns.VMCOREINFO
	}
	if h.HeaderVersion < 3 {
		return
	}
	viOff, viSize := le.Uint64(sb[offOffsetVmcoreinfo:]), le.Uint64(sb[offSizeVmcoreinfo:])
	if viSize == 0 {
		return
	}
	if viSize > vmcoreinfo.MaxSize || !inFile(viOff, viSize) {
		damaged(formatErr(ErrCorrupt, bs+offOffsetVmcoreinfo, "offset_vmcoreinfo",
			"VMCOREINFO at %#x+%#x, past the end of the file (%d bytes) or over %d bytes", viOff, viSize, f.size, vmcoreinfo.MaxSize))
		return
	}
	h.VMCOREINFOSize = int64(viSize)
	f.vmcoreinfo = Range{int64(viOff), int64(viSize)}
	if noteSize > 0 && viOff >= noteOff && viOff-noteOff <= noteSize && viSize <= noteSize-(viOff-noteOff) {
		h.VMCOREINFOOffset = int64(viOff - noteOff)
		if f.VMCOREINFO != nil {
			return
		}
	}
	// VMCOREINFO outside the notes (header version 3), or the notes'
	// own could not be found: parse what the sub-header points at.
	b := make([]byte, viSize)
	if _, err := f.r.ReadAt(b, int64(viOff)); err != nil {
		damaged(fmt.Errorf("diskdump: read VMCOREINFO at %#x: %w", viOff, err))
		return
	}
	info, err := vmcoreinfo.Parse(b)
	if err != nil {
		damaged(formatErr(ErrCorrupt, int64(viOff), "vmcoreinfo", "VMCOREINFO: %v", err))
		return
	}
	f.VMCOREINFO = info
}

// rankEntry is a block of the 2nd bitmap that sets bits below max_mapnr.
type rankEntry struct {
	blk    uint64 // block number within the bitmap
	before uint64 // bits set in the blocks before it
}

// indexChunk is how much of the 2nd bitmap buildIndex reads at once.
const indexChunk = 1 << 20

// buildIndex counts the bits of each block of the 2nd bitmap that
// describes pfns below max_mapnr, holes of the file skipped: bits at or
// past max_mapnr describe no page (makedumpfile never sets them) and are
// not counted, nor are blocks past those max_mapnr needs.
func (f *File) buildIndex() error {
	bs := f.lay.bs
	nblocks := int64((f.maxMapnr + f.pfnsPer - 1) / f.pfnsPer)
	start, end := f.lay.bitmap2, f.lay.bitmap2+nblocks*bs
	buf := make([]byte, min(nblocks*bs, indexChunk))
	next := int64(0) // first block not yet counted
	return dataExtents(f.r, start, end, func(a, b int64) error {
		blk := max((a-start)/bs, next)
		last := (b - start + bs - 1) / bs // one past
		for blk < last {
			n := min(int64(len(buf))/bs, last-blk)
			chunk := buf[:n*bs]
			off := start + blk*bs
			if _, err := f.r.ReadAt(chunk, off); err != nil {
				return fmt.Errorf("diskdump: read 2nd bitmap at %#x: %w", off, err)
			}
			for i := int64(0); i < n; i++ {
				c := f.countBlock(uint64(blk+i), chunk[i*bs:(i+1)*bs])
				if c > 0 {
					f.index = append(f.index, rankEntry{blk: uint64(blk + i), before: f.dumped})
					f.dumped += c
				}
			}
			blk += n
		}
		next = blk
		return nil
	})
}

// countBlock counts the bits of bitmap block blk below max_mapnr.
func (f *File) countBlock(blk uint64, b []byte) uint64 {
	if lim := f.maxMapnr - blk*f.pfnsPer; lim < f.pfnsPer {
		return rankIn(b, lim)
	}
	return popcount(b)
}

// rankIn counts the bits of b below bit i.
func rankIn(b []byte, i uint64) uint64 {
	r := popcount(b[:i/8])
	if rem := i % 8; rem != 0 {
		r += uint64(bits.OnesCount8(b[i/8] & (1<<rem - 1)))
	}
	return r
}

func popcount(b []byte) uint64 {
	var n int
	for len(b) >= 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return uint64(n)
}

// block returns bitmap block blk through the cache. Callers hold f.mu.
func (f *File) block(c *bitmapCache, blk uint64) ([]byte, error) {
	i := blk % bitmapCacheBlocks
	if c.valid[i] && c.tag[i] == blk {
		return c.data[i], nil
	}
	off := c.off + int64(blk)*f.lay.bs
	c.valid[i] = false
	if c.data[i] == nil {
		c.data[i] = make([]byte, f.lay.bs)
	}
	if _, err := f.r.ReadAt(c.data[i], off); err != nil {
		return nil, fmt.Errorf("diskdump: read bitmap at %#x: %w", off, err)
	}
	c.tag[i], c.valid[i] = blk, true
	return c.data[i], nil
}

func (f *File) bit(c *bitmapCache, pfn uint64) (bool, error) {
	if pfn >= f.maxMapnr {
		return false, nil
	}
	b, err := f.block(c, pfn/f.pfnsPer)
	if err != nil {
		return false, err
	}
	i := pfn % f.pfnsPer
	return b[i/8]&(1<<(i%8)) != 0, nil
}

// entryAt returns the index of the first entry of f.index for block blk
// or a later one.
func (f *File) entryAt(blk uint64) int {
	return sort.Search(len(f.index), func(i int) bool { return f.index[i].blk >= blk })
}

// rankAt returns the number of dumped pfns below pfn (pfn ≤ max_mapnr).
// Callers hold f.mu, or call it before the File is shared.
func (f *File) rankAt(pfn uint64) (uint64, error) {
	blk := pfn / f.pfnsPer
	i := f.entryAt(blk)
	if i == len(f.index) {
		return f.dumped, nil
	}
	e := f.index[i]
	if e.blk > blk || pfn%f.pfnsPer == 0 {
		return e.before, nil
	}
	b, err := f.block(&f.bm2, blk)
	if err != nil {
		return 0, err
	}
	return e.before + rankIn(b, pfn%f.pfnsPer), nil
}

// PageSize returns the dump's page (block) size.
func (f *File) PageSize() int { return int(f.lay.bs) }

// MaxPFN returns max_mapnr, one past the highest pfn the dump describes.
func (f *File) MaxPFN() uint64 { return f.maxMapnr }

// Incomplete reports whether the dump stopped early (StatusIncomplete):
// pages without data read as zeros.
func (f *File) Incomplete() bool { return f.Header.Status&StatusIncomplete != 0 }

// NumDumped returns the number of pages this file holds.
func (f *File) NumDumped() uint64 { return f.ndesc }

// Size returns the size of the file.
func (f *File) Size() int64 { return f.size }

// IsRAM reports whether pfn is RAM according to the 1st bitmap. A bitmap
// that cannot be read reports false.
func (f *File) IsRAM(pfn uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok, _ := f.bit(&f.bm1, pfn)
	return ok
}

// IsDumpable reports whether pfn's page is in the dump (the 2nd bitmap).
func (f *File) IsDumpable(pfn uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok, _ := f.bit(&f.bm2, pfn)
	return ok
}

// PageDesc returns the descriptor of a dumped pfn; ok is false when the
// file ends before it (a truncated dump).
func (f *File) PageDesc(pfn uint64) (d PageDesc, ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, err := f.descIndex(pfn)
	if err != nil {
		return PageDesc{}, false, err
	}
	return f.desc(idx)
}

// descIndex returns the descriptor index of pfn, or an error wrapping
// ErrHole when the file does not hold it.
func (f *File) descIndex(pfn uint64) (uint64, error) {
	if pfn >= f.maxMapnr {
		return 0, fmt.Errorf("diskdump: pfn %#x past max_mapnr %#x: %w", pfn, f.maxMapnr, ErrHole)
	}
	dumped, err := f.bit(&f.bm2, pfn)
	if err != nil {
		return 0, err
	}
	if !dumped {
		if ram, _ := f.bit(&f.bm1, pfn); ram {
			return 0, fmt.Errorf("diskdump: pfn %#x: %w: %w", pfn, ErrExcluded, ErrHole)
		}
		return 0, fmt.Errorf("diskdump: pfn %#x not RAM: %w", pfn, ErrHole)
	}
	if pfn < f.Header.StartPFN || pfn >= f.Header.EndPFN {
		return 0, fmt.Errorf("diskdump: pfn %#x in another file of the split dump: %w", pfn, ErrHole)
	}
	r, err := f.rankAt(pfn)
	if err != nil {
		return 0, err
	}
	return r - f.descBase, nil
}

// desc returns descriptor idx through the cache. Callers hold f.mu.
func (f *File) desc(idx uint64) (PageDesc, bool, error) {
	if idx < f.descFirst || idx >= f.descFirst+uint64(f.descN) {
		first := idx / descCacheEntries * descCacheEntries
		n := min(uint64(descCacheEntries), f.ndesc-first)
		off := f.lay.desc + int64(first)*descSize
		f.descN = 0
		m, err := f.r.ReadAt(f.descBuf[:n*descSize], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return PageDesc{}, false, fmt.Errorf("diskdump: read page descriptors at %#x: %w", off, err)
		}
		f.descFirst, f.descN = first, m/descSize
		if idx >= first+uint64(f.descN) {
			return PageDesc{}, false, nil
		}
	}
	i := (idx - f.descFirst) * descSize
	return getDesc(f.descBuf[i : i+descSize]), true, nil
}

// ReadPage reads the page of pfn into buf, which must hold PageSize
// bytes. A pfn the file does not hold fails with an error wrapping
// ErrHole (and ErrExcluded when it is RAM that was filtered out). In an
// incomplete dump, pages whose data was never written read as zeros.
// Other failures are a *PageError.
func (f *File) ReadPage(pfn uint64, buf []byte) error {
	if len(buf) < int(f.lay.bs) {
		return fmt.Errorf("diskdump: ReadPage buffer of %d bytes, page is %d", len(buf), f.lay.bs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readPage(pfn, buf[:f.lay.bs], false)
}

// readPage reads pfn's page. strict refuses missing data even in an
// incomplete dump.
func (f *File) readPage(pfn uint64, buf []byte, strict bool) error {
	idx, err := f.descIndex(pfn)
	if err != nil {
		return err
	}
	descAt := f.lay.desc + int64(idx)*descSize
	d, ok, err := f.desc(idx)
	if err != nil {
		return &PageError{PFN: pfn, Off: descAt, Err: err}
	}
	return f.pageData(pfn, descAt, d, ok, buf, strict)
}

// pageData reads the data descriptor d (at descAt; ok false when the
// file ends before it) names for pfn.
func (f *File) pageData(pfn uint64, descAt int64, d PageDesc, ok bool, buf []byte, strict bool) error {
	bad := func(off int64, format string, args ...any) error {
		return &PageError{PFN: pfn, Off: off, Err: formatErr(ErrCorrupt, descAt, "page_desc", format, args...)}
	}
	missing := func(off int64, format string, args ...any) error {
		if f.Incomplete() && !strict {
			clear(buf)
			return nil
		}
		return bad(off, format, args...)
	}
	if !ok {
		return missing(descAt, "descriptor past the end of the file (%d bytes)", f.size)
	}
	if d.Offset == 0 {
		// Never written: makedumpfile and our Writer leave descriptors
		// of pages lost to a full disk zero.
		return missing(descAt, "descriptor never written (no page data)")
	}
	bs := uint32(f.lay.bs)
	if d.Size == 0 || d.Size > bs || (d.Flags == 0 && d.Size != bs) || !validFlags(d.Flags) {
		return bad(descAt, "%d bytes, flags %#x, page size %d", d.Size, d.Flags, bs)
	}
	if d.Offset < f.dataOff || d.Offset > f.size {
		if d.Offset >= f.dataOff {
			return missing(d.Offset, "data at %#x past the end of the file (%d bytes)", d.Offset, f.size)
		}
		return bad(descAt, "data offset %#x before the data area (%#x)", d.Offset, f.dataOff)
	}
	if int64(d.Size) > f.size-d.Offset {
		return missing(d.Offset, "data at %#x+%d past the end of the file (%d bytes)", d.Offset, d.Size, f.size)
	}
	src := f.cbuf[:d.Size]
	if d.Flags == 0 {
		src = buf
	}
	if _, err := f.r.ReadAt(src, d.Offset); err != nil {
		return &PageError{PFN: pfn, Off: d.Offset, Err: fmt.Errorf("read page data: %w", err)}
	}
	if d.Flags == 0 {
		return nil
	}
	dec := decompressors.Get().(*codec.Decompressor)
	err := dec.Decompress(buf, src, d.Flags)
	decompressors.Put(dec)
	if err != nil {
		return &PageError{PFN: pfn, Off: d.Offset, Err: fmt.Errorf("page of %d bytes (descriptor at %#x): %w", d.Size, descAt, err)}
	}
	return nil
}

// ReadPhys reads len(p) bytes of physical memory at paddr, like
// vmcore.File.ReadPhys: a read that touches a page the dump does not hold
// fails with an error wrapping ErrHole after reading what precedes it.
func (f *File) ReadPhys(p []byte, paddr uint64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bs := uint64(f.lay.bs)
	done := 0
	for done < len(p) {
		a := paddr + uint64(done)
		pfn, in := a/bs, a%bs
		n := int(min(bs-in, uint64(len(p)-done)))
		if in == 0 && n == int(bs) {
			if err := f.readPage(pfn, p[done:done+n], false); err != nil {
				return done, fmt.Errorf("diskdump: physical %#x: %w", a, err)
			}
		} else {
			if !f.pbufOK || f.pbufPFN != pfn {
				f.pbufOK = false
				if err := f.readPage(pfn, f.pbuf, false); err != nil {
					return done, fmt.Errorf("diskdump: physical %#x: %w", a, err)
				}
				f.pbufPFN, f.pbufOK = pfn, true
			}
			copy(p[done:done+n], f.pbuf[in:])
		}
		done += n
	}
	return done, nil
}

// DumpedPFNs yields, in order, the pfns whose pages this file holds. It
// stops after yielding an error when a bitmap cannot be read. It reads
// only the bitmap blocks that set bits.
func (f *File) DumpedPFNs() iter.Seq2[uint64, error] {
	return func(yield func(uint64, error) bool) {
		bs := f.lay.bs
		buf := make([]byte, bs)
		first, end := f.Header.StartPFN, min(f.Header.EndPFN, f.maxMapnr)
		for _, e := range f.index[f.entryAt(first/f.pfnsPer):] {
			base := e.blk * f.pfnsPer
			if base >= end {
				return
			}
			off := f.lay.bitmap2 + int64(e.blk)*bs
			if _, err := f.r.ReadAt(buf, off); err != nil {
				yield(0, fmt.Errorf("diskdump: read 2nd bitmap at %#x: %w", off, err))
				return
			}
			for i := 0; i+8 <= len(buf); i += 8 {
				w := binary.LittleEndian.Uint64(buf[i:])
				for w != 0 {
					pfn := base + uint64(i)*8 + uint64(bits.TrailingZeros64(w))
					w &= w - 1
					if pfn < first {
						continue
					}
					if pfn >= end {
						return
					}
					if !yield(pfn, nil) {
						return
					}
				}
			}
		}
	}
}
