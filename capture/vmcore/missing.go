package vmcore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// gokdump's own ELF note, in the notes of the dumps it writes (the
// PT_NOTE of an ELF dump, the note copy of a kdump-compressed file):
//
//	name "GOKDUMP", type NT_GOKDUMP_MISSING (1): memory the dump lacks.
//
// Its descriptor, in the byte order of the notes around it:
//
//	u32 version     1
//	u32 flags       bit 0: the list is partial (more ranges than listed)
//	u64 page_size   the unit of the pfns below
//	u64 pages       pages missing in all, listed or not
//	u64 nr_ranges   ranges listed
//	nr_ranges × { u64 start_pfn; u64 nr_pages }, sorted, disjoint
//
// Missing memory is memory the source said it held and could not give:
// file data past the end of a truncated vmcore, pages whose read failed.
// It is neither zero nor excluded by a filter: a kdump file leaves it out
// of the 2nd bitmap (readers report it as not dumped), an ELF dump leaves
// it out of the file data where it can and, where it could not (a read
// that failed after the layout was fixed), this note is what tells it from
// the zeros the file holds there. A dump with this note is flagged
// incomplete (kdump status 0x8, ELF e_flags bit 0).
const (
	NoteGokdump        = "GOKDUMP"
	NT_GOKDUMP_MISSING = 1
)

// MaxMissingRanges bounds the ranges a Missing lists: 16 bytes each, 256
// KiB of note at most. Past it the list is partial, the count exact.
const MaxMissingRanges = 1 << 14

const (
	missingVersion     = 1
	missingFlagPartial = 1
	missingHeader      = 32
)

// ErrMissing is returned, wrapped along with ErrHole, for memory the
// dump's headers place in the file but that the file does not hold, or
// that the dump's GOKDUMP note lists as missing.
var ErrMissing = errors.New("vmcore: memory missing from the dump")

// PFNRange is Pages page frames from Start.
type PFNRange struct{ Start, Pages uint64 }

// End returns the pfn after the range.
func (r PFNRange) End() uint64 { return r.Start + r.Pages }

// Missing lists the memory a dump lacks, in pages of PageSize bytes.
type Missing struct {
	PageSize uint64
	// Pages counts every missing page, including those of ranges not
	// listed when Partial.
	Pages uint64
	// Ranges are sorted and disjoint; adjacent ranges are merged.
	Ranges []PFNRange
	// Partial is set when more ranges are missing than MaxMissingRanges.
	Partial bool
}

// Add records n pages from pfn start as missing. Calls must come in
// increasing, non-overlapping order; a range that touches the last one
// extends it. Past MaxMissingRanges ranges only the count grows.
func (m *Missing) Add(start, n uint64) {
	if n == 0 {
		return
	}
	m.Pages += n
	if k := len(m.Ranges); k > 0 && m.Ranges[k-1].End() == start {
		m.Ranges[k-1].Pages += n
		return
	}
	if len(m.Ranges) >= MaxMissingRanges {
		m.Partial = true
		return
	}
	m.Ranges = append(m.Ranges, PFNRange{start, n})
}

// Empty reports whether nothing is missing.
func (m *Missing) Empty() bool { return m == nil || m.Pages == 0 }

// Bytes returns the size of the missing memory.
func (m *Missing) Bytes() uint64 {
	if m == nil {
		return 0
	}
	return m.Pages * m.PageSize
}

