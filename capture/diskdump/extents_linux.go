package diskdump

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	seekData = unix.SEEK_DATA
	seekHole = unix.SEEK_HOLE
)

// fdFile is an *os.File, or a type that embeds one.
type fdFile interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
	SyscallConn() (syscall.RawConn, error)
}

// seeker returns a function that lseeks r's descriptor with whence
// SEEK_DATA or SEEK_HOLE, or nil when r is not a regular file. The
// function returns the offset found and true; false with offset -1 when
// the file system cannot tell, or with 0 when no data follows (ENXIO).
// Moving the descriptor's offset is harmless: reads use pread.
func seeker(r io.ReaderAt) func(off int64, whence int) (int64, bool) {
	f, ok := r.(fdFile)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	return func(off int64, whence int) (int64, bool) {
		var n int64
		var serr error
		if err := rc.Control(func(fd uintptr) { n, serr = unix.Seek(int(fd), off, whence) }); err != nil {
			return -1, false
		}
		switch {
		case serr == nil:
			return n, true
		case errors.Is(serr, unix.ENXIO):
			return 0, false
		}
		return -1, false
	}
}
