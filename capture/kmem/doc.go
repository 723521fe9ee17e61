// Package kmem reads a crashed kernel's virtual memory from its dump.
//
// A dump holds physical memory; the structures a dump tool needs (the
// printk ring buffer, the struct page array in vmemmap) sit at kernel
// virtual addresses. Memory translates them by walking the dead kernel's
// own page tables, found through VMCOREINFO alone: no vmlinux or debug
// information is needed.
//
// The machine is a parameter taken from the dump, never from the host.
// x86_64 (4- and 5-level paging) is supported; other machines return
// ErrUnsupported.
package kmem
