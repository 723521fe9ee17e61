// Package qemutests crashes real Debian kernels in QEMU and checks from the
// host what gokdump's capture kernel saved.
//
// Each test boots a Debian cloud kernel (fetched with scripts/fetch-kernel)
// under TCG with a first-stage init (./stage1) that loads the capture
// kernel and gokdump's initramfs with gokdump's own loader, fills memory
// with markers and panics the kernel with sysrq c. The capture kernel runs
// gokdump's /init, which writes the dump to an ext4 disk image; the test
// reads the image back with debugfs (no root needed) and checks the dump.
//
// The tests need qemu-system-x86_64, e2fsprogs, apt-get and dpkg; they are
// skipped with -short.
package qemutests
