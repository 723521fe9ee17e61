package diskdump

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped with detail.
var (
	ErrNotKdump = errors.New("diskdump: not a kdump-compressed file")
	// ErrFlattened is returned by Open for makedumpfile's flattened
	// stream: rebuild it with Unflatten (makedumpfile -R) first.
	ErrFlattened   = errors.New("diskdump: flattened format: unflatten first")
	ErrCorrupt     = errors.New("diskdump: corrupt")
	ErrUnsupported = errors.New("diskdump: unsupported")
	// ErrExcluded is returned (along with vmcore.ErrHole) for pages that
	// are RAM but were filtered out of the dump.
	ErrExcluded = errors.New("diskdump: page excluded from dump")
	// ErrTruncated is wrapped by Check's *Damage: the file lacks data its
	// headers promise.
	ErrTruncated = errors.New("diskdump: truncated")
)

// FormatError is a part of a kdump-compressed file, or of a flattened
// stream, that breaks the format, in the manner of debug/elf's
// FormatError. errors.Is finds its sentinel (Err); errors.As gives the
// offset and the field.
type FormatError struct {
	// Off is the file offset (the stream offset, for a flattened stream)
	// of the structure or field at fault.
	Off int64
	// Field names it as makedumpfile spells it: "block_size",
	// "max_mapnr", "page_desc", "flat record", …
	Field string
	// Msg says what is wrong, in the user's terms.
	Msg string
	// Err is ErrCorrupt, ErrUnsupported or ErrNotKdump.
	Err error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v: %s (%s at offset %#x)", e.Err, e.Msg, e.Field, e.Off)
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(err error, off int64, field, format string, args ...any) *FormatError {
	return &FormatError{Off: off, Field: field, Msg: fmt.Sprintf(format, args...), Err: err}
}

// PageError is a dumped page that cannot be read.
type PageError struct {
	PFN uint64
	// Off is the file offset of the page's data or, when its descriptor
	// is what is wrong, of the descriptor.
	Off int64
	// Err says why: a *FormatError (wrapping ErrCorrupt), a codec error,
	// or an I/O error.
	Err error
}

func (e *PageError) Error() string {
	return fmt.Sprintf("diskdump: pfn %#x (at offset %#x): %v", e.PFN, e.Off, e.Err)
}

func (e *PageError) Unwrap() error { return e.Err }

// Damage is what Check finds missing from a file: its pages whose
// descriptor or data lies past the end of the file, whose descriptor was
// never written, or whose data falls in a hole of the file (records lost
// from a flattened stream). It wraps ErrTruncated.
type Damage struct {
	// Pages is the number of pages the file's 2nd bitmap says it holds.
	Pages uint64
	// Beyond counts those whose descriptor or data lies past the end of
	// the file; End is the file offset their data would need.
	Beyond uint64
	End    int64
	// Unwritten counts those whose descriptor is all zeros: never
	// written (an interrupted capture) or lost (a hole in the file).
	Unwritten uint64
	// InHoles counts those whose compressed data lies, at least in part,
	// in a hole of the file: written nowhere.
	InHoles uint64
	// Bad counts descriptors that name impossible data: before the data
	// area, larger than a page, with unknown compression flags.
	Bad uint64
	// FirstPFN is the first damaged page.
	FirstPFN uint64
	// Size is the file's size.
	Size int64
}

// Missing returns the number of damaged pages.
func (d *Damage) Missing() uint64 { return d.Beyond + d.Unwritten + d.InHoles + d.Bad }

func (d *Damage) Error() string {
	var parts []string
	if d.Beyond > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d pages beyond the end of the file (%d bytes, want %d)",
			d.Beyond, d.Pages, d.Size, d.End))
	}
	if d.Unwritten > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d page descriptors never written", d.Unwritten, d.Pages))
	}
	if d.InHoles > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d pages with data in holes of the file", d.InHoles, d.Pages))
	}
	if d.Bad > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d page descriptors corrupt", d.Bad, d.Pages))
	}
	s := fmt.Sprintf("%v: ", ErrTruncated)
	for i, p := range parts {
		if i > 0 {
			s += "; "
		}
		s += p
	}
	return s + fmt.Sprintf(" (first pfn %#x)", d.FirstPFN)
}

func (d *Damage) Unwrap() error { return ErrTruncated }
