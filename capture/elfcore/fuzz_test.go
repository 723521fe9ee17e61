package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
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

// FuzzKernelSegmentsARM64 runs KernelSegments on the synthetic arm64 core
// of TestKernelSegmentsARM64 with entries of its page tables overwritten
// (each 11 bytes of edits: table 0-5, entry, value) and its address size
// varied: whatever the tables say, every PT_LOAD added maps what they
// map, at the offset VMCOREINFO gives, inside the source's memory.
func FuzzKernelSegmentsARM64(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0, 0, 0, 3, 0x10, 0x28, 0x40, 0, 0, 0, 0}, uint8(1)) // the linear map's PUD points at the PGD
	f.Add([]byte{5, 0x10, 0, 0x03, 0x10, 0x21, 0x40, 0, 0, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, edits []byte, variant uint8) {
		type edit struct{ table, entry, value uint64 }
		var es []edit
		for i := 0; i+11 <= len(edits) && len(es) < 32; i += 11 {
			es = append(es, edit{uint64(edits[i] % 6), uint64(binary.LittleEndian.Uint16(edits[i+1:])) % 512,
				binary.LittleEndian.Uint64(edits[i+3:])})
		}
		content := func(pfn uint64, page []byte) {
			a64Content(pfn, page)
			for _, e := range es {
				if pfn<<12 == a64PGD+e.table<<12 {
					binary.LittleEndian.PutUint64(page[e.entry*8:], e.value)
				}
			}
		}
		info := a64Info
		switch variant % 4 {
		case 1:
			info = strings.Replace(info, "TCR_EL1_T1SZ)=0x10", "TCR_EL1_T1SZ)=0x19", 1) // 39 bits
		case 2:
			info = strings.Replace(info, "VA_BITS)=48", "VA_BITS)=52", 1)
		case 3:
			info = strings.Replace(strings.Replace(info, "VA_BITS)=48", "VA_BITS)=52", 1), "T1SZ)=0x10", "T1SZ)=0xc", 1)
		}
		bo := binary.LittleEndian
		notes := append(fixture.PRStatus(bo, elf.EM_AARCH64, 1, nil), fixture.VMCOREINFO(bo, info)...)
		im := fixture.Core{Machine: elf.EM_AARCH64, Notes: notes, Content: content,
			Loads: []fixture.Load{{Vaddr: a64RAM, Paddr: a64RAM, FileSize: a64RAMSize, MemSize: a64RAMSize}}}.Build()
		src, err := vmcore.NewFile(im, im.Size())
		if err != nil {
			t.Fatal(err)
		}
		km := KernelSegments(src)
		mem, err := kmem.New(src, src.VMCOREINFO, src.Machine)
		if err != nil {
			if km.Image+km.Linear != 0 {
				t.Fatalf("added PT_LOADs without page tables: %+v", km)
			}
			return
		}
		if len(km.Segments) != km.Image+1 {
			t.Fatalf("%d segments, %d image", len(km.Segments), km.Image)
		}
		for i, s := range km.Segments {
			if s.PhysAddr < a64RAM || s.PhysAddr+s.MemSize > a64RAM+a64RAMSize || s.MemSize == 0 {
				t.Fatalf("segment %+v outside the source's memory", s)
			}
			if i < km.Image {
				if s.VirtAddr-s.PhysAddr != a64VOff {
					t.Fatalf("image segment %+v not at kimage_voffset", s)
				}
				for a := uint64(0); a < s.MemSize; a += max(4096, s.MemSize/16) {
					if pa, _, err := mem.Translate(s.VirtAddr + a); err != nil || pa != s.PhysAddr+a {
						t.Fatalf("image segment %+v: %#x translates to %#x, %v", s, s.VirtAddr+a, pa, err)
					}
				}
			} else if kernelVA(s.VirtAddr) {
				if pa, _, err := mem.Translate(s.VirtAddr); err == nil && pa != s.PhysAddr {
					t.Fatalf("direct map %+v: translates to %#x", s, pa)
				}
			}
		}
	})
}
