package vm

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/qemu-tests/guest"
)

// Census is what a dump holds of a run: its pages, and the distinct whole
// markers of each kind (USER, CACHE, KMSG) with the run's id.
type Census struct {
	Pages   uint64
	Markers map[string]int
}

// TakeCensus reads every page a dump (ELF or kdump-compressed) holds once
// and counts its pages and the run's markers by kind.
func TakeCensus(path, id string) (Census, error) {
	c := Census{Markers: map[string]int{}}
	seen := map[string]bool{}
	kinds := []string{"USER", "CACHE", "KMSG"}
	// After "GOKDUMP-": KIND-ID-NNNNNN.
	whole := func(rest []byte) int {
		for _, k := range kinds {
			m := guest.Marker(k, id, 0)[len("GOKDUMP-"):]
			n := len(m) - 6
			if len(rest) >= len(m) && string(rest[:n]) == m[:n] && allDigits(rest[n:len(m)]) {
				return len(m)
			}
		}
		return 0
	}
	err := scanDump(path, "GOKDUMP-", whole, func(m string, _ uint64) bool {
		if !seen[m] {
			seen[m] = true
			kind, _, _ := strings.Cut(m[len("GOKDUMP-"):], "-")
			c.Markers[kind]++
		}
		return true
	}, func() { c.Pages++ })
	return c, err
}

// CountMarkers reads every page a dump (ELF or kdump-compressed) holds and
// returns how many distinct whole markers with prefix it contains.
func CountMarkers(path, prefix string) (int, error) {
	seen := map[string]bool{}
	err := scanMarkers(path, prefix, func(m string, _ uint64) bool { seen[m] = true; return true })
	return len(seen), err
}

// FindMarker returns the physical address of a whole marker in a dump.
func FindMarker(path, marker string) (uint64, error) {
	var at uint64
	found := false
	err := scanMarkers(path, marker[:len(marker)-6], func(m string, phys uint64) bool {
		if m == marker {
			at, found = phys, true
		}
		return !found
	})
	if err == nil && !found {
		err = fmt.Errorf("%s: no %s", path, marker)
	}
	return at, err
}

// scanMarkers calls f with each whole marker with prefix the dump holds
// and its physical address, until f returns false.
func scanMarkers(path, prefix string, f func(marker string, phys uint64) bool) error {
	whole := func(rest []byte) int {
		if len(rest) >= 6 && allDigits(rest[:6]) {
			return 6
		}
		return 0
	}
	return scanDump(path, prefix, whole, f, func() {})
}

// scanDump calls page for each page of a dump and f with each whole marker
// it holds: prefix followed by the whole(rest) bytes whole accepts.
func scanDump(path, prefix string, whole func(rest []byte) int, f func(marker string, phys uint64) bool, page func()) error {
	d, err := anydump.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	p := []byte(prefix)
	ps := d.PageSize
	keep := len(p) + 40 // a whole marker fits
	// The tail of the previous page, so a marker across two consecutive
	// pages is found whole.
	buf := make([]byte, keep+ps) // [tail of the previous page][this page]
	prev := ^uint64(0)
	for pfn, err := range d.Pages() {
		if err != nil {
			return err
		}
		page()
		data, base := buf[keep:], pfn*uint64(ps)
		if pfn == prev+1 {
			copy(buf[:keep], buf[ps:ps+keep])
			data, base = buf, base-uint64(keep)
		}
		if _, err := d.ReadPhys(buf[keep:], pfn*uint64(ps)); err != nil {
			return fmt.Errorf("%s: pfn %#x: %w", path, pfn, err)
		}
		for i := 0; ; {
			j := bytes.Index(data[i:], p)
			if j < 0 {
				break
			}
			at := i + j
			// Only whole markers count: the guest's heap also holds the
			// bare prefix it built them from.
			if n := whole(data[at+len(p):]); n > 0 {
				if !f(string(data[at:at+len(p)+n]), base+uint64(at)) {
					return nil
				}
			}
			i = at + 1
		}
		prev = pfn
	}
	return nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
