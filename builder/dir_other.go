//go:build !linux

package builder

import "errors"

// mknodChar makes a character device node; only on Linux.
func mknodChar(path string, perm, major, minor uint32) error {
	return errors.ErrUnsupported
}
