//go:build !linux

package builder

import (
	"errors"
	"os"
)

// openNonblock would keep an open of a FIFO from waiting for a writer;
// the flag is Linux's.
const openNonblock = 0

func (s *Sysroot) openDirfd() error { return nil }
func (s *Sysroot) closeDirfd()      {}

// openat2 is Linux's: elsewhere the tree is read through os.Root.
func (s *Sysroot) openat2(string) (*os.File, error) { return nil, errors.ErrUnsupported }
