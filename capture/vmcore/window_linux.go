package vmcore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// windowReader is an io.ReaderAt over a file mapped one window at a time.
// Mapping all of /proc/vmcore at once would cost page tables in proportion
// to the dead machine's RAM, which the capture kernel does not have.
//
// Windows are aligned to the window size and counted: ReadAt and views take
// a reference while they use one, so that several goroutines read at once
// and a window is unmapped only when nobody uses it. Up to keepWindows
// unused windows stay mapped for the next reads.
type windowReader struct {
	f       *os.File
	size    int64
	winSize int64

	mu    sync.Mutex
	wins  []*window // mapped windows; the least recently used idle one goes first
	clock uint64
}

// keepWindows is how many unreferenced windows stay mapped: reads in
// increasing order need one, and the filter's struct pages live in another.
const keepWindows = 2

// window is one mapping of [off, off+len(b)).
type window struct {
	b    []byte
	off  int64
	refs int
	used uint64
}

func newWindowReader(f *os.File, size, winSize int64) (*windowReader, error) {
	pg := int64(os.Getpagesize())
	winSize = max(pg, (winSize+pg-1)&^(pg-1))
	w := &windowReader{f: f, size: size, winSize: winSize}
	// Map once to learn whether this file can be mapped at all.
	if size > 0 {
		win, err := w.acquire(0)
		if err != nil {
			return nil, err
		}
		w.release(win)
	}
	return w, nil
}

// acquire returns the window holding off, mapped and referenced. off must
// be in [0, size).
func (w *windowReader) acquire(off int64) (*window, error) {
	start := off - off%w.winSize
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock++
	for _, win := range w.wins {
		if win.off == start {
			win.refs++
			win.used = w.clock
			return win, nil
		}
	}
	w.evict(keepWindows - 1)
	n := min(w.winSize, w.size-start)
	b, err := unix.Mmap(int(w.f.Fd()), start, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("vmcore: mmap %#x+%#x: %w", start, n, err)
	}
	// Sequential reads: ask for read-ahead, a hint only.
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	win := &window{b: b, off: start, refs: 1, used: w.clock}
	w.wins = append(w.wins, win)
	return win, nil
}

// evict unmaps the least recently used unreferenced windows until at most
// keep of them are left. w.mu is held.
func (w *windowReader) evict(keep int) {
	for {
		idle, lru := 0, -1
		for i, win := range w.wins {
			if win.refs == 0 {
				idle++
				if lru < 0 || win.used < w.wins[lru].used {
					lru = i
				}
			}
		}
		if idle <= keep {
			return
		}
		unix.Munmap(w.wins[lru].b)
		w.wins = append(w.wins[:lru], w.wins[lru+1:]...)
	}
}

func (w *windowReader) release(win *window) {
	w.mu.Lock()
	win.refs--
	w.evict(keepWindows)
	w.mu.Unlock()
}

// ErrFault is returned when touching mapped data faults (the file shrank,
// or the old kernel's memory cannot be read).
var ErrFault = errors.New("vmcore: memory fault reading mapped data")

func (w *windowReader) ReadAt(p []byte, off int64) (n int, err error) {
	if off < 0 {
		return 0, fmt.Errorf("vmcore: negative offset %d", off)
	}
	if off >= w.size {
		return 0, io.EOF
	}
	for n < len(p) {
		o := off + int64(n)
		if o >= w.size {
			return n, io.EOF
		}
		win, err := w.acquire(o)
		if err != nil {
			// Fall back to pread for this read.
			m, rerr := w.f.ReadAt(p[n:], o)
			return n + m, rerr
		}
		m, err := copyGuarded(p[n:], win.b[o-win.off:])
		w.release(win)
		n += m
		if err != nil {
			return n, fmt.Errorf("%w at %#x: %v", ErrFault, off+int64(n), err)
		}
	}
	return n, nil
}

// copyGuarded copies like copy, turning a fault on the mapped source into
// an error rather than a crash.
func copyGuarded(dst, src []byte) (n int, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	return copy(dst, src), nil
}

// view lends [off, off+n) of the file when one window holds it all.
func (w *windowReader) view(off int64, n int) ([]byte, *window, bool) {
	if off < 0 || n < 0 || off >= w.size || int64(n) > w.size-off || off%w.winSize+int64(n) > w.winSize {
		return nil, nil, false
	}
	win, err := w.acquire(off)
	if err != nil {
		return nil, nil, false
	}
	i := off - win.off
	return win.b[i : i+int64(n) : i+int64(n)], win, true
}

// viewable returns how many bytes from off one view can lend.
func (w *windowReader) viewable(off int64) int64 {
	if off < 0 || off >= w.size {
		return 0
	}
	return min(w.winSize-off%w.winSize, w.size-off)
}

func (w *windowReader) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, win := range w.wins {
		// A window still lent out would fault on use: it is the caller's
		// bug to close first, and the fault handlers turn it into errors.
		unix.Munmap(win.b)
	}
	w.wins = nil
	return w.f.Close()
}

// isProcFile reports whether path is on procfs, as /proc/vmcore is.
func isProcFile(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

// holeReader reads a regular file with pread, except where the file has
// a hole: that reads as zeros without a system call. Saved vmcores are
// often sparse (zero pages are left as holes), and reading a hole through
// the page cache costs as much as reading data, or more: it fills the
// cache with zero pages.
type holeReader struct {
	f    *os.File
	size int64
	// The extent found last, immutable once published: reads inside a
	// known extent need no lseek.
	last atomic.Pointer[extent]
}

// extent is [start, end) of f, all data or all hole.
type extent struct {
	start, end int64
	hole       bool
}

// newHoleReader returns f as a holeReader when its filesystem answers
// SEEK_DATA, else nil.
func newHoleReader(f *os.File, size int64) *holeReader {
	if size <= 0 {
		return nil
	}
	if _, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA); err != nil && !errors.Is(err, unix.ENXIO) {
		return nil
	}
	return &holeReader{f: f, size: size}
}

// extentAt returns the extent holding off, 0 ≤ off < size.
func (h *holeReader) extentAt(off int64) (extent, error) {
	if e := h.last.Load(); e != nil && e.start <= off && off < e.end {
		return *e, nil
	}
	fd := int(h.f.Fd())
	e := extent{start: off}
	d, err := unix.Seek(fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		e.end, e.hole = h.size, true // a hole to the end of the file
	case err != nil:
		return extent{}, err
	case d > off:
		e.end, e.hole = d, true
	default:
		end, err := unix.Seek(fd, off, unix.SEEK_HOLE)
		if err != nil {
			return extent{}, err
		}
		e.end = end
	}
	if e.end <= off {
		// Not what lseek promises; read the file rather than trust it.
		e.end, e.hole = off+1, false
	}
	e.end = min(e.end, h.size)
	h.last.Store(&e)
	return e, nil
}

func (h *holeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vmcore: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		o := off + int64(n)
		if o >= h.size {
			return n, io.EOF
		}
		e, err := h.extentAt(o)
		if err != nil {
			// lseek failed: plain reads from here.
			m, err := h.f.ReadAt(p[n:], o)
			return n + m, err
		}
		k := int(min(int64(len(p)-n), e.end-o))
		if e.hole {
			clear(p[n : n+k])
			n += k
			continue
		}
		m, err := h.f.ReadAt(p[n:n+k], o)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (h *holeReader) Close() error { return h.f.Close() }
