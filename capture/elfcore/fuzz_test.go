package elfcore

import (
	"errors"
	"testing"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// FuzzSave saves random layouts with random keep-sets and reads them back.
// Each 4 bytes of segs describe one source PT_LOAD in 512-byte units (so
// segments start and end inside pages): start, length, stored length, and
// whether it has a virtual address.
func FuzzSave(f *testing.F) {
	f.Add([]byte{8, 4, 4, 1}, uint64(0), uint8(1), uint8(0))
	// x86_64-like: kernel text inside a RAM range.
	f.Add([]byte{64, 16, 16, 1, 8, 200, 200, 1, 3, 9, 4, 0}, uint64(0x5555), uint8(2), uint8(8))
	// touching and overlapping ranges, a partially stored one.
	f.Add([]byte{0, 40, 40, 1, 40, 40, 20, 1, 60, 40, 40, 0, 7, 1, 1, 1}, uint64(77), uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, segs []byte, seed uint64, minRun, maxPhdrs uint8) {
		var loads []fixture.Load
		for i := 0; i+4 <= len(segs) && len(loads) < 6; i += 4 {
			start := uint64(segs[i]) * 512 * 8
			memsz := uint64(segs[i+1]) * 512
			filesz := min(uint64(segs[i+2])*512, memsz)
			var vaddr uint64
			if segs[i+3]&1 != 0 {
				vaddr = 0xffff888000000000 + start
			}
			if segs[i+3]&2 != 0 {
				start += 512 * uint64(segs[i+3]>>2)
			}
			loads = append(loads, fixture.Load{Vaddr: vaddr, Paddr: start, FileSize: filesz, MemSize: memsz})
		}
		if len(loads) == 0 {
			return
		}
		src, _ := newSource(t, loads, -1)
		density := seed % 4
		keep := func(pfn uint64) bool {
			switch density {
			case 0:
				return mix(pfn^seed)%3 != 0
			case 1:
				return mix(pfn/5^seed)%2 == 0
			case 2:
				return mix(pfn^seed)%5 == 0
			}
			return mix(pfn/17^seed)%3 == 0
		}
		opts := Options{MinExcludedRun: uint64(minRun%8) + 1, MaxPhdrs: int(maxPhdrs%64) + 2}
		var m fixture.MemFile
		st, err := Save(&m, src, keep, opts)
		if errors.Is(err, ErrTooManySegments) {
			return
		}
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		out := checkELF(t, m.Bytes(), src)
		if n := 1 + len(out.Segments); n > opts.MaxPhdrs {
			t.Fatalf("%d program headers, cap %d", n, opts.MaxPhdrs)
		}
		checkVirt(t, out, src)
		checkPages(t, out, src, keep)
		// Segments that two source PT_LOADs cover come out whole: each
		// output segment of a source PT_LOAD wholly inside another stores
		// all its memory, or the source does not store it all.
		for i, s := range src.Segments {
			if !insideAnother(src.Segments, i) || !storesAll(src, s) {
				continue
			}
			found := false
			for _, o := range out.Segments {
				if o.PhysAddr == s.PhysAddr && o.MemSize == s.MemSize && o.FileSize == o.MemSize {
					found = true
				}
			}
			if !found && s.MemSize > 0 {
				t.Errorf("segment %+v inside another is not whole in the output", s)
			}
		}
		if st.KeptPages > uint64(len(m.Bytes()))/4096+uint64(len(out.Segments))+1 {
			t.Errorf("stats %+v for a %d-byte file", st, len(m.Bytes()))
		}
	})
}

func insideAnother(segs []vmcore.Segment, i int) bool {
	s := segs[i]
	for j, o := range segs {
		if j != i && o.PhysAddr <= s.PhysAddr && s.PhysAddr+s.MemSize <= o.PhysAddr+o.MemSize {
			return true
		}
	}
	return false
}

func storesAll(f *vmcore.File, s vmcore.Segment) bool {
	for a := s.PhysAddr; a < s.PhysAddr+s.MemSize; {
		_, n, ok := f.FileOffset(a)
		if !ok {
			return false
		}
		a += n
	}
	return true
}
