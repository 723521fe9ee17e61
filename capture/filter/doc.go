// Package filter decides which pages of a crashed kernel's memory a dump
// may leave out, the way makedumpfile's dump levels (-d) do: page cache,
// user process data, free pages, and always hardware-poisoned and
// logically offline pages. Zero pages (level bit 1) are the caller's: they
// are found by content, not by struct page.
//
// The decision is made from each page frame's struct page, found through
// VMCOREINFO alone (SPARSEMEM's mem_section table and the vmemmap array,
// read through the dead kernel's page tables with package kmem). No vmlinux
// or debug information is needed. Every layout difference between kernel
// versions (page-type encodings, where a compound page keeps its order, how
// slab and hugetlb pages are marked) is chosen by which VMCOREINFO entries
// exist, never by the release string.
//
// The rules and their order follow makedumpfile's
// __exclude_unnecessary_pages(), which decides the class a page is counted
// in: a compound page's tail pages are skipped and its head decides for all
// of it; then free (buddy) pages, page cache without and with private data,
// user data (anonymous and hugetlb pages), hardware-poisoned pages, offline
// pages.
//
// Classification is conservative: a page whose struct page cannot be read
// or holds values that make no sense (an order too large, a misaligned
// head, a section without a mem_map) is kept. When VMCOREINFO lacks what a
// class needs, that class is switched off and Degraded says why.
//
// Classify works on consecutive chunks of page frames with memory bounded
// by one window of struct pages (2 MiB on x86_64), whatever the machine's
// size; a free block or compound page that runs past the end of a chunk is
// carried into the next call.
package filter
