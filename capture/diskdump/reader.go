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

	r        io.ReaderAt
	size     int64
	lay      layout
	maxMapnr uint64
	pfnsPer  uint64   // pfns per bitmap block
	rank     []uint64 // dumped pfns before each bitmap block; len blocks+1
	descBase uint64   // rank of the file's first pfn (split dumps)
	ndesc    uint64
	dataOff  int64 // end of the descriptor area
	closer   io.Closer

	mu        sync.Mutex
	bm1, bm2  bitmapCache
	descBuf   []byte
	descFirst uint64 // index of descBuf's first descriptor
	descN     int    // valid descriptors in descBuf
	cbuf      []byte // compressed page
	pbuf      []byte // last page read for a partial ReadPhys
	pbufPFN   uint64
	pbufOK    bool
	dec       *codec.Decompressor
}

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
// of size bytes in r. Page data is read on demand.
func Open(r io.ReaderAt, size int64) (*File, error) {
	hb := make([]byte, headerSize)
	if size < headerSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotKdump, size)
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
		return nil, fmt.Errorf("%w: old diskdump format", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: signature %q", ErrNotKdump, hb[:8])
	}
	le := binary.LittleEndian
	f := &File{r: r, size: size, dec: codec.NewDecompressor()}
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
			return nil, fmt.Errorf("%w: big-endian dump", ErrUnsupported)
		}
		return nil, fmt.Errorf("%w: block size %d", ErrCorrupt, bs)
	}
	h.BlockSize = int(bs)
	if h.HeaderVersion < 1 {
		return nil, fmt.Errorf("%w: header version %d", ErrUnsupported, h.HeaderVersion)
	}
	if subHdrBlocks < 1 || subHdrBlocks > size/bs {
		return nil, fmt.Errorf("%w: sub-header of %d blocks in a file of %d bytes", ErrCorrupt, subHdrBlocks, size)
	}
	bitmap1 := (1 + subHdrBlocks) * bs
	if bitmapBlocks < 2 || bitmapBlocks%2 != 0 || bitmap1 > size || bitmapBlocks > (size-bitmap1)/bs {
		return nil, fmt.Errorf("%w: %d bitmap blocks at %#x in a file of %d bytes", ErrCorrupt, bitmapBlocks, bitmap1, size)
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
	h.EndPFN = maxMapnr
	if m := le.Uint64(sb[offMaxMapnr64:]); v >= 6 && m != 0 {
		maxMapnr = m
		h.EndPFN = maxMapnr
	}
	if maxMapnr > MaxMapnr || maxMapnr > uint64(f.lay.bitmapLen)*8 {
		return nil, fmt.Errorf("%w: max_mapnr %#x beyond the %d-byte bitmaps", ErrCorrupt, maxMapnr, f.lay.bitmapLen)
	}
	f.maxMapnr = maxMapnr
	h.MaxMapnr = maxMapnr
	if v >= 2 && le.Uint32(sb[offSplit:]) != 0 {
		h.Split = true
		if v >= 6 {
			h.StartPFN, h.EndPFN = le.Uint64(sb[offStartPFN64:]), le.Uint64(sb[offEndPFN64:])
		} else {
			h.StartPFN, h.EndPFN = le.Uint64(sb[offStartPFN:]), le.Uint64(sb[offEndPFN:])
		}
		if h.StartPFN > h.EndPFN || h.EndPFN > maxMapnr {
			return nil, fmt.Errorf("%w: split dump pfns %#x–%#x, max_mapnr %#x", ErrCorrupt, h.StartPFN, h.EndPFN, maxMapnr)
		}
	}
	if err := f.readNotes(sb); err != nil {
		return nil, err
	}
	if v >= 5 {
		h.EraseInfoOffset = int64(le.Uint64(sb[offOffsetEraseinfo:]))
		h.EraseInfoSize = int64(le.Uint64(sb[offSizeEraseinfo:]))
	}

	f.bm1.off, f.bm2.off = f.lay.bitmap1, f.lay.bitmap2
	if err := f.buildRank(); err != nil {
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
		return nil, fmt.Errorf("%w: %d page descriptors", ErrCorrupt, f.ndesc)
	}
	f.dataOff = f.lay.desc + int64(f.ndesc)*descSize
	f.descBuf = make([]byte, descCacheEntries*descSize)
	f.cbuf = make([]byte, bs)
	f.pbuf = make([]byte, bs)
	return f, nil
}

