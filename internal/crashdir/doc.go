// Package crashdir lays out saved crash dumps on the target: one directory
// per crash under a base directory, named for the time of the crash,
// holding vmcore (written first as vmcore-incomplete and renamed only once
// it is complete and synced) and vmcore-dmesg.txt; or, on a raw block
// device, a flattened stream with the kernel log in a trailer at the end
// of the device.
//
// Dumps hold secrets and the target filesystem may hold anything: the
// base directory is reached by a walk of openat(2) calls with O_NOFOLLOW
// from a trusted root (the mount point), and every later operation is
// relative to the directory descriptors of that walk, so a symlink planted
// on the target, or swapped in while the capture runs, cannot redirect a
// write. Directories are created 0700 and files 0600, with O_EXCL.
//
// Scan reports the dumps of a base directory with their state (complete,
// incomplete, in progress); Prune applies the retention count and only
// ever removes directories that are recognisably ours.
package crashdir
