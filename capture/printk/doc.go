// Package printk reads the kernel log of a crashed kernel from its dump.
//
// The log lives in the dead kernel's memory, at kernel virtual addresses
// reached through kmem. Its layout is taken from VMCOREINFO alone (no
// vmlinux): kernels since 5.10 keep the lockless ring buffer named by
// SYMBOL(prb) (struct printk_ringbuffer, prb_desc_ring, prb_desc,
// printk_info, prb_data_ring), kernels 3.5 to 5.9 the log_buf array of
// variable-length struct printk_log records (struct log before 3.11).
// Kernels before 3.5 kept plain text and are not supported.
//
// A dump is taken after the kernel died, possibly in the middle of a
// printk. Records a writer had reserved but not committed, descriptors
// whose id or data block do not match, and lengths that point outside the
// buffers are skipped and counted in Log.Skipped; each byte of the text
// ring goes to one record at most, so overlapping blocks cannot multiply
// the text. Every loop and allocation is bounded by the kernel's own
// limits (2^26 descriptors, 1 KiB of text per record) and by fixed ones
// (MaxLogMemory, a million descriptors visited): on any input the read
// takes a second or so and tens of MiB, keeping the newest records of a
// log larger than that and counting the rest in Log.Dropped. A log whose
// records all fail their checks is an error (*FormatError), as is a
// header no kernel writes.
//
// WriteDmesg prints the records the way makedumpfile --dump-dmesg does, so
// the output of both tools on the same dump can be compared byte for byte.
package printk
