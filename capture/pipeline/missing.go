package pipeline

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// Missing memory. Memory the source should hold and does not (file data
// past the end of a truncated vmcore, pages whose read fails, pages the
// source itself lists as missing) is neither zero nor kept: the output
// leaves it out (kdump: out of the 2nd bitmap; ELF: out of the file data
// where the layout allows), lists it in a GOKDUMP note, and is flagged
// incomplete, and Save's error wraps ErrIncomplete. Reading goes on past
// it. The source lists what its headers say is missing (s.known, from
// vmcore.File.Missing); the pages pass finds what fails to read (s.late).

// missingLines is how many missing ranges Logf and MissingLines name.
const missingLines = 8

// finishMissing merges what was found missing into the stats, logs it,
// hands the notes that list it to replace when they differ from the
// source's, and returns why the dump is incomplete ("" when it is not).
func (s *saver) finishMissing(replace func(notes []byte, viOff, viSize int64) error) string {
	st := s.stats
	miss := vmcore.MergeMissing(s.known, s.late)
	if miss.Empty() {
		miss = nil
	}
	st.MissingList = miss
	var why []string
	if miss != nil {
		why = append(why, fmt.Sprintf("%d pages (%.1f MiB) missing from the source", miss.Pages, mib(miss.Bytes())))
		for _, l := range st.MissingLines(missingLines) {
			s.opts.Logf("%s", l)
		}
	}
	if s.src.Flags&vmcore.FlagIncomplete != 0 {
		why = append(why, "the source is flagged incomplete")
	}
	notes := vmcore.ReplaceMissingNote(s.src.NoteData, s.src.ByteOrder, miss)
	if !bytes.Equal(notes, s.src.NoteData) {
		ns, _ := vmcore.ParseNotes(notes, s.src.ByteOrder, s.src.Machine, 0)
		if err := replace(notes, ns.VMCOREINFOOffset, ns.VMCOREINFOSize); err != nil {
			s.opts.Logf("the list of missing memory cannot be written: %v", err)
			why = append(why, "(its list could not be written: "+err.Error()+")")
		}
	}
	return strings.Join(why, "; ")
}

// missingPage records pfn, whose read failed, as missing.
func (s *saver) missingPage(pfn uint64, err error) {
	st := s.stats
	st.Missing++
	st.Unreadable++
	s.late.Add(pfn, 1)
	if st.Unreadable <= 10 {
		s.opts.Logf("pfn %#x unreadable, left out of the dump as missing: %v", pfn, err)
	}
}

// noteUnfiltered adds to Degraded, after pass 1, the pages whose classes
// the level asked for and the filter could not judge.
func (s *saver) noteUnfiltered() {
	st := s.stats
	if st.Unfiltered == 0 {
		return
	}
	d := fmt.Sprintf("level bits %s not honoured for %d pages (%.1f MiB): their struct pages could not be read (missing from the dump or unmapped); they are kept",
		classesOf(s.opts.Level), st.Unfiltered, mib(st.Unfiltered*uint64(s.ps)))
	st.Degraded = append(st.Degraded, d)
	s.opts.Logf("warning: %s", d)
}

// MissingLines describes the missing memory for a console, at most max
// ranges and a line for the rest; nil when nothing is missing.
func (s *Stats) MissingLines(max int) []string {
	m := s.MissingList
	if m.Empty() {
		return nil
	}
	out := []string{fmt.Sprintf("missing: %d pages (%.1f MiB) in %d ranges, not in the dump (neither zero nor kept)",
		m.Pages, mib(m.Bytes()), len(m.Ranges))}
	for i, r := range m.Ranges {
		if i == max {
			out = append(out, fmt.Sprintf("  … and %d more ranges", len(m.Ranges)-max))
			break
		}
		out = append(out, fmt.Sprintf("  pfn %#x-%#x (physical %#x-%#x, %.1f MiB)", r.Start, r.End()-1,
			r.Start*m.PageSize, r.End()*m.PageSize-1, mib(r.Pages*m.PageSize)))
	}
	if m.Partial {
		out = append(out, "  (more ranges than the list holds; the count is exact)")
	}
	return out
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// unfilteredClasses reports whether level asks the filter for classes a
// missing struct page would cost.
func unfilteredClasses(level filter.Level) bool {
	return level&(filter.ExcludeCache|filter.ExcludeCachePrivate|filter.ExcludeUser|filter.ExcludeFree) != 0
}
