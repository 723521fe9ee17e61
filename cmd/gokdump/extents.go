package main

import (
	"io"
	"slices"
	"sort"
)

// extents is a set of byte ranges of a file, kept sorted and merged: the
// parts a flattened stream's records wrote, to tell a rebuilt dump with
// holes from a whole one.
type extents struct {
	r []extent
	// overflow is set once more than maxExtents separate ranges were
	// seen (a hostile stream); the set is then dropped and nothing can
	// be said about coverage.
	overflow bool
}

type extent struct{ start, end int64 }

// maxExtents bounds the memory extents takes (16 bytes a range). Real
// streams write the file nearly in order and merge into a handful.
const maxExtents = 1 << 20

// add records that [off, off+n) was written.
func (e *extents) add(off, n int64) {
	if n <= 0 || e.overflow {
		return
	}
	end := off + n
	// Ranges that overlap or touch [off, end) merge with it.
	i := sort.Search(len(e.r), func(i int) bool { return e.r[i].end >= off })
	j := i
	for j < len(e.r) && e.r[j].start <= end {
		j++
	}
	if i < j {
		off, end = min(off, e.r[i].start), max(end, e.r[j-1].end)
	} else if len(e.r) >= maxExtents {
		e.r, e.overflow = nil, true
		return
	}
	e.r = slices.Replace(e.r, i, j, extent{off, end})
}

// missing returns how many bytes of [off, off+n) were not written.
func (e *extents) missing(off, n int64) int64 {
	if n <= 0 {
		return 0
	}
	end := off + n
	i := sort.Search(len(e.r), func(i int) bool { return e.r[i].end > off })
	var got int64
	for ; i < len(e.r) && e.r[i].start < end; i++ {
		got += min(end, e.r[i].end) - max(off, e.r[i].start)
	}
	return n - got
}

// coverWriter records in e what it writes to w. Its errors are
// *writeError, to tell a failure of the output from a bad input.
type coverWriter struct {
	w io.WriterAt
	e *extents
}

func (c coverWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.e.add(off, int64(n))
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// writeError is a failure to write the output (a full disk).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
