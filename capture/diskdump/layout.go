package diskdump

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Range is a byte range of a file.
type Range struct{ Off, Len int64 }

// End is the offset just past r.
func (r Range) End() int64 { return r.Off + r.Len }

// Layout is where the parts of an open file are, in bytes, for tools that
// check a file part by part (savecore, which must know that a rebuilt
// stream wrote every part).
type Layout struct {
	BlockSize        int64
	Header           Range // disk_dump_header
	SubHeader        Range // kdump_sub_header
	Notes            Range // the ELF notes the sub-header points at; Len 0 if none
	VMCOREINFO       Range // VMCOREINFO, within Notes or not; Len 0 if none
	Bitmap1, Bitmap2 Range // whole bitmaps; a writer leaves bytes of zeros unwritten
	Descs            Range // the page descriptors of the pages this file holds
	EraseInfo        Range // makedumpfile's erase info; Len 0 if none
}

// Layout returns where f's parts are.
func (f *File) Layout() Layout {
	l := f.lay
	return Layout{
		BlockSize:  l.bs,
		Header:     Range{0, headerSize},
		SubHeader:  Range{l.bs, subHeaderSize},
		Notes:      f.notes,
		VMCOREINFO: f.vmcoreinfo,
		Bitmap1:    Range{l.bitmap1, l.bitmapLen},
		Bitmap2:    Range{l.bitmap2, l.bitmapLen},
		Descs:      Range{l.desc, int64(f.ndesc) * descSize},
		EraseInfo:  Range{f.Header.EraseInfoOffset, f.Header.EraseInfoSize},
	}
}

// ReadWriterAt is a file that can be patched in place.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// MarkIncomplete sets the incomplete bit in the header of the
// kdump-compressed file rw, as makedumpfile and the Writer do for a dump
// they could not finish: every reader then knows.
func MarkIncomplete(rw ReadWriterAt) error {
	var b [4]byte
	if _, err := rw.ReadAt(b[:], offStatus); err != nil {
		return fmt.Errorf("diskdump: read status: %w", err)
	}
	st := binary.LittleEndian.Uint32(b[:]) | StatusIncomplete
	binary.LittleEndian.PutUint32(b[:], st)
	if _, err := rw.WriteAt(b[:], offStatus); err != nil {
		return fmt.Errorf("diskdump: write status: %w", err)
	}
	return nil
}
