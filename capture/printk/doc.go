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
// buffers are skipped and counted in Log.Skipped; every loop is bounded by
// the ring's size and every allocation by a fixed limit, so a corrupt ring
// yields fewer records, never a hang or a panic.
//
// WriteDmesg prints the records the way makedumpfile --dump-dmesg does, so
// the output of both tools on the same dump can be compared byte for byte.
package printk
