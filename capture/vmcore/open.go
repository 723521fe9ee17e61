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

// Open opens an ELF vmcore file, such as /proc/vmcore, reading its data
// through a sliding mmap window where the system allows it and through
// pread otherwise.
func Open(path string) (*File, error) {
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
	if w, err := newWindowReader(fh, st.Size(), DefaultWindow); err == nil {
		r, c = w, w
	}
	f, err := NewFile(r, st.Size())
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.closer = c
	return f, nil
}
