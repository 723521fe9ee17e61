package kexec

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Names of /proc/iomem resources the classic loader looks for, spelled as
// the kernel spells them (kernel/resource.c, arch/x86/kernel/e820.c).
const (
	iomemSystemRAM   = "System RAM"
	iomemCrashKernel = "Crash kernel"
	iomemACPITables  = "ACPI Tables"
	iomemACPINVS     = "ACPI Non-volatile Storage"
	iomemReserved    = "Reserved" // "reserved" before Linux 5.5
	iomemKernelCode  = "Kernel code"
	iomemKernelBss   = "Kernel bss"
)

// maxIOMemLines bounds what ParseIOMem reads: a real /proc/iomem has a few
// hundred lines.
const maxIOMemLines = 1 << 16

// A Range is an inclusive physical address range [Start, End], as
// /proc/iomem writes them.
type Range struct {
	Start, End uint64
}

// Size is the number of bytes in r.
func (r Range) Size() uint64 { return r.End - r.Start + 1 }

func (r Range) String() string { return fmt.Sprintf("%#x-%#x", r.Start, r.End) }

// An IOMemResource is one line of /proc/iomem.
type IOMemResource struct {
	Range
	Name  string
	Depth int // indentation level: 0 for top-level resources
}

// ParseIOMem reads /proc/iomem. It fails on a line it cannot read rather
// than guess, and on a file where every address is 0 (read without
// CAP_SYS_ADMIN, the kernel hides them).
func ParseIOMem(r io.Reader) ([]IOMemResource, error) {
	var res []IOMemResource
	sc := bufio.NewScanner(r)
	nonzero := false
	for n := 1; sc.Scan(); n++ {
		if n > maxIOMemLines {
			return nil, fmt.Errorf("kexec: iomem: more than %d lines", maxIOMemLines)
		}
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		rng, name, ok := strings.Cut(strings.TrimSpace(line), " : ")
		if !ok {
			return nil, fmt.Errorf("kexec: iomem line %d: %q: no \" : \"", n, line)
		}
		a, b, ok := strings.Cut(rng, "-")
		if !ok {
			return nil, fmt.Errorf("kexec: iomem line %d: %q: no range", n, line)
		}
		start, err1 := strconv.ParseUint(a, 16, 64)
		end, err2 := strconv.ParseUint(b, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("kexec: iomem line %d: bad range %q", n, rng)
		}
		nonzero = nonzero || end != 0
		res = append(res, IOMemResource{Range: Range{start, end}, Name: name, Depth: indent / 2})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kexec: iomem: %w", err)
	}
	if len(res) > 0 && !nonzero {
		return nil, fmt.Errorf("kexec: iomem: every address reads 0: the kernel hides them from processes without CAP_SYS_ADMIN")
	}
	return res, nil
}

// find returns the ranges of the resources named name (any depth), sorted.
func find(res []IOMemResource, name string, topOnly bool) []Range {
	var out []Range
	for _, r := range res {
		if (!topOnly || r.Depth == 0) && strings.EqualFold(r.Name, name) {
			out = append(out, r.Range)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// subtract returns rs with every range of cut removed; rs and cut sorted.
func subtract(rs, cut []Range) []Range {
	var out []Range
	for _, r := range rs {
		pieces := []Range{r}
		for _, c := range cut {
			var next []Range
			for _, p := range pieces {
				if c.End < p.Start || c.Start > p.End {
					next = append(next, p)
					continue
				}
				if c.Start > p.Start {
					next = append(next, Range{p.Start, c.Start - 1})
				}
				if c.End < p.End {
					next = append(next, Range{c.End + 1, p.End})
				}
			}
			pieces = next
		}
		out = append(out, pieces...)
	}
	return out
}