// readNotes reads the ELF notes and VMCOREINFO the sub-header points at.
func (f *File) readNotes(sb []byte) error {
	le := binary.LittleEndian
	h := &f.Header
	inFile := func(off, n uint64) bool { return off <= uint64(f.size) && n <= uint64(f.size)-off }
	var noteOff, noteSize uint64
	if h.HeaderVersion >= 4 {
		noteOff, noteSize = le.Uint64(sb[offOffsetNote:]), le.Uint64(sb[offSizeNote:])
	}
	if noteSize > 0 {
		if noteSize > MaxNoteSize || !inFile(noteOff, noteSize) {
			return fmt.Errorf("%w: notes at %#x+%#x (file %d bytes, limit %d)", ErrCorrupt, noteOff, noteSize, f.size, MaxNoteSize)
		}
		h.Notes = make([]byte, noteSize)
		if _, err := f.r.ReadAt(h.Notes, int64(noteOff)); err != nil {
			return fmt.Errorf("diskdump: read notes at %#x: %w", noteOff, err)
		}
		ns, err := vmcore.ParseNotes(h.Notes, binary.LittleEndian, f.Machine, int64(noteOff))
		if err != nil {
			return fmt.Errorf("%w: notes: %w", ErrCorrupt, err)
		}
		f.Notes, f.PRStatus, f.VMCOREINFO = ns.Notes, ns.PRStatus, ns.VMCOREINFO
	}
	if h.HeaderVersion < 3 {
		return nil
	}
	viOff, viSize := le.Uint64(sb[offOffsetVmcoreinfo:]), le.Uint64(sb[offSizeVmcoreinfo:])
	if viSize == 0 {
		return nil
	}
	if viSize > vmcoreinfo.MaxSize || !inFile(viOff, viSize) {
		return fmt.Errorf("%w: VMCOREINFO at %#x+%#x (file %d bytes)", ErrCorrupt, viOff, viSize, f.size)
	}
	h.VMCOREINFOSize = int64(viSize)
	if noteSize > 0 && viOff >= noteOff && viOff-noteOff <= noteSize && viSize <= noteSize-(viOff-noteOff) {
		h.VMCOREINFOOffset = int64(viOff - noteOff)
		if f.VMCOREINFO != nil {
			return nil
		}
	}
	// VMCOREINFO outside the notes (header version 3), or the notes'
	// own could not be found: parse what the sub-header points at.
	b := make([]byte, viSize)
	if _, err := f.r.ReadAt(b, int64(viOff)); err != nil {
		return fmt.Errorf("diskdump: read VMCOREINFO at %#x: %w", viOff, err)
	}
	info, err := vmcoreinfo.Parse(b)
	if err != nil {
		return fmt.Errorf("%w: VMCOREINFO at %#x: %w", ErrCorrupt, viOff, err)
	}
	f.VMCOREINFO = info
	return nil
}

