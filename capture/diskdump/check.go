package diskdump

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/gokdump/gokdump/capture/codec"
)

// checkChunk is how many descriptors Check reads at once.
const checkChunk = 4096

// Check tests, without reading page data, that the file holds what its
// headers promise: that the page descriptor table lies inside the file,
// that each descriptor was written and names data inside the file's data
// area, and, for a file whose holes the system reports (SEEK_HOLE), that
// no compressed page's data falls in a hole — what a flattened stream that
// lost records leaves. It reads 24 bytes per dumped page. It returns nil or a
// *Damage (wrapping ErrTruncated) counting the pages that cannot be read;
// other errors are I/O errors.
//
// An incomplete dump (Incomplete) was cut short by its writer, which says
// so: its unwritten descriptors are damage all the same.
func (f *File) Check() error {
	d := &Damage{Pages: f.ndesc, Size: f.size}
	// Descriptors past the end of the file.
	inFile := f.ndesc
	if f.dataOff > f.size {
		inFile = uint64(max(f.size-f.lay.desc, 0)) / descSize
		d.End = f.dataOff
	}
	hs, _ := holes(f.r, f.dataOff, f.size)
	var firstBad uint64 = ^uint64(0) // descriptor index of the first damage
	mark := func(idx uint64) {
		firstBad = min(firstBad, idx)
	}
	buf := make([]byte, min(inFile, checkChunk)*descSize)
	bs := uint32(f.lay.bs)
	for first := uint64(0); first < inFile; first += checkChunk {
		n := min(checkChunk, inFile-first)
		off := f.lay.desc + int64(first)*descSize
		if _, err := f.r.ReadAt(buf[:n*descSize], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("diskdump: read page descriptors at %#x: %w", off, err)
		}
		for i := uint64(0); i < n; i++ {
			pd := getDesc(buf[i*descSize:])
			switch {
			case pd == PageDesc{}:
				d.Unwritten++
			case pd.Offset < f.dataOff || pd.Size == 0 || pd.Size > bs || (pd.Flags == 0 && pd.Size != bs) ||
				!validFlags(pd.Flags):
				d.Bad++
			case pd.Offset > f.size || int64(pd.Size) > f.size-pd.Offset:
				d.Beyond++
				d.End = max(d.End, pd.Offset+int64(pd.Size))
			case pd.Flags != 0 && inHoles(hs, pd.Offset, pd.Offset+int64(pd.Size)):
				// Compressed data is never zeros. A raw page in a hole
				// may be a zero page a sparse copy (cp --sparse) made
				// a hole of.
				d.InHoles++
			default:
				continue
			}
			mark(first + i)
		}
	}
	if beyond := f.ndesc - inFile; beyond > 0 {
		d.Beyond += beyond
		mark(inFile)
	}
	if d.Missing() == 0 {
		return nil
	}
	pfn, err := f.pfnOfDesc(firstBad)
	if err != nil {
		return err
	}
	d.FirstPFN = pfn
	return d
}

func validFlags(fl uint32) bool {
	_, err := codec.FromFlags(fl)
	return err == nil
}

// inHoles reports whether [a, b) meets one of the sorted holes hs.
func inHoles(hs []extent, a, b int64) bool {
	i := sort.Search(len(hs), func(i int) bool { return hs[i].end > a })
	return i < len(hs) && hs[i].off < b
}

// pfnOfDesc returns the pfn whose descriptor is number idx of this file.
func (f *File) pfnOfDesc(idx uint64) (uint64, error) {
	want := f.descBase + idx // bits set before the pfn
	i := sort.Search(len(f.index), func(i int) bool { return f.index[i].before > want }) - 1
	if i < 0 {
		return 0, fmt.Errorf("diskdump: no pfn for descriptor %d", idx)
	}
	e := f.index[i]
	f.mu.Lock()
	b, err := f.block(&f.bm2, e.blk)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	left := want - e.before
	for j := range uint64(len(b)) * 8 {
		if b[j/8]&(1<<(j%8)) != 0 {
			if left == 0 {
				return e.blk*f.pfnsPer + j, nil
			}
			left--
		}
	}
	return 0, fmt.Errorf("diskdump: no pfn for descriptor %d", idx)
}

// Verify reads and decompresses every page the file holds and returns
// the first that fails as a *PageError naming its pfn, the offset of its
// data (or descriptor) and why; nil when all read. Unlike ReadPage it
// refuses the missing pages of an incomplete dump.
func (f *File) Verify() error {
	buf := make([]byte, f.lay.bs)
	for pfn, err := range f.DumpedPFNs() {
		if err != nil {
			return err
		}
		f.mu.Lock()
		err := f.readPage(pfn, buf, true)
		f.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
