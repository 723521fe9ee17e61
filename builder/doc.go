// Package builder packs the initramfs that the kdump capture kernel boots:
// the capture init as /init, the few directories and device nodes it needs
// before it has mounted anything, its configuration, and the kernel modules
// the capture kernel lacks to reach the dump target, and the user's hooks
// (Options.Hooks: static executables only, checked when the image is
// built, packed 0700).
//
// The archive is a newc cpio, the format the kernel unpacks into rootfs,
// compressed with zstd or gzip (the kernel must have been built with
// CONFIG_RD_ZSTD or CONFIG_RD_GZIP) or left as is. It is bit-reproducible:
// the same inputs give the same bytes, because entries are sorted, inode
// numbers are assigned in that order, times and owners are zero, and the
// compressors run single-threaded.
//
// ResolveModules reads a /lib/modules/KVER tree (modules.dep,
// modules.builtin, modules.softdep, modules.alias) and computes which module
// files to pack and in which order the init must load them; it only reads
// that directory, so it works on a tree unpacked from a package for a kernel
// that is not running. A tree depmod never ran on (dpkg -x) is read through
// each module's .modinfo section instead.
//
// Which modules to ask for is the caller's choice: DetectDrivers walks
// sysfs from the dump target's block device to the drivers bound on the way
// (host-only images), GenericModules is a broad set for images built
// elsewhere, and FilesystemModules names the filesystem's.
//
// A Sysroot reads an image tree (--sysroot) as if it were "/": its links
// resolve inside it (openat2 RESOLVE_IN_ROOT on Linux), so an image for
// another system is built from that system's files only, never the
// host's. FindKernel knows where distributions put a kernel release's
// image and modules (/boot/vmlinuz-KVER or /usr/lib/modules/KVER/vmlinuz,
// /lib/modules/KVER or /usr/lib/modules/KVER) and where its capture
// initramfs goes; it reads the host and image trees alike.
//
// Plan.WriteTo writes the archive; Plan.WriteDir and Plan.WriteDirList
// write it as a directory tree and a gen_init_cpio list, for kernels that
// embed the initramfs (CONFIG_INITRAMFS_SOURCE).
package builder