// buildRank counts the set bits of each block of the 2nd bitmap.
func (f *File) buildRank() error {
	bs := f.lay.bs
	nblocks := f.lay.bitmapLen / bs
	f.rank = make([]uint64, nblocks+1)
	buf := make([]byte, min(f.lay.bitmapLen, 1<<20))
	var total uint64
	for blk := int64(0); blk < nblocks; {
		n := min(int64(len(buf))/bs, nblocks-blk)
		b := buf[:n*bs]
		off := f.lay.bitmap2 + blk*bs
		if _, err := f.r.ReadAt(b, off); err != nil {
			return fmt.Errorf("diskdump: read 2nd bitmap at %#x: %w", off, err)
		}
		for i := int64(0); i < n; i++ {
			f.rank[blk+i] = total
			total += popcount(b[i*bs : (i+1)*bs])
		}
		blk += n
	}
	f.rank[nblocks] = total
	return nil
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

// rankAt returns the number of dumped pfns below pfn (pfn ≤ max_mapnr).
// Callers hold f.mu, or call it before the File is shared.
func (f *File) rankAt(pfn uint64) (uint64, error) {
	blk := pfn / f.pfnsPer
	if blk >= uint64(len(f.rank)-1) {
		return f.rank[len(f.rank)-1], nil
	}
	r := f.rank[blk]
	i := pfn % f.pfnsPer
	if i == 0 {
		return r, nil
	}
	b, err := f.block(&f.bm2, blk)
	if err != nil {
		return 0, err
	}
	r += popcount(b[:i/8])
	if rem := i % 8; rem != 0 {
		r += uint64(bits.OnesCount8(b[i/8] & (1<<rem - 1)))
	}
	return r, nil
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
func (f *File) ReadPage(pfn uint64, buf []byte) error {
	if len(buf) < int(f.lay.bs) {
		return fmt.Errorf("diskdump: ReadPage buffer of %d bytes, page is %d", len(buf), f.lay.bs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readPage(pfn, buf[:f.lay.bs])
}

func (f *File) readPage(pfn uint64, buf []byte) error {
	idx, err := f.descIndex(pfn)
	if err != nil {
		return err
	}
	d, ok, err := f.desc(idx)
	if err != nil {
		return fmt.Errorf("diskdump: pfn %#x: %w", pfn, err)
	}
	descAt := f.lay.desc + int64(idx)*descSize
	missing := func(why string) error {
		if f.Incomplete() {
			clear(buf)
			return nil
		}
		return fmt.Errorf("%w: pfn %#x: descriptor at %#x: %s", ErrCorrupt, pfn, descAt, why)
	}
	if !ok {
		return missing("past end of file")
	}
	if d.Offset == 0 {
		// Never written: makedumpfile and our Writer leave descriptors
		// of pages lost to a full disk zero.
		return missing("no page data")
	}
	bs := uint32(f.lay.bs)
	if d.Size == 0 || d.Size > bs || (d.Flags == 0 && d.Size != bs) {
		return fmt.Errorf("%w: pfn %#x: descriptor at %#x: %d bytes, flags %#x, page size %d",
			ErrCorrupt, pfn, descAt, d.Size, d.Flags, bs)
	}
	if d.Offset < f.dataOff || d.Offset > f.size {
		if d.Offset >= f.dataOff {
			return missing(fmt.Sprintf("data at %#x past end of file", d.Offset))
		}
		return fmt.Errorf("%w: pfn %#x: descriptor at %#x: data offset %#x before the data area (%#x)",
			ErrCorrupt, pfn, descAt, d.Offset, f.dataOff)
	}
	if int64(d.Size) > f.size-d.Offset {
		return missing(fmt.Sprintf("data at %#x+%d past end of file", d.Offset, d.Size))
	}
	src := f.cbuf[:d.Size]
	if d.Flags == 0 {
		src = buf
	}
	if _, err := f.r.ReadAt(src, d.Offset); err != nil {
		return fmt.Errorf("diskdump: pfn %#x: read page data at %#x: %w", pfn, d.Offset, err)
	}
	if d.Flags == 0 {
		return nil
	}
	if err := f.dec.Decompress(buf, src, d.Flags); err != nil {
		return fmt.Errorf("diskdump: pfn %#x: page at %#x (%d bytes, descriptor at %#x): %w",
			pfn, d.Offset, d.Size, descAt, err)
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
			if err := f.readPage(pfn, p[done:done+n]); err != nil {
				return done, fmt.Errorf("diskdump: physical %#x: %w", a, err)
			}
		} else {
			if !f.pbufOK || f.pbufPFN != pfn {
				f.pbufOK = false
				if err := f.readPage(pfn, f.pbuf); err != nil {
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
// stops after yielding an error when a bitmap cannot be read.
func (f *File) DumpedPFNs() iter.Seq2[uint64, error] {
	return func(yield func(uint64, error) bool) {
		bs := f.lay.bs
		buf := make([]byte, bs)
		first, end := f.Header.StartPFN, min(f.Header.EndPFN, f.maxMapnr)
		for blk := first / f.pfnsPer; blk < uint64(len(f.rank)-1) && blk*f.pfnsPer < end; blk++ {
			if f.rank[blk+1] == f.rank[blk] {
				continue
			}
			off := f.lay.bitmap2 + int64(blk)*bs
			if _, err := f.r.ReadAt(buf, off); err != nil {
				yield(0, fmt.Errorf("diskdump: read 2nd bitmap at %#x: %w", off, err))
				return
			}
			base := blk * f.pfnsPer
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