// Contains reports whether pfn is in a listed range.
func (m *Missing) Contains(pfn uint64) bool {
	if m == nil {
		return false
	}
	lo, hi := 0, len(m.Ranges)
	for lo < hi {
		mid := (lo + hi) / 2
		if m.Ranges[mid].End() <= pfn {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo < len(m.Ranges) && m.Ranges[lo].Start <= pfn
}

// MergeMissing returns the union of a and b, lists each sorted, in
// pages of a's page size (b's ranges are converted, rounded outwards).
// Either may be nil.
func MergeMissing(a, b *Missing) *Missing {
	switch {
	case a.Empty() && b.Empty():
		return nil
	case b.Empty():
		return a
	case a.Empty():
		return b
	}
	conv := func(r PFNRange) PFNRange {
		if b.PageSize == a.PageSize || a.PageSize == 0 {
			return r
		}
		lo := r.Start * b.PageSize / a.PageSize
		hi := (r.End()*b.PageSize + a.PageSize - 1) / a.PageSize
		return PFNRange{lo, hi - lo}
	}
	out := &Missing{PageSize: a.PageSize, Partial: a.Partial || b.Partial}
	var pending PFNRange
	have := false
	flush := func() {
		if have {
			out.Add(pending.Start, pending.Pages)
		}
	}
	i, j := 0, 0
	for i < len(a.Ranges) || j < len(b.Ranges) {
		var r PFNRange
		if j >= len(b.Ranges) || (i < len(a.Ranges) && a.Ranges[i].Start <= conv(b.Ranges[j]).Start) {
			r, i = a.Ranges[i], i+1
		} else {
			r, j = conv(b.Ranges[j]), j+1
		}
		switch {
		case !have:
			pending, have = r, true
		case r.Start <= pending.End():
			if e := r.End(); e > pending.End() {
				pending.Pages = e - pending.Start
			}
		default:
			flush()
			pending = r
		}
	}
	flush()
	// Pages not listed (partial lists) are counted as the larger of the
	// two lists' unlisted pages: the union is at least that.
	unlisted := func(m *Missing) uint64 {
		var n uint64
		for _, r := range m.Ranges {
			n += r.Pages
		}
		return m.Pages - min(n, m.Pages)
	}
	out.Pages += max(unlisted(a), unlisted(b))
	return out
}

// AppendMissingNote appends the GOKDUMP note of m to b.
func AppendMissingNote(b []byte, bo binary.ByteOrder, m *Missing) []byte {
	n := min(len(m.Ranges), MaxMissingRanges)
	desc := make([]byte, missingHeader+16*n)
	flags := uint32(0)
	if m.Partial || n < len(m.Ranges) {
		flags |= missingFlagPartial
	}
	bo.PutUint32(desc[0:], missingVersion)
	bo.PutUint32(desc[4:], flags)
	bo.PutUint64(desc[8:], m.PageSize)
	bo.PutUint64(desc[16:], m.Pages)
	bo.PutUint64(desc[24:], uint64(n))
	for i, r := range m.Ranges[:n] {
		bo.PutUint64(desc[missingHeader+16*i:], r.Start)
		bo.PutUint64(desc[missingHeader+16*i+8:], r.Pages)
	}
	return AppendNote(b, bo, NoteGokdump, NT_GOKDUMP_MISSING, desc)
}

// DecodeMissing decodes the descriptor of a GOKDUMP NT_GOKDUMP_MISSING
// note. It checks everything it returns: ranges sorted, disjoint, within
// 64-bit pfns, and no more pages listed than counted.
func DecodeMissing(desc []byte, bo binary.ByteOrder) (*Missing, error) {
	if len(desc) < missingHeader {
		return nil, fmt.Errorf("%w: GOKDUMP missing-memory note of %d bytes", ErrCorrupt, len(desc))
	}
	if v := bo.Uint32(desc[0:]); v != missingVersion {
		return nil, fmt.Errorf("%w: GOKDUMP missing-memory note version %d", ErrUnsupported, v)
	}
	m := &Missing{
		Partial:  bo.Uint32(desc[4:])&missingFlagPartial != 0,
		PageSize: bo.Uint64(desc[8:]),
		Pages:    bo.Uint64(desc[16:]),
	}
	n := bo.Uint64(desc[24:])
	if ps := m.PageSize; ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("%w: GOKDUMP missing-memory note: page size %d", ErrCorrupt, ps)
	}
	if n > MaxMissingRanges || uint64(len(desc)-missingHeader) != 16*n {
		return nil, fmt.Errorf("%w: GOKDUMP missing-memory note: %d ranges in %d bytes", ErrCorrupt, n, len(desc))
	}
	m.Ranges = make([]PFNRange, n)
	var listed, prevEnd uint64
	for i := range m.Ranges {
		r := PFNRange{bo.Uint64(desc[missingHeader+16*i:]), bo.Uint64(desc[missingHeader+16*i+8:])}
		if r.Pages == 0 || r.End() < r.Start || r.End() > ^uint64(0)/m.PageSize || (i > 0 && r.Start < prevEnd) {
			return nil, fmt.Errorf("%w: GOKDUMP missing-memory note: range %d (pfn %#x, %d pages) after pfn %#x",
				ErrCorrupt, i, r.Start, r.Pages, prevEnd)
		}
		m.Ranges[i], prevEnd = r, r.End()
		listed += r.Pages
	}
	if listed > m.Pages {
		return nil, fmt.Errorf("%w: GOKDUMP missing-memory note lists %d pages, counts %d", ErrCorrupt, listed, m.Pages)
	}
	return m, nil
}

// MissingFromNotes decodes the GOKDUMP missing-memory note among notes
// (as a kdump file's reader lists them), nil when there is none; bo is
// the notes' byte order.
func MissingFromNotes(notes []Note, bo binary.ByteOrder) (*Missing, error) {
	for _, n := range notes {
		if n.Name == NoteGokdump && n.Type == NT_GOKDUMP_MISSING {
			return DecodeMissing(n.Desc, bo)
		}
	}
	return nil, nil
}

// ReplaceMissingNote returns the block of ELF notes with its GOKDUMP
// missing-memory notes dropped and, when m is not empty, one for m
// appended. The walk stops at zero padding or a note that overruns the
// block (what follows is dropped: no reader would find a note there); a
// block with nothing to change is returned as it is.
func ReplaceMissingNote(notes []byte, bo binary.ByteOrder, m *Missing) []byte {
	var out []byte
	changed := false
	pos := 0
	for pos+12 <= len(notes) {
		namesz, descsz, typ := bo.Uint32(notes[pos:]), bo.Uint32(notes[pos+4:]), bo.Uint32(notes[pos+8:])
		if namesz == 0 && descsz == 0 && typ == 0 {
			break
		}
		end := uint64(pos) + 12 + align4(uint64(namesz)) + align4(uint64(descsz))
		if end > uint64(len(notes)) {
			break
		}
		name := notes[pos+12 : pos+12+int(namesz)]
		if string(name) == NoteGokdump+"\x00" && typ == NT_GOKDUMP_MISSING {
			changed = true
		} else {
			out = append(out, notes[pos:end]...)
		}
		pos = int(end)
	}
	if m.Empty() {
		if !changed {
			return notes
		}
		return out
	}
	return AppendMissingNote(out, bo, m)
}
