package filter

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var testLevels = []Level{0, 1, 2, 4, 6, 8, 16, 18, 24, 31}

// TestSynthetic classifies the synthetic machine of every kernel layout at
// several levels and chunk sizes: the result must be the expected class of
// every page, whatever the chunking.
func TestSynthetic(t *testing.T) {
	for _, pr := range profiles {
		for _, static := range []bool{false, true} {
			name := pr.name
			if static {
				name += "/static"
			}
			t.Run(name, func(t *testing.T) {
				w := newWorld(pr, static)
				mem, info := w.memory(t)
				for _, level := range testLevels {
					c, err := New(mem, info, Options{Level: level, Logf: t.Logf})
					if err != nil {
						t.Fatal(err)
					}
					if d := c.Degraded(); len(d) != 0 {
						t.Errorf("level %d: degraded %q", level, d)
					}
					want, wantSt := w.expected(level)
					chunks := []int{fakePFNs, 2500, 1000}
					if level == MaxLevel {
						chunks = append(chunks, 4096, 7, fakeSecPages+5)
					}
					for _, chunk := range chunks {
						got, st := classifyChunks(t, c, fakePFNs, chunk)
						if !bytes.Equal(got, want) {
							t.Fatalf("level %d chunk %d: bitmap differs:\n%s", level, chunk, diffBits(got, want, w))
						}
						if st != wantSt {
							t.Fatalf("level %d chunk %d: stats %+v, want %+v", level, chunk, st, wantSt)
						}
					}
				}
			})
		}
	}
}

// TestSyntheticCounts pins the expected counts at -d 31 so that a broken
// world cannot pass by expecting nothing.
func TestSyntheticCounts(t *testing.T) {
	w := newWorld(profileByName("6.12"), false)
	_, st := w.expected(31)
	want := Stats{Cache: 1 + 1 + 4, CachePrivate: 1, User: 1 + 512 + 512 + 512 + 1,
		Free: 8 + 1 + 1024 + 512 - 128, HWPoison: 1, Offline: 1}
	if st != want {
		t.Fatalf("expected stats %+v, want %+v", st, want)
	}
}

// TestUnreadableKept: no page whose struct page cannot be read is dropped,
// even inside a free block whose head was read.
func TestUnreadableKept(t *testing.T) {
	w := newWorld(profileByName("6.1"), false)
	mem, info := w.memory(t)
	c, err := New(mem, info, Options{Level: 31})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := classifyChunks(t, c, fakePFNs, 100)
	n := 0
	for p := range w.unreadable {
		if got[p/8]&(1<<(p%8)) != 0 {
			t.Errorf("pfn %d excluded, its struct page is unreadable", p)
		}
		n++
	}
	if n < 2*64+2*fakeSecPages {
		t.Fatalf("only %d unreadable pfns", n)
	}
	// Around the holes the free block is dropped.
	for _, p := range []uint64{fakeSecPages, fakeSecPages + 191, fakeSecPages + 256, fakeSecPages + 511} {
		if got[p/8]&(1<<(p%8)) == 0 {
			t.Errorf("pfn %d kept, want free", p)
		}
	}
}

// TestChunkOrder: chunks out of order must not drop anything that should
// be kept; runs crossing a chunk are then kept in part.
func TestChunkOrder(t *testing.T) {
	w := newWorld(profileByName("6.12"), false)
	mem, info := w.memory(t)
	c, err := New(mem, info, Options{Level: 31})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := w.expected(31)
	var st Stats
	got := make([]byte, fakePFNs/8)
	// Backwards, 1000 pages at a time.
	for p := (fakePFNs/1000 - 1) * 1000; p >= 0; p -= 1000 {
		k := min(1000, fakePFNs-p)
		b := make([]byte, (k+7)/8)
		if err := c.Classify(uint64(p), k, b, &st); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			if b[i/8]&(1<<(i%8)) != 0 {
				q := p + i
				got[q/8] |= 1 << (q % 8)
			}
		}
	}
	for i := range got {
		if extra := got[i] &^ want[i]; extra != 0 {
			t.Fatalf("pfns near %d excluded, want kept", i*8)
		}
	}
	if st.Total() == 0 {
		t.Fatal("nothing excluded")
	}
}

