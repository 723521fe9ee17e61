package diskdump

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves [off, off+size) of out: through out's Preallocate
// method, with fallocate(2) for a file, writing zeros where the file
// system cannot fallocate. Other outputs (a flattened stream) need no
// reservation.
func preallocate(out io.WriterAt, off, size int64) error {
	if size <= 0 {
		return nil
	}
	switch o := out.(type) {
	case Preallocator:
		return o.Preallocate(off, size)
	case *os.File:
		rc, err := o.SyscallConn()
		if err != nil {
			return err
		}
		var ferr error
		if err := rc.Control(func(fd uintptr) {
			for {
				ferr = unix.Fallocate(int(fd), 0, off, size)
				if ferr != unix.EINTR {
					return
				}
			}
		}); err != nil {
			return err
		}
		if errors.Is(ferr, unix.EOPNOTSUPP) || errors.Is(ferr, unix.ENOSYS) {
			return writeZeros(o, off, size)
		}
		return ferr
	}
	return nil
}
