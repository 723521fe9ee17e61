// Package vmcore reads the memory of a crashed Linux kernel from an ELF core
// file: /proc/vmcore inside a capture kernel, or a copy of it saved anywhere.
//
// The file is described by its own ELF header: the machine, byte order and
// page size come from the dump, never from the machine running this code.
// PT_LOAD segments map ranges of the dead kernel's physical memory into the
// file (with holes where there was no RAM); the PT_NOTE segment carries one
// NT_PRSTATUS note per CPU and the VMCOREINFO note that describes the
// kernel's layout.
//
// Every count and size read from the file is bounded before it sizes an
// allocation, so a corrupt or hostile core yields an error naming what was
// wrong and where, never a huge allocation or a panic.
package vmcore