// TestDegraded: VMCOREINFO without what a class needs switches the class
// off, says so once, and keeps those pages; other classes work on.
func TestDegraded(t *testing.T) {
	tests := []struct {
		profile string
		drop    []string
		level   Level
		want    []string // Degraded lines, by prefix
		off     []kind   // kinds now kept
	}{
		{"6.12", []string{"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"}, 31,
			[]string{"bit 16 (free) off: VMCOREINFO lacks NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"}, []kind{kFree}},
		{"6.12", []string{"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"}, 8, nil, []kind{kFree}},
		{"6.12", []string{"NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)"}, 31,
			[]string{"bit 8 (user) off: VMCOREINFO lacks NUMBER(PG_slab) and NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)"}, []kind{kUser}},
		{"6.1", []string{"OFFSET(page.mapping)"}, 31,
			[]string{"bit 2 (cache) off: VMCOREINFO lacks OFFSET(page.mapping)",
				"bit 4 (cache, private) off: VMCOREINFO lacks OFFSET(page.mapping)",
				"bit 8 (user) off: VMCOREINFO lacks OFFSET(page.mapping)"},
			[]kind{kCache, kCachePriv, kUser}},
		{"6.1", []string{"NUMBER(PG_lru)", "NUMBER(PG_private)"}, 6,
			[]string{"bit 2 (cache) off: VMCOREINFO lacks NUMBER(PG_lru), NUMBER(PG_private)",
				"bit 4 (cache, private) off: VMCOREINFO lacks NUMBER(PG_lru), NUMBER(PG_private)"},
			[]kind{kCache, kCachePriv}},
		{"6.1", []string{"OFFSET(page.private)"}, 16,
			[]string{"bit 16 (free) off: VMCOREINFO lacks OFFSET(page.private)"}, []kind{kFree}},
		{"6.1", []string{"OFFSET(page.compound_head)"}, 31,
			[]string{"bits 2, 4, 8, 16 off: VMCOREINFO lacks OFFSET(page.compound_head)"},
			[]kind{kCache, kCachePriv, kUser, kFree, kHWPoison, kOffline}},
		{"6.1", []string{"NUMBER(PG_hwpoison)", "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)"}, 31, nil,
			[]kind{kHWPoison, kOffline}},
		{"6.12", []string{"NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)"}, 31,
			[]string{"bit 8 (user) keeps hugetlb pages"}, nil},
		{"6.16", []string{"LENGTH(zone.free_area)"}, 31,
			[]string{"bit 16 (free) keeps unaccepted memory: VMCOREINFO lacks LENGTH(zone.free_area)"}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%s-%d", tt.profile, strings.Join(tt.drop, "+"), tt.level), func(t *testing.T) {
			w := newWorld(profileByName(tt.profile), false)
			mem, info := w.memory(t, tt.drop...)
			c, err := New(mem, info, Options{Level: tt.level})
			if err != nil {
				t.Fatal(err)
			}
			d := c.Degraded()
			if len(d) != len(tt.want) {
				t.Fatalf("Degraded() = %q, want %q", d, tt.want)
			}
			for i := range d {
				if !strings.HasPrefix(d[i], tt.want[i]) {
					t.Errorf("Degraded()[%d] = %q, want %q…", i, d[i], tt.want[i])
				}
			}
			for p, k := range w.want {
				if slices.Contains(tt.off, k) {
					w.want[p] = kKeep
				}
			}
			switch tt.profile + strings.Join(tt.drop, "") {
			case "6.12NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)":
				w.expect(1536, 512, kKeep) // the hugetlb page
			case "6.16LENGTH(zone.free_area)":
				w.expect(8192, 1024, kKeep) // unaccepted memory
			}
			want, wantSt := w.expected(tt.level)
			got, st := classifyChunks(t, c, fakePFNs, 3000)
			if !bytes.Equal(got, want) {
				t.Fatalf("bitmap differs:\n%s", diffBits(got, want, w))
			}
			if st != wantSt {
				t.Fatalf("stats %+v, want %+v", st, wantSt)
			}
		})
	}
}

