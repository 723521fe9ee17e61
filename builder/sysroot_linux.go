package builder

import (
	"errors"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// openNonblock keeps an open of a FIFO from waiting for a writer.
const openNonblock = unix.O_NONBLOCK

// maxOpenRetries bounds the retries of an openat2 the kernel could not
// prove safe because the tree changed meanwhile (EAGAIN).
const maxOpenRetries = 16

func (s *Sysroot) openDirfd() error {
	fd, err := unix.Open(s.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: s.dir, Err: err}
	}
	s.dirfd = fd
	return nil
}

func (s *Sysroot) closeDirfd() {
	if s.dirfd >= 0 {
		unix.Close(s.dirfd)
		s.dirfd = -1
	}
}

// openat2 opens name with the kernel resolving it inside the tree. It
// returns an error wrapping errors.ErrUnsupported if the kernel has no
// openat2.
func (s *Sysroot) openat2(name string) (*os.File, error) {
	rel := path.Clean("/" + name)[1:]
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range maxOpenRetries {
		fd, err := unix.Openat2(s.dirfd, rel, &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), s.display(name)), nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM) && s.openat2Refused():
			return nil, errors.ErrUnsupported
		}
		return nil, &fs.PathError{Op: "open", Path: s.display(name), Err: err}
	}
	return nil, &fs.PathError{Op: "open", Path: s.display(name), Err: unix.EAGAIN}
}

// openat2Refused tells a seccomp filter that refuses openat2 (old
// container runtimes answer EPERM) from a file that may not be opened:
// the tree's root itself opens unless openat2 is refused.
func (s *Sysroot) openat2Refused() bool {
	fd, err := unix.Openat2(s.dirfd, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err == nil {
		unix.Close(fd)
		return false
	}
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS)
}
