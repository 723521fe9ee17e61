// Package blockdev finds the block device a dump goes to, by filesystem
// UUID or LABEL, by partition PARTUUID or PARTLABEL, or by path, the way
// fstab names devices — without blkid or udev, which the capture
// initramfs does not have.
//
// The probes read superblocks and partition tables through an io.ReaderAt
// and know nothing of the running machine: ext2/3/4, xfs, vfat and btrfs
// filesystems; GPT and MBR (DOS) partition tables. They report what
// blkid reports: the type name, the UUID spelled as blkid spells it
// (lowercase 8-4-4-4-12; vfat's serial as "ABCD-1234") and the label.
//
// Listing devices (/sys/class/block), opening them and waiting for one to
// appear is Linux-only.
package blockdev
