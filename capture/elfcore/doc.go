// Package elfcore writes a filtered ELF vmcore: a copy of a crashed
// kernel's memory, in the layout of the kernel's own /proc/vmcore, with the
// pages a filter dropped left out of the file.
//
// The output is what crash, drgn and makedumpfile expect of an ELF dump:
// an ELF64 core with the program headers right after the ELF header, no
// section headers (except one for PN_XNUM when there are 65535 or more
// program headers), one PT_NOTE holding the source's notes verbatim, and
// PT_LOADs carrying the kernel virtual addresses of the source's PT_LOADs.
// Dropped pages are left out of the PT_LOADs altogether: a run in the
// middle of a source PT_LOAD splits it, and no output segment has
// p_filesz < p_memsz. makedumpfile reads the memory between the two from
// the file all the same: the next segment's data, or SIGBUS past the end
// of the file. Readers find dropped pages absent from the dump, as they do
// in a kdump-compressed file.
//
// Splitting costs a program header per run, so only runs of at least
// Options.MinExcludedRun pages are split out (256, as makedumpfile does);
// shorter ones stay in the file as zero-filled pages, never as their
// original content. When more runs qualify than Options.MaxPhdrs allows,
// the shortest are zero-filled too, so memory and header size stay bounded
// by the number of output segments.
//
// x86_64's kernel-text PT_LOAD repeats physical memory a RAM PT_LOAD also
// covers. Physical memory that two source PT_LOADs cover is never split and
// its data is written once: the kernel-text PT_LOAD comes out whole, as the
// kernel wrote it, pointing at the same file data as the RAM segment.
//
// A source with physical addresses only (QEMU's dump-guest-memory cores)
// lacks that kernel-text PT_LOAD and the direct map's addresses, without
// which drgn before 0.0.27 cannot read the top page table. KernelSegments
// adds them, from what the source's own page tables confirm, and
// Options.Segments has the layout write them; the image's PT_LOADs then
// overlap the RAM's as the kernel's do.
//
// A page is kept when the KeepFunc keeps it and the source stores all of
// it; one the source stores only in part (a truncated copy, a filtered
// source) is dropped, and so is memory the source stores none of even
// where two segments overlap (a truncated copy's kernel text).
//
// So an output holds, for the memory of its PT_LOADs, three kinds of
// pages: kept pages, with their contents; dropped pages, not declared;
// and zero-filled pages, dropped pages inside the file data (runs shorter
// than MinExcludedRun, runs past the MaxPhdrs budget, excluded pages where
// two source PT_LOADs overlap). Readers cannot tell a zero-filled page
// from a page of zeros; on disk it is a hole. On a 1 GiB x86_64 dump saved
// at level 31 the default layout has 9 PT_LOADs and 1998 zero-filled pages
// (931 of them in the kernel-text overlap, never split); splitting every
// run (MinExcludedRun 1) gives 142 PT_LOADs, 931 zero-filled pages, a
// file 4 MiB shorter and the same blocks on disk.
//
// A kept page whose read fails after the layout is fixed is given up
// with MissingPage: it stays a hole in the file data, and the caller
// lists it in a note (ReplaceNotes, vmcore.NoteGokdump) that readers of
// this package's vmcore reader turn back into missing memory.
//
// Writing streams: NewLayout takes the complete keep-set (a KeepFunc) and
// plans the file; NewWriter writes the headers and notes; WritePage then
// takes the kept pages in physical address order. Close finishes the file;
// Abort marks it incomplete (e_flags bit 0) and leaves it readable, with
// pages never written reading as zeros.
package elfcore
