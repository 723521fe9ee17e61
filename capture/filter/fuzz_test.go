package filter

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// fuzzWorlds are built once per profile and restored after each input.
var fuzzWorlds = map[string]*fuzzWorld{}

type fuzzWorld struct {
	w    *world
	orig []byte // section 0's first fuzzPFNs struct pages as built
	// The inputs change struct pages and holes in the vmemmap, never page
	// tables (all kmem caches): one view of memory serves them all.
	mem  *kmem.Memory
	info *vmcoreinfo.Info
}

// fuzzPFNs is how many struct pages the input may overwrite: 4 vmemmap
// pages. Each input classifies twice that many pfns: small enough that an
// input takes tens of microseconds.
const fuzzPFNs = 256

func getFuzzWorld(t testing.TB, pr profile) *fuzzWorld {
	if fw, ok := fuzzWorlds[pr.name]; ok {
		return fw
	}
	w := newWorld(pr, false)
	fw := &fuzzWorld{w: w, orig: bytes.Clone(w.phys.slice(w.secMap[0], fuzzPFNs*fakePageStruct))}
	fw.mem, fw.info = w.memory(t)
	fuzzWorlds[pr.name] = fw
	return fw
}

// FuzzClassify classifies struct pages overwritten with garbage, some of
// them unreadable: Classify must not panic, must not drop a page whose
// struct page it could not read, and must count what it drops.
//
// Input: profile, level, chunk size (2 bytes), a mask of the vmemmap
// pages of the first fuzzPFNs struct pages to make unreadable (4 bits), then
// up to 16 records of 8 bytes, each writing into one struct page: pfn (2
// bytes, modulo fuzzPFNs), offset in the struct page, a shift of the
// value by 0 or 32 bits (bit 0), the value (4 bytes). A few records make
// any struct page: inputs stay small, so minimizing one is quick.
func FuzzClassify(f *testing.F) {
	rec := func(pfn uint16, off, shift byte, v uint32) []byte {
		b := []byte{byte(pfn), byte(pfn >> 8), off, shift, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[4:], v)
		return b
	}
	f.Add([]byte{0, 31, 100, 0, 0})
	f.Add([]byte{3, 31, 16, 0, 0xff})
	seed := []byte{1, 31, 7, 0, 0}
	for p := uint16(0); p < 64; p += 8 {
		seed = append(seed, rec(p, 0, 0, 1<<16|1<<6)...)       // a head
		seed = append(seed, rec(p+1, 8, 0, uint32(p)*64|1)...) // its tail
		seed = append(seed, rec(p+2, 48, 0, 0xf0000000)...)    // buddy (6.12)
		seed = append(seed, rec(p+2, 40, 0, uint32(p%11))...)  // its order
		seed = append(seed, rec(p+3, 24, 1, 0xffff8880)...)    // a mapping
		seed = append(seed, rec(p+4, 0, 1, 0xffffffff)...)     // all flags
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 5 {
			return
		}
		pr := profiles[int(data[0])%len(profiles)]
		level := int(data[1]) % (MaxLevel + 1)
		chunk := int(binary.LittleEndian.Uint16(data[2:]))%(2*fuzzPFNs) + 1
		holes := data[4]
		recs := data[5:]

		fw := getFuzzWorld(t, pr)
		w := fw.w
		region := w.phys.slice(w.secMap[0], fuzzPFNs*fakePageStruct)
		var touched []int // struct pages written, to restore
		// At most 16 records: bytes past them change nothing, and the
		// fuzzer cuts them first when it minimizes an input.
		for ; len(recs) >= 8 && len(touched) < 16; recs = recs[8:] {
			p := int(binary.LittleEndian.Uint16(recs)) % fuzzPFNs
			off := int(recs[2]) % (fakePageStruct - 3)
			v := uint64(binary.LittleEndian.Uint32(recs[4:]))
			if recs[3]&1 != 0 {
				v <<= 32
			}
			sp := region[p*fakePageStruct : (p+1)*fakePageStruct]
			if recs[3]&1 != 0 && off <= fakePageStruct-8 {
				binary.LittleEndian.PutUint64(sp[off:], v)
			} else {
				binary.LittleEndian.PutUint32(sp[off:], uint32(v))
			}
			touched = append(touched, p)
		}
		for i := range fuzzPFNs * fakePageStruct >> 12 {
			if holes&(1<<i) != 0 {
				w.phys.holes[w.secMap[0]>>12+uint64(i)] = true
			}
		}
		defer func() {
			for _, p := range touched {
				copy(region[p*fakePageStruct:(p+1)*fakePageStruct], fw.orig[p*fakePageStruct:])
			}
			clear(w.phys.holes)
		}()

		c, err := New(fw.mem, fw.info, Options{Level: Level(level)})
		if err != nil {
			t.Fatal(err)
		}
		const total = 2 * fuzzPFNs
		got, st := classifyChunks(t, c, total, chunk)
		n := uint64(0)
		for _, b := range got {
			n += uint64(bits.OnesCount8(b))
		}
		if n != st.Total() {
			t.Fatalf("%d pages excluded, stats count %d (%+v)", n, st.Total(), st)
		}
		for p := uint64(0); p < total; p++ {
			if got[p/8]&(1<<(p%8)) == 0 {
				continue
			}
			if vp := p * fakePageStruct >> 12; vp < fuzzPFNs*fakePageStruct>>12 && holes&(1<<vp) != 0 {
				t.Fatalf("pfn %d excluded, its struct page is in unreadable vmemmap page %d", p, vp)
			}
		}
	})
}