// TestNoHeadMask: without PG_head_mask compound heads are classified alone
// and their tails kept.
func TestNoHeadMask(t *testing.T) {
	w := newWorld(profileByName("6.12"), false)
	mem, info := w.memory(t, "NUMBER(PG_head_mask)")
	c, err := New(mem, info, Options{Level: 31})
	if err != nil {
		t.Fatal(err)
	}
	d := c.Degraded()
	if len(d) != 1 || !strings.Contains(d[0], "only their head page is dropped: VMCOREINFO lacks NUMBER(PG_head_mask)") {
		t.Fatalf("Degraded() = %q", d)
	}
	got, st := classifyChunks(t, c, fakePFNs, fakePFNs)
	if got[512/8]&1 == 0 {
		t.Error("THP head kept")
	}
	for p := 513; p < 1024; p++ {
		if got[p/8]&(1<<(p%8)) != 0 {
			t.Fatalf("THP tail %d excluded", p)
		}
	}
	if st.User != 5 { // pfn 20, THP heads 512 and 32256, order-60 head 64, pfn 32768+600
		t.Errorf("user pages %d", st.User)
	}
}

func TestNewErrors(t *testing.T) {
	w := newWorld(profileByName("6.1"), false)
	for _, drop := range []string{"SIZE(page)", "OFFSET(page.flags)", "SYMBOL(mem_section)",
		"SIZE(mem_section)", "OFFSET(mem_section", "NUMBER(SECTION_SIZE_BITS)", "NUMBER(MAX_PHYSMEM_BITS)"} {
		mem, info := w.memory(t, drop)
		if _, err := New(mem, info, Options{Level: 31}); !errors.Is(err, ErrLayout) {
			t.Errorf("without %s: err = %v", drop, err)
		}
	}
	mem, info := w.memory(t)
	for _, level := range []Level{-1, 32} {
		if _, err := New(mem, info, Options{Level: level}); !errors.Is(err, ErrLevel) {
			t.Errorf("level %d: err = %v", level, err)
		}
	}
	// LENGTH(mem_section) that fits no layout.
	w.lengthMemSection = 1000
	mem, info = w.memory(t)
	if _, err := New(mem, info, Options{Level: 31}); !errors.Is(err, ErrLayout) {
		t.Errorf("LENGTH(mem_section)=1000: err = %v", err)
	}
	// Values that do not fit.
	for _, bad := range []string{"SIZE(page)=8", "SIZE(page)=100000", "NUMBER(SECTION_SIZE_BITS)=60",
		"SIZE(mem_section)=100000", "PAGESIZE=4097"} {
		w := newWorld(profileByName("6.1"), false)
		key, _, _ := strings.Cut(bad, "=")
		mem, info := w.memory(t, key+"=")
		info2, err := reparse(info.String() + bad + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(mem, info2, Options{Level: 31}); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestClassifyArgs(t *testing.T) {
	w := newWorld(profileByName("6.12"), false)
	mem, info := w.memory(t)
	c, err := New(mem, info, Options{Level: 31})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Classify(0, 17, make([]byte, 2), nil); err == nil {
		t.Error("short bitmap accepted")
	}
	if err := c.Classify(^uint64(0)-3, 8, make([]byte, 1), nil); err == nil {
		t.Error("overflowing range accepted")
	}
	// Bits past n are left alone; bits below n are written.
	b := []byte{0xff, 0xff, 0xff}
	if err := c.Classify(0, 12, b, nil); err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || b[1] != 0xf0 || b[2] != 0xff {
		t.Errorf("bitmap %x", b)
	}
	// Pages far past the end of physical memory (no section) are kept.
	b = []byte{0xff}
	if err := c.Classify(1<<40, 8, b, nil); err != nil || b[0] != 0 {
		t.Errorf("past MAX_PHYSMEM_BITS: %x %v", b, err)
	}
	// Level 0 reads nothing but still excludes poisoned and offline pages.
	c0, err := New(mem, info, Options{Level: 0})
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if _, st = classifyChunks(t, c0, fakePFNs, 512); st != (Stats{HWPoison: 1, Offline: 1}) {
		t.Errorf("level 0: %+v", st)
	}
}
