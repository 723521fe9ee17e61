// Package kmem reads a crashed kernel's virtual memory from its dump.
//
// A dump holds physical memory; the structures a dump tool needs (the
// printk ring buffer, the struct page array in vmemmap) sit at kernel
// virtual addresses. Memory translates them by walking the dead kernel's
// own page tables, found through VMCOREINFO alone: no vmlinux or debug
// information is needed.
//
// The machine is a parameter taken from the dump, never from the host.
// x86_64 (4- and 5-level paging) and arm64 (4, 16 and 64 KiB pages, 39- to
// 52-bit virtual addresses, LPA and LPA2 physical addresses) are
// supported; other machines return ErrUnsupported. Big-endian arm64 kernels
// are not.
package kmem
