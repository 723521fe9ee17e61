package diskdump

import "io"

// extent is a range [off, end) of a file.
type extent struct{ off, end int64 }

// maxHoles bounds the holes Check keeps track of: past it, the file is
// damaged beyond counting page by page.
const maxHoles = 1 << 12

// dataExtents calls fn, in order, for the parts of [off, end) of r that
// may hold data. For a regular file those are what lseek(2)'s SEEK_DATA
// and SEEK_HOLE report: a hole is never written and reads as zeros, so a
// sparse file's holes (a huge bitmap that is mostly empty, the gaps a
// flattened stream's missing records leave) cost nothing to skip. Other
// readers hold all of it.
func dataExtents(r io.ReaderAt, off, end int64, fn func(off, end int64) error) error {
	if off >= end {
		return nil
	}
	seek := seeker(r)
	if seek == nil {
		return fn(off, end)
	}
	for off < end {
		d, ok := seek(off, seekData)
		if !ok {
			// No data past off, or lseek does not know: the latter
			// reads all of the rest.
			if d < 0 {
				return fn(off, end)
			}
			return nil
		}
		if d >= end {
			return nil
		}
		h, ok := seek(d, seekHole)
		if !ok || h > end || h <= d {
			h = end
		}
		if err := fn(d, h); err != nil {
			return err
		}
		off = h
	}
	return nil
}

// holes returns the holes of [off, end) of r, at most maxHoles of them
// (more reports false), or nil when r cannot tell.
func holes(r io.ReaderAt, off, end int64) ([]extent, bool) {
	var hs []extent
	pos := off
	many := false
	dataExtents(r, off, end, func(a, b int64) error {
		if a > pos {
			if len(hs) == maxHoles {
				many = true
				return errStop
			}
			hs = append(hs, extent{pos, a})
		}
		pos = b
		return nil
	})
	if !many && pos < end {
		if len(hs) == maxHoles {
			return hs, false
		}
		hs = append(hs, extent{pos, end})
	}
	return hs, !many
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}
