package builder

import "golang.org/x/sys/unix"

// mknodChar makes a character device node.
func mknodChar(path string, perm, major, minor uint32) error {
	return unix.Mknod(path, unix.S_IFCHR|perm, int(unix.Mkdev(major, minor)))
}
