package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/blockdev"
)

// Fields of makedumpfile's struct disk_dump_header and kdump_sub_header
// (LP64) that capture/diskdump reads but does not export: where the
// bitmaps end, where the notes are, and the status word. diskdump.Open has
// checked them against the file by the time they are read here.
const (
	kdumpHeaderSize      = 464
	kdumpSubHeaderSize   = 104
	kdumpDescSize        = 24
	kdumpStatusOff       = 424
	kdumpSubHdrSizeOff   = 432
	kdumpBitmapBlocksOff = 436
	subVmcoreinfoOff     = 32 // offset_vmcoreinfo, size_vmcoreinfo (header version 3 on)
	subNoteOff           = 48 // offset_note, size_note (header version 4 on)

	elfFlagsOff = 48 // e_flags in an ELF64 header
	elfPhoffOff = 32 // e_phoff
	elfPhnumOff = 56 // e_phnum
)

// gapList collects what a rebuilt file lacks, the first few in detail.
type gapList struct {
	first []string
	more  int
}

func (g *gapList) need(cov *extents, what string, off, n int64) {
	m := cov.missing(off, n)
	if m == 0 {
		return
	}
	if len(g.first) < 4 {
		g.first = append(g.first, fmt.Sprintf("%s (%d of %d bytes at %#x)", what, m, n, off))
	} else {
		g.more++
	}
}

func (g *gapList) add(s string) { g.first = append(g.first, s) }

func (g *gapList) String() string {
	s := strings.Join(g.first, "; ")
	if g.more > 0 {
		s += fmt.Sprintf("; and %d more ranges", g.more)
	}
	return s
}

// kdumpGaps says what parts of a rebuilt kdump-compressed file f (read
// through r) the stream's records, cov, did not write: the header and
// sub-header, VMCOREINFO and the notes, the bitmap blocks of every dumped
// page, the page descriptors and every page's data; and whether the page
// data starts and ends where the 2nd bitmap says, which a lost bitmap
// block would change. "" means nothing is missing.
//
// Bitmap blocks of memory holes are not checked: the writers leave them
// unwritten, and they read as "no RAM" either way.
func kdumpGaps(f *diskdump.File, r io.ReaderAt, cov *extents) (string, error) {
	le := binary.LittleEndian
	hb := make([]byte, kdumpHeaderSize)
	if _, err := r.ReadAt(hb, 0); err != nil {
		return "", fmt.Errorf("read the header: %w", err)
	}
	bs := int64(f.Header.BlockSize)
	sb := make([]byte, kdumpSubHeaderSize)
	if _, err := r.ReadAt(sb, bs); err != nil {
		return "", fmt.Errorf("read the sub-header: %w", err)
	}
	bitmap1 := (1 + int64(int32(le.Uint32(hb[kdumpSubHdrSizeOff:])))) * bs
	bitmapLen := int64(le.Uint32(hb[kdumpBitmapBlocksOff:])) / 2 * bs
	bitmap2 := bitmap1 + bitmapLen
	desc := bitmap2 + bitmapLen

	var g gapList
	g.need(cov, "the header", 0, kdumpHeaderSize)
	g.need(cov, "the sub-header", bs, kdumpSubHeaderSize)
	if v := f.Header.HeaderVersion; v >= 3 {
		g.need(cov, "VMCOREINFO", int64(le.Uint64(sb[subVmcoreinfoOff:])), int64(le.Uint64(sb[subVmcoreinfoOff+8:])))
		if v >= 4 {
			g.need(cov, "the ELF notes", int64(le.Uint64(sb[subNoteOff:])), int64(le.Uint64(sb[subNoteOff+8:])))
		}
	}
	ndesc := int64(f.NumDumped())
	g.need(cov, "the page descriptors", desc, ndesc*kdumpDescSize)

	pfnsPer := uint64(bs) * 8
	lastBlk := uint64(math.MaxUint64)
	var pages, lost uint64
	minData, maxData := int64(math.MaxInt64), int64(0)
	for pfn, err := range f.DumpedPFNs() {
		if err != nil {
			return "", err
		}
		if blk := pfn / pfnsPer; blk != lastBlk {
			lastBlk = blk
			g.need(cov, fmt.Sprintf("block %d of the 1st bitmap", blk), bitmap1+int64(blk)*bs, bs)
			g.need(cov, fmt.Sprintf("block %d of the 2nd bitmap", blk), bitmap2+int64(blk)*bs, bs)
		}
		pages++
		pd, ok, err := f.PageDesc(pfn)
		if err != nil {
			return "", err
		}
		if !ok || pd.Size == 0 || pd.Offset < 0 || cov.missing(pd.Offset, int64(pd.Size)) > 0 {
			lost++
			continue
		}
		minData = min(minData, pd.Offset)
		maxData = max(maxData, pd.Offset+int64(pd.Size))
	}
	if lost > 0 {
		g.add(fmt.Sprintf("the data of %d of %d pages", lost, pages))
	}
	// The data begins right after the descriptors, with the zero page
	// the writers put first when zero pages are excluded (used or not).
	if want := desc + ndesc*kdumpDescSize; pages > lost && !f.Header.Split && minData != want && minData != want+bs {
		g.add(fmt.Sprintf("the 2nd bitmap counts %d pages, but their data begins at %#x, not at %#x after their descriptors", pages, minData, want))
	}
	// Nothing was written past the last page's data but makedumpfile's
	// erase info: more means pages the bitmaps no longer count.
	end := max(maxData, desc+ndesc*kdumpDescSize+bs)
	if h := f.Header; h.EraseInfoSize > 0 {
		end = max(end, h.EraseInfoOffset+h.EraseInfoSize)
	}
	if n := len(cov.r); n > 0 && cov.r[n-1].end > end {
		g.add(fmt.Sprintf("records reach %#x, past the data of the %d pages the 2nd bitmap counts (up to %#x)", cov.r[n-1].end, pages, end))
	}
	return g.String(), nil
}

