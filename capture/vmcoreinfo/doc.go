// Package vmcoreinfo parses the VMCOREINFO note a Linux kernel leaves for
// its crash dump: KEY=VALUE lines that describe the dead kernel's layout
// (symbol addresses, structure sizes and member offsets, constants) so that
// tools can read its memory without debug symbols.
//
// The kernel writes these lines in kernel/crash_core.c and the
// arch_crash_save_vmcoreinfo() of each architecture. Values are hexadecimal
// for SYMBOL, KERNELOFFSET and NUMBER(phys_base)-style addresses the kernel
// prints with %lx, and decimal for SIZE, OFFSET, LENGTH, NUMBER, PAGESIZE and
// CRASHTIME. Accessors return ok=false when a key is absent or malformed, so
// callers can fall back rather than guess.
package vmcoreinfo
