package crashdir

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names inside a dump directory.
const (
	VMCore           = "vmcore"
	VMCoreIncomplete = "vmcore-incomplete"
	DmesgFile        = "vmcore-dmesg.txt"
	// KexecDmesgFile is the capture kernel's own log, written last (as
	// kdump-utils names it).
	KexecDmesgFile = "kexec-dmesg.log"
)

// TimeLayout names dump directories, as kdumpctl does (minus the IP
// prefix). Times are UTC. FAT refuses ':' in names: there TimeLayoutFAT
// is used instead.
const (
	TimeLayout    = "2006-01-02-15:04:05"
	TimeLayoutFAT = "2006-01-02-15.04.05"
)

// maxSeq bounds the -N suffix of dump directories made in one second.
const maxSeq = 999

// Name returns the directory name of a dump made at t, the seq'th of that
// second (0 for the first, which has no suffix). A t that cannot name a
// directory (see Nameable) gives the name of the current time.
func Name(t time.Time, seq int) string { return nameIn(TimeLayout, nameable(t), seq) }

// Nameable reports whether t can name a dump directory that ParseName
// reads back: a year from 1970 to 9999. A crash time comes from the
// crashed kernel (CRASHTIME) or a log trailer, and a corrupt one can be
// anything: years of five digits or negative do not parse.
func Nameable(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1970 && y <= 9999
}

// nameable returns t, or the current time when t cannot name a directory
// (the epoch if the clock is that wrong too).
func nameable(t time.Time) time.Time {
	if Nameable(t) {
		return t
	}
	if now := time.Now(); Nameable(now) {
		return now
	}
	return time.Unix(0, 0)
}

func nameIn(layout string, t time.Time, seq int) string {
	n := t.UTC().Format(layout)
	if seq > 0 {
		n += "-" + strconv.Itoa(seq)
	}
	return n
}

// ParseName reverses Name, and reads names in TimeLayoutFAT too: ok is
// false for any other name, which is never treated as a dump directory.
func ParseName(name string) (t time.Time, seq int, ok bool) {
	for _, layout := range []string{TimeLayout, TimeLayoutFAT} {
		if t, seq, ok := parseIn(layout, name); ok {
			return t, seq, ok
		}
	}
	return time.Time{}, 0, false
}

func parseIn(layout, name string) (t time.Time, seq int, ok bool) {
	if len(name) < len(layout) {
		return time.Time{}, 0, false
	}
	t, err := time.Parse(layout, name[:len(layout)])
	if err != nil {
		return time.Time{}, 0, false
	}
	rest := name[len(layout):]
	if rest != "" {
		s, found := strings.CutPrefix(rest, "-")
		// Digits only, no sign, no leading zero: one spelling per number.
		if !found || s == "" || len(s) > 3 || s[0] == '0' || strings.Trim(s, "0123456789") != "" {
			return time.Time{}, 0, false
		}
		seq, _ = strconv.Atoi(s)
	}
	if nameIn(layout, t, seq) != name {
		return time.Time{}, 0, false
	}
	return t, seq, true
}

// ours reports whether a file name in a dump directory is one we write.
func ours(name string) bool {
	return name == VMCore || name == VMCoreIncomplete || name == DmesgFile || name == KexecDmesgFile
}

// State is what a dump directory holds.
type State string

const (
	// Complete: vmcore is there, written whole and synced.
	Complete State = "complete"
	// Incomplete: only vmcore-incomplete, and nothing is writing it: the
	// disk filled (the dump is flagged incomplete and readable), or the
	// capture was cut off by a power loss, a reset or a crash of its own.
	Incomplete State = "incomplete"
	// InProgress: vmcore-incomplete is being written right now (its
	// writer holds a lock on it).
	InProgress State = "in-progress"
	// NoDump: the capture saved the kernel log but no dump file.
	NoDump State = "no-dump"
)

// Dump is one dump directory as Scan finds it.
type Dump struct {
	Name string    `json:"name"` // directory name, e.g. 2026-11-27-12:37:07 or …-1
	Dir  string    `json:"dir"`  // directory path
	Time time.Time `json:"time"` // crash time, from the name (UTC)
	Seq  int       `json:"seq"`  // the -N suffix, 0 without one
	// State says whether the dump is whole.
	State State `json:"state"`
	// File is the dump file's path (vmcore or vmcore-incomplete), "" for
	// NoDump; Size its size in bytes.
	File string `json:"file,omitempty"`
	Size int64  `json:"size"`
	// Dmesg is set when vmcore-dmesg.txt is there.
	Dmesg bool `json:"dmesg"`
	// Foreign lists entries that are not ours (other names, or our names
	// on something other than a regular file). A directory with any is
	// never pruned.
	Foreign []string `json:"foreign,omitempty"`
}

// String describes the dump in one line.
func (d Dump) String() string {
	s := fmt.Sprintf("%s %s", d.Dir, d.State)
	if d.File != "" {
		s += fmt.Sprintf(" %s %d bytes", d.File[strings.LastIndexByte(d.File, '/')+1:], d.Size)
	}
	if len(d.Foreign) > 0 {
		s += fmt.Sprintf(" (also holds %d entries not ours)", len(d.Foreign))
	}
	return s
}

// sortDumps orders dumps oldest first.
func sortDumps(ds []Dump) {
	slices.SortFunc(ds, func(a, b Dump) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

// toPrune returns, oldest first, the dumps to remove so that at most keep
// of ours remain: directories with foreign entries neither count nor go,
// and a dump in progress is never removed (it still counts).
func toPrune(ds []Dump, keep int) []Dump {
	if keep <= 0 {
		return nil
	}
	var mine []Dump
	for _, d := range ds {
		if len(d.Foreign) == 0 {
			mine = append(mine, d)
		}
	}
	sortDumps(mine)
	var out []Dump
	excess := len(mine) - keep
	for _, d := range mine {
		if excess <= 0 {
			break
		}
		if d.State == InProgress {
			continue
		}
		out = append(out, d)
		excess--
	}
	return out
}