// elfGaps says what parts of a rebuilt ELF dump the stream's records did
// not write: the ELF header and the program headers. Page data is not
// checked: the ELF writer leaves zero pages as holes.
func elfGaps(f *vmcore.File, r io.ReaderAt, cov *extents) (string, error) {
	var g gapList
	g.need(cov, "the ELF header", 0, 64)
	b := make([]byte, 64)
	if _, err := r.ReadAt(b, 0); err != nil {
		return "", fmt.Errorf("read the ELF header: %w", err)
	}
	if phnum := f.ByteOrder.Uint16(b[elfPhnumOff:]); phnum != 0xffff { // else extended numbering
		g.need(cov, "the program headers", int64(f.ByteOrder.Uint64(b[elfPhoffOff:])), int64(phnum)*56)
	}
	return g.String(), nil
}

// markIncomplete sets the incomplete flag of a rebuilt dump in its file
// f: kdump's status bit, or ELF's e_flags bit, as makedumpfile does for a
// dump it could not finish.
func markIncomplete(d *anydump.Dump, f *os.File) error {
	var (
		off int64
		bit uint32
		bo  binary.ByteOrder = binary.LittleEndian
	)
	switch {
	case d.KdumpFile != nil:
		off, bit = kdumpStatusOff, diskdump.StatusIncomplete
	case d.ELF != nil:
		off, bit, bo = elfFlagsOff, vmcore.FlagIncomplete, d.ELF.ByteOrder
	default:
		return nil
	}
	var b [4]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return fmt.Errorf("flag %s incomplete: %w", f.Name(), err)
	}
	bo.PutUint32(b[:], bo.Uint32(b[:])|bit)
	if _, err := f.WriteAt(b[:], off); err != nil {
		return fmt.Errorf("flag %s incomplete: %w", f.Name(), err)
	}
	return f.Sync()
}

// describeData says in a few words what a device or file of size bytes
// holds instead of a flattened stream; head is its first bytes.
func describeData(r io.ReaderAt, size int64, head []byte) string {
	if len(head) == 0 {
		return "nothing: it is empty"
	}
	what := ""
	switch {
	case bytes.HasPrefix(head, []byte("KDUMP   ")):
		what = "a kdump-compressed dump, already rebuilt: read it as it is (gokdump info)"
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		what = "an ELF file"
	case bytes.HasPrefix(head, []byte("LUKS\xba\xbe")):
		what = "a LUKS encrypted volume"
	case len(head) >= 4096 && (string(head[4086:]) == "SWAPSPACE2" || string(head[4086:]) == "SWAP-SPACE"):
		what = "a swap area"
	case len(head) >= 520 && string(head[512:520]) == "LABELONE":
		what = "an LVM physical volume"
	}
	if what == "" {
		fs, err := blockdev.Probe(r, size)
		switch {
		case err == nil:
			what = fs.FSType + " filesystem"
			if fs.Label != "" {
				what += fmt.Sprintf(" LABEL=%q", fs.Label)
			}
		case errors.Is(err, blockdev.ErrAmbivalent):
			what = err.Error()
		}
	}
	if what == "" {
		if t, err := blockdev.ReadPartitionTable(r, size, 0); err == nil {
			what = fmt.Sprintf("a %s partition table of %d partitions", t.Type, len(t.Partitions))
		}
	}
	if what == "" {
		if bytes.Count(head, []byte{0}) == len(head) {
			what = "zeros (as savecore --clear leaves a device, or one never written)"
		} else {
			what = fmt.Sprintf("unrecognised data beginning % x", head[:min(16, len(head))])
		}
	}
	if len(head) < 4096 {
		what += fmt.Sprintf("; %d bytes in all", len(head))
	}
	return what
}
