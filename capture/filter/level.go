package filter

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is a makedumpfile dump level (-d): a mask of the page classes a
// dump leaves out. Every part of gokdump that takes a level takes this
// type, so the bound 0..31 lives here only.
type Level int

// Dump level bits, as makedumpfile's -d numbers them.
const (
	ExcludeZero         Level = 1 << iota // pages of zeros: the caller tests content
	ExcludeCache                          // page cache without private data
	ExcludeCachePrivate                   // page cache, private data or not
	ExcludeUser                           // user process data (anonymous, hugetlb)
	ExcludeFree                           // free pages
	MaxLevel            = 1<<iota - 1
)

// Valid reports whether l is a dump level makedumpfile knows: 0..31.
func (l Level) Valid() bool { return l >= 0 && l <= MaxLevel }

// Has reports whether every bit of bits is set in l.
func (l Level) Has(bits Level) bool { return l&bits == bits }

func (l Level) String() string { return strconv.Itoa(int(l)) }

// ParseLevel parses a dump level written as a decimal number 0..31.
func ParseLevel(s string) (Level, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a number 0..%d", ErrLevel, s, MaxLevel)
	}
	return CheckLevel(n)
}

// CheckLevel returns n as a Level, or ErrLevel when it is out of range.
func CheckLevel(n int) (Level, error) {
	if l := Level(n); l.Valid() {
		return l, nil
	}
	return 0, fmt.Errorf("%w: %d is not in 0..%d", ErrLevel, n, MaxLevel)
}
