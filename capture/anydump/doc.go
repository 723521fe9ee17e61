// Package anydump opens a saved crash dump whatever its format — an ELF
// vmcore (a copy of /proc/vmcore, or gokdump's or makedumpfile's ELF
// output) or a kdump-compressed file (gokdump's or makedumpfile's) — and
// presents what every reader of it needs: the machine, VMCOREINFO, the
// per-CPU notes and physical memory.
package anydump
