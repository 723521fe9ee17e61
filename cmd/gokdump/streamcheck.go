package main

import (
	"bytes"
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

// kdumpGaps says what parts of a rebuilt kdump-compressed file f
// the stream's records, cov, did not write: the header and
// sub-header, VMCOREINFO and the notes, the bitmap bytes of every dumped
// page, the page descriptors and every page's data; and whether the page
// data starts and ends where the 2nd bitmap says, which a lost bitmap
// block would change. "" means nothing is missing.
//
// Bitmap bytes of memory holes are not checked: the writers leave them
// unwritten, and they read as "no RAM" either way.
func kdumpGaps(f *diskdump.File, cov *extents) (string, error) {
	l := f.Layout()
	bitmap1, bitmap2 := l.Bitmap1.Off, l.Bitmap2.Off

	var g gapList
	g.need(cov, "the header", l.Header.Off, l.Header.Len)
	g.need(cov, "the sub-header", l.SubHeader.Off, l.SubHeader.Len)
	g.need(cov, "VMCOREINFO", l.VMCOREINFO.Off, l.VMCOREINFO.Len)
	g.need(cov, "the ELF notes", l.Notes.Off, l.Notes.Len)
	g.need(cov, "the page descriptors", l.Descs.Off, l.Descs.Len)

	// The writers leave bitmap bytes of zeros unwritten (holes read as
	// zeros), so what must be there is the byte holding each dumped
	// page's bits.
	lastByte := uint64(math.MaxUint64)
	var pages, lost uint64
	minData, maxData := int64(math.MaxInt64), int64(0)
	for pfn, err := range f.DumpedPFNs() {
		if err != nil {
			return "", err
		}
		if by := pfn / 8; by != lastByte {
			lastByte = by
			g.need(cov, fmt.Sprintf("the 1st bitmap's bits of pfn %#x", pfn), bitmap1+int64(by), 1)
			g.need(cov, fmt.Sprintf("the 2nd bitmap's bits of pfn %#x", pfn), bitmap2+int64(by), 1)
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
	if want := l.Descs.End(); pages > lost && !f.Header.Split && minData != want && minData != want+l.BlockSize {
		g.add(fmt.Sprintf("the 2nd bitmap counts %d pages, but their data begins at %#x, not at %#x after their descriptors", pages, minData, want))
	}
	// Nothing was written past the last page's data but makedumpfile's
	// erase info: more means pages the bitmaps no longer count.
	end := max(maxData, l.Descs.End()+l.BlockSize)
	if l.EraseInfo.Len > 0 {
		end = max(end, l.EraseInfo.End())
	}
	if n := len(cov.r); n > 0 && cov.r[n-1].end > end {
		g.add(fmt.Sprintf("records reach %#x, past the data of the %d pages the 2nd bitmap counts (up to %#x)", cov.r[n-1].end, pages, end))
	}
	return g.String(), nil
}

// elfGaps says what parts of a rebuilt ELF dump the stream's records did
// not write: the ELF header and the program headers. Page data is not
// checked: the ELF writer leaves zero pages as holes.
func elfGaps(f *vmcore.File, cov *extents) string {
	var g gapList
	g.need(cov, "the ELF header", 0, 64)
	g.need(cov, "the program headers", f.PhOff, int64(f.PhNum)*56)
	return g.String()
}

// markIncomplete sets the incomplete flag of a rebuilt dump in its file
// f: kdump's status bit, or ELF's e_flags bit, as makedumpfile does for a
// dump it could not finish.
func markIncomplete(d *anydump.Dump, f *os.File) error {
	var err error
	switch {
	case d.KdumpFile != nil:
		err = diskdump.MarkIncomplete(f)
	case d.ELF != nil:
		err = vmcore.MarkIncomplete(f, d.ELF.ByteOrder)
	default:
		return nil
	}
	if err != nil {
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
