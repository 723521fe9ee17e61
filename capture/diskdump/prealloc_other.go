//go:build !linux

package diskdump

import (
	"io"
	"os"
)

// preallocate reserves [off, off+size) of out: through out's Preallocate
// method, or by writing zeros to a file.
func preallocate(out io.WriterAt, off, size int64) error {
	if size <= 0 {
		return nil
	}
	switch o := out.(type) {
	case Preallocator:
		return o.Preallocate(off, size)
	case *os.File:
		return writeZeros(o, off, size)
	}
	return nil
}
