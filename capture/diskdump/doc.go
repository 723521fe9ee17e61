// Package diskdump reads and writes makedumpfile's kdump-compressed
// ("diskdump") dump format, the format crash, drgn (through libkdumpfile)
// and makedumpfile itself read.
//
// A file is a sequence of blocks of the dump's page size: a header, a
// sub-header followed by a copy of the vmcore's ELF notes, two bitmaps
// (pages that are RAM, pages that are dumped), one page descriptor per
// dumped page, and the page data, each page compressed on its own (see
// package codec) or stored raw. A page's descriptor is found by counting
// the dumped pages before it.
//
// The Writer streams: it holds a bounded amount of memory however large
// the dumped machine, writes through an io.WriterAt, and leaves a readable
// file flagged incomplete when the disk fills. The bitmaps are max_mapnr
// bits long whatever the memory present; the Writer writes the parts it
// is given and leaves the rest as holes, so its work follows the pages
// dumped, not the span of physical addresses. A page that cannot be read
// is taken out of the 2nd bitmap (ExcludePage): readers then say it was
// not dumped instead of returning zeros. Notes learnt while writing (the
// list of missing memory, vmcore.NoteGokdump) go after the page data,
// where the sub-header then points (ReplaceNotes). NewFlattenWriter and
// Unflatten convert to and from makedumpfile's flattened stream (-F, -R),
// for output to pipes.
//
// The reader (Open) checks every size and offset in the file against the
// file's size before using it, so a hostile or truncated file yields an
// error naming the page and offset (*FormatError, *PageError), never a
// huge allocation or a panic. It indexes the 2nd bitmap by the blocks
// that set bits, skipping a sparse file's holes: its work and memory
// follow the data the file holds, not the physical span the header
// claims. Check tells cheaply whether the file holds every page its
// headers promise (a file cut short, a flattened stream that lost
// records); Verify decompresses every page.
package diskdump
