package vmcore

import (
	"fmt"
	"io"
	"os"
)

// DefaultWindow is the size of the mmap window Open uses. A window costs
// page-table memory only while mapped; a few MiB amortise the cost of
// remapping /proc/vmcore while keeping the capture kernel's footprint small.
const DefaultWindow = 8 << 20

// Open opens an ELF vmcore file. /proc/vmcore is read through sliding mmap
// windows, which there avoid a copy of the old kernel's memory page by page
// and let readers borrow pages with ViewPhys; a saved vmcore on a
// filesystem is read with pread, which on a file in the page cache is
// several times faster than taking page faults on a mapping, and its holes
// (a sparse copy's zero pages) read as zeros without reading the file.
func Open(path string) (*File, error) {
	return open(path, isProcFile(path))
}

// OpenMapped is Open reading through mmap windows whatever the file is;
// pread remains the fallback where the file cannot be mapped.
func OpenMapped(path string) (*File, error) {
	return open(path, true)
}

func open(path string, mapped bool) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vmcore: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("vmcore: %w", err)
	}
	var r io.ReaderAt = fh
	var c io.Closer = fh
	if mapped {
		if w, err := newWindowReader(fh, st.Size(), DefaultWindow); err == nil {
			r, c = w, w
		}
	} else if h := newHoleReader(fh, st.Size()); h != nil {
		r, c = h, h
	}
	f, err := NewFile(r, st.Size())
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.closer = c
	return f, nil
}

// View is part of a mapped vmcore lent without copying. Its bytes stay
// valid until Release; touching them can fault like any access to
// /proc/vmcore (run such code with debug.SetPanicOnFault).
type View struct {
	b   []byte
	w   *windowReader
	win *window
}

// Bytes returns the viewed memory.
func (v *View) Bytes() []byte { return v.b }

// Release returns the view; Bytes must not be used after it. Releasing a
// zero View, or one twice, does nothing.
func (v *View) Release() {
	if v.win != nil {
		v.w.release(v.win)
	}
	*v = View{}
}

// Viewable returns how many bytes of physical memory from addr ViewPhys
// can lend in one view: 0 when the file is not mapped or does not hold
// addr.
func (f *File) Viewable(addr uint64) uint64 {
	w, ok := f.r.(*windowReader)
	if !ok {
		return 0
	}
	off, n, ok := f.FileOffset(addr)
	if !ok {
		return 0
	}
	return min(n, uint64(w.viewable(off)))
}

// ViewPhys lends n bytes of physical memory at addr without copying. ok is
// false when the file is not mapped, or the range is not within what
// Viewable(addr) reports; read with ReadPhys then.
func (f *File) ViewPhys(addr uint64, n int) (v View, ok bool) {
	w, isWin := f.r.(*windowReader)
	if !isWin || n < 0 || uint64(n) > f.Viewable(addr) {
		return View{}, false
	}
	off, _, _ := f.FileOffset(addr)
	b, win, ok := w.view(off, n)
	if !ok {
		return View{}, false
	}
	return View{b: b, w: w, win: win}, true
}
