package vmcore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"

	"golang.org/x/sys/unix"
)

// windowReader is an io.ReaderAt over a file mapped one window at a time.
// Mapping all of /proc/vmcore at once would cost page tables in proportion
// to the dead machine's RAM, which the capture kernel does not have.
type windowReader struct {
	mu      sync.Mutex
	f       *os.File
	size    int64
	winSize int64
	win     []byte
	winOff  int64
}

func newWindowReader(f *os.File, size, winSize int64) (*windowReader, error) {
	pg := int64(os.Getpagesize())
	winSize = (winSize + pg - 1) &^ (pg - 1)
	w := &windowReader{f: f, size: size, winSize: winSize}
	// Map once to learn whether this file can be mapped at all.
	if size > 0 {
		if err := w.mapAt(0); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *windowReader) mapAt(off int64) error {
	if w.win != nil {
		unix.Munmap(w.win)
		w.win = nil
	}
	pg := int64(os.Getpagesize())
	start := off &^ (pg - 1)
	n := w.winSize
	if start+n > w.size {
		n = w.size - start
	}
	b, err := unix.Mmap(int(w.f.Fd()), start, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("vmcore: mmap %#x+%#x: %w", start, n, err)
	}
	// Sequential reads: ask for read-ahead, a hint only.
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	w.win, w.winOff = b, start
	return nil
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
	w.mu.Lock()
	defer w.mu.Unlock()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w at %#x: %v", ErrFault, off+int64(n), r)
		}
	}()
	for n < len(p) {
		o := off + int64(n)
		if o >= w.size {
			return n, io.EOF
		}
		if w.win == nil || o < w.winOff || o >= w.winOff+int64(len(w.win)) {
			if err := w.mapAt(o); err != nil {
				// Fall back to pread for this read.
				m, rerr := w.f.ReadAt(p[n:], o)
				return n + m, rerr
			}
		}
		n += copy(p[n:], w.win[o-w.winOff:])
	}
	return n, nil
}

func (w *windowReader) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.win != nil {
		unix.Munmap(w.win)
		w.win = nil
	}
	return w.f.Close()
}
