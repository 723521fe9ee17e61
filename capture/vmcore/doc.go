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
// Memory the headers place in the file that the file does not hold (a
// copy cut short, or pages a dump's GOKDUMP note lists: see NoteGokdump)
// is missing: File.Missing lists it and reads of it fail with ErrMissing,
// never returning zeros. Memory a PT_LOAD declares without file data
// (p_memsz > p_filesz) reads as a hole (ErrHole).
//
// Every count and size read from the file is bounded before it sizes an
// allocation, so a corrupt or hostile core yields an error naming what was
// wrong and where, never a huge allocation or a panic; a segment that
// wraps the address space is clipped (File.Warnings), and at most a few
// VMCOREINFO candidates are parsed in a block of notes.
package vmcore