// FuzzVMCOREINFO overrides VMCOREINFO entries of the synthetic 6.12
// machine with arbitrary lines: New must fail or return a classifier that
// classifies without panicking.
func FuzzVMCOREINFO(f *testing.F) {
	for _, s := range []string{
		"SIZE(page)=9223372036854775807",
		"OFFSET(page.mapping)=9223372036854775807\nOFFSET(page.compound_head)=-9223372036854775808",
		"OFFSET(folio._folio_order)=-9223372036854775808\nOFFSET(page.compound_order)=63",
		"NUMBER(SECTION_SIZE_BITS)=13\nNUMBER(MAX_PHYSMEM_BITS)=64",
		"LENGTH(mem_section)=524288\nSIZE(mem_section)=4096",
		"OFFSET(mem_section.section_mem_map)=9223372036854775807",
		"NUMBER(PG_head_mask)=-9223372036854775808\nNUMBER(PG_lru)=64",
		"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=4294967296\nLENGTH(zone.free_area)=64",
		"PAGESIZE=262144",
	} {
		f.Add(s)
	}
	w := newWorld(profileByName("6.12"), false)
	base := w.pr.vmcoreinfo(w)
	// The machine's memory is read only: one view serves every input.
	mem, _ := w.memory(f)
	f.Fuzz(func(t *testing.T, extra string) {
		info, err := reparse(base + extra)
		if err != nil {
			return
		}
		c, err := New(mem, info, Options{Level: MaxLevel})
		if err != nil {
			return
		}
		// The start of each section (with struct pages, mapped by 4 KiB
		// pages with a hole, present without mem_map, absent): every kind
		// of section for a few hundred pfns, not 131072 pfns per input.
		for sec := uint64(0); sec < fakeSections; sec++ {
			var st Stats
			b := make([]byte, fuzzPFNs/8)
			if err := c.Classify(sec*fakeSecPages, fuzzPFNs, b, &st); err != nil {
				t.Fatal(err)
			}
			n := uint64(0)
			for _, x := range b {
				n += uint64(bits.OnesCount8(x))
			}
			if n != st.Total() {
				t.Fatalf("section %d: %d excluded, stats %+v", sec, n, st)
			}
		}
	})
}
