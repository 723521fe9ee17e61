package diskdump

import (
	"fmt"
	"io"
)

// writeZeros fills [off, off+size) of out with zeros, for file systems
// that cannot reserve space otherwise.
func writeZeros(out io.WriterAt, off, size int64) error {
	zero := make([]byte, min(size, 1<<20))
	for size > 0 {
		n := min(size, int64(len(zero)))
		if _, err := out.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("write zeros at %#x: %w", off, err)
		}
		off += n
		size -= n
	}
	return nil
}

// Preallocate reserves [off, off+size) of out as the Writer does before
// the first page: for wrappers of an output that implement Preallocator by
// passing it on.
func Preallocate(out io.WriterAt, off, size int64) error { return preallocate(out, off, size) }
