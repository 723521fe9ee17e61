package filter

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"
)

// fuzzWorlds are built once per profile and restored after each input.
var fuzzWorlds = map[string]*fuzzWorld{}

type fuzzWorld struct {
	w    *world
	orig []byte // section 0's first fuzzPFNs struct pages as built
}

const fuzzPFNs = 4096 // struct pages the input may overwrite: 64 vmemmap pages

func getFuzzWorld(pr profile) *fuzzWorld {
	if fw, ok := fuzzWorlds[pr.name]; ok {
		return fw
	}
	w := newWorld(pr, false)
	fw := &fuzzWorld{w: w, orig: bytes.Clone(w.phys.slice(w.secMap[0], fuzzPFNs*fakePageStruct))}
	fuzzWorlds[pr.name] = fw
	return fw
}

// FuzzClassify classifies struct pages overwritten with garbage, some of
// them unreadable: Classify must not panic, must not drop a page whose
// struct page it could not read, and must count what it drops.
//
// Input: profile, level, chunk size (2 bytes), a mask of 64 vmemmap pages
// to make unreadable (8 bytes), then bytes laid over the struct pages.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{0, 31, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 31, 16, 0, 0xff, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	seed := make([]byte, 12+64*8)
	seed[0], seed[1], seed[3] = 1, 31, 7
	for i := 12; i < len(seed); i += 64 {
		binary.LittleEndian.PutUint64(seed[i:], 1<<16|1<<6)      // a head
		binary.LittleEndian.PutUint64(seed[i+8:], uint64(i)|1)   // a tail
		binary.LittleEndian.PutUint32(seed[i+48:], 0xf0000000)   // buddy (6.12)
		binary.LittleEndian.PutUint64(seed[i+40:], uint64(i%61)) // order
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 12 {
			return
		}
		pr := profiles[int(data[0])%len(profiles)]
		level := int(data[1]) % (MaxLevel + 1)
		chunk := int(binary.LittleEndian.Uint16(data[2:]))%4096 + 1
		holes := binary.LittleEndian.Uint64(data[4:])
		body := data[12:]

		fw := getFuzzWorld(pr)
		w := fw.w
		region := w.phys.slice(w.secMap[0], fuzzPFNs*fakePageStruct)
		copy(region, body)
		for i := range 64 {
			if holes&(1<<i) != 0 {
				w.phys.holes[w.secMap[0]>>12+uint64(i)] = true
			}
		}
		defer func() {
			copy(region, fw.orig)
			clear(w.phys.holes)
		}()

		mem, info := w.memory(t)
		c, err := New(mem, info, Options{Level: Level(level)})
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
			if vp := p * fakePageStruct >> 12; vp < 64 && holes&(1<<vp) != 0 {
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
	f.Fuzz(func(t *testing.T, extra string) {
		info, err := reparse(base + extra)
		if err != nil {
			return
		}
		mem, _ := w.memory(t)
		c, err := New(mem, info, Options{Level: MaxLevel})
		if err != nil {
			return
		}
		var st Stats
		b := make([]byte, fakePFNs/8)
		if err := c.Classify(0, fakePFNs, b, &st); err != nil {
			t.Fatal(err)
		}
		n := uint64(0)
		for _, x := range b {
			n += uint64(bits.OnesCount8(x))
		}
		if n != st.Total() {
			t.Fatalf("%d excluded, stats %+v", n, st)
		}
	})
}
