package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// fakeTables maps virtual pages as listed: each entry maps [va, va+n) at
// pa, in blocks of n bytes; read errors where err is set.
type fakeTables []struct {
	va, n, pa uint64
	err       error
}

func (ft fakeTables) translate(va uint64) (uint64, uint64, error) {
	for _, m := range ft {
		if va >= m.va && va-m.va < m.n {
			if m.err != nil {
				return 0, 0, m.err
			}
			return m.pa + (va - m.va), m.n - (va - m.va), nil
		}
	}
	return 0, 0, fmt.Errorf("%w: %#x", kmem.ErrNotMapped, va)
}

func TestImageRuns(t *testing.T) {
	const (
		start = 0xffff800080010000
		off   = 0xffff800040000000 // virtual - physical
		ps    = 4096
		MiB   = 1 << 20
	)
	img := func(va, n uint64) struct {
		va, n, pa uint64
		err       error
	} {
		return struct {
			va, n, pa uint64
			err       error
		}{va, n, va - off, nil}
	}
	tests := []struct {
		name   string
		tables fakeTables
		want   []vaRun
	}{
		{"one run, then nothing", fakeTables{img(start, 8*MiB)}, []vaRun{{start, start + 8*MiB}}},
		// The init sections, freed and unmapped after boot, between
		// rodata and data.
		{"text, init hole, data", fakeTables{img(start, 24*MiB), img(start+30*MiB, 4*MiB)},
			[]vaRun{{start, start + 24*MiB}, {start + 30*MiB, start + 34*MiB}}},
		{"a hole longer than the image before it ends it", fakeTables{img(start, 2*MiB), img(start+5*MiB, 4*MiB)},
			[]vaRun{{start, start + 2*MiB}}},
		{"a page mapped elsewhere ends it", fakeTables{img(start, 4*MiB), {start + 4*MiB, ps, 0x1234000, nil}, img(start+4*MiB+ps, MiB)},
			[]vaRun{{start, start + 4*MiB}}},
		{"mapped elsewhere after a hole", fakeTables{img(start, 4*MiB), {start + 5*MiB, ps, 0x1234000, nil}},
			[]vaRun{{start, start + 4*MiB}}},
		{"start not mapped", fakeTables{img(start+ps, 4*MiB)}, nil},
		{"start mapped elsewhere", fakeTables{{start, 4 * MiB, 0x1000000, nil}}, nil},
		{"unreadable tables stop it", fakeTables{img(start, MiB), {start + MiB, ps, 0, errors.New("read error")}, img(start+MiB+ps, MiB)},
			[]vaRun{{start, start + MiB}}},
		// A 2 MiB block covers the start: the run begins at the start's
		// page, not the block's.
		{"block", fakeTables{{start - 0x10000, 2 * MiB, start - 0x10000 - off, nil}}, []vaRun{{start, start - 0x10000 + 2*MiB}}},
		{"bounded", fakeTables{img(start, 2<<30)}, []vaRun{{start, start + 2<<30}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := imageRuns(tt.tables.translate, start, off, ps)
			if !slices.Equal(got, tt.want) {
				t.Errorf("runs %x, want %x", got, tt.want)
			}
		})
	}
}

// A synthetic arm64 machine, 4 KiB pages, 48-bit addresses: 64 MiB of RAM
// at 1 GiB, linear map at PAGE_OFFSET in 2 MiB blocks, the kernel image
// at physical 0x40200000 mapped with pages from _stext: text and rodata
// (1 MiB), the init sections unmapped (256 KiB), data (512 KiB).
const (
	a64RAM        = 0x40000000
	a64RAMSize    = 64 << 20
	a64PageOffset = 0xffff000000000000
	a64Text       = 0xffff800080000000 // _text
	a64Stext      = a64Text + 0x10000
	a64ImagePhys  = 0x40200000
	a64VOff       = a64Text - a64ImagePhys // kimage_voffset
	a64PGD        = 0x40280000             // swapper_pg_dir, physical: in rodata
	a64PUDLin     = a64PGD + 0x1000
	a64PMDLin     = a64PGD + 0x2000
	a64PUDImg     = a64PGD + 0x3000
	a64PMDImg     = a64PGD + 0x4000
	a64PTEImg     = a64PGD + 0x5000
	a64DataStart  = a64Stext + 0x100000 + 0x40000
	a64End        = a64DataStart + 0x80000
)

// a64Content fills the page tables, and the pattern elsewhere.
func a64Content(pfn uint64, page []byte) {
	fixture.Pattern(pfn, page)
	le := binary.LittleEndian
	put := func(i, v uint64) { le.PutUint64(page[i*8:], v) }
	switch pfn << 12 {
	case a64PGD, a64PUDLin, a64PMDLin, a64PUDImg, a64PMDImg, a64PTEImg:
		clear(page)
	}
	switch pfn << 12 {
	case a64PGD:
		put(0, a64PUDLin|3)                   // linear map: bits 47:39 of PAGE_OFFSET are 0
		put((a64Text>>39)&0x1ff, a64PUDImg|3) // the image
	case a64PUDLin:
		put(0, a64PMDLin|3)
	case a64PMDLin:
		for i := uint64(0); i < a64RAMSize>>21; i++ {
			put(i, (a64RAM+i<<21)|0x701) // 2 MiB blocks
		}
	case a64PUDImg:
		put((a64Text>>30)&0x1ff, a64PMDImg|3)
	case a64PMDImg:
		put((a64Text>>21)&0x1ff, a64PTEImg|3)
	case a64PTEImg:
		for va := uint64(a64Stext); va < a64End; va += 4096 {
			if va >= a64Stext+0x100000 && va < a64DataStart {
				continue // init, freed
			}
			put((va>>12)&0x1ff, (va-a64VOff)|0x703)
		}
	}
}

const a64Info = "OSRELEASE=6.12.0-test\nPAGESIZE=4096\n" +
	"SYMBOL(swapper_pg_dir)=ffff800080080000\nSYMBOL(_stext)=ffff800080010000\n" +
	"NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffff80003fe00000\nNUMBER(PHYS_OFFSET)=0x40000000\n" +
	"NUMBER(TCR_EL1_T1SZ)=0x10\nKERNELOFFSET=0\n"

func a64Source(t *testing.T, info string, loads []fixture.Load) *vmcore.File {
	t.Helper()
	if a64PGD+a64VOff != 0xffff800080080000 || a64VOff != 0xffff80003fe00000 {
		t.Fatalf("the test's VMCOREINFO does not match its layout")
	}
	bo := binary.LittleEndian
	notes := fixture.PRStatus(bo, elf.EM_AARCH64, 1, nil)
	notes = append(notes, fixture.VMCOREINFO(bo, info)...)
	im := fixture.Core{Machine: elf.EM_AARCH64, Notes: notes, Loads: loads, Content: a64Content}.Build()
	f, err := vmcore.NewFile(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestKernelSegmentsARM64 adds the image and direct-map addresses to a
// physical-only arm64 core from its own page tables, leaves a core the
// kernel wrote as it is, and warns where it cannot.
func TestKernelSegmentsARM64(t *testing.T) {
	ram := func(va uint64) []fixture.Load {
		return []fixture.Load{{Vaddr: va, Paddr: a64RAM, FileSize: a64RAMSize, MemSize: a64RAMSize}}
	}
	image := []vmcore.Segment{
		{VirtAddr: a64Stext, PhysAddr: a64Stext - a64VOff, MemSize: 0x100000, FileSize: 0x100000},
		{VirtAddr: a64DataStart, PhysAddr: a64DataStart - a64VOff, MemSize: 0x80000, FileSize: 0x80000},
	}
	linear := vmcore.Segment{VirtAddr: a64PageOffset, PhysAddr: a64RAM, MemSize: a64RAMSize, FileSize: a64RAMSize}
	physical := func(va uint64) vmcore.Segment {
		return vmcore.Segment{VirtAddr: va, PhysAddr: a64RAM, MemSize: a64RAMSize, FileSize: a64RAMSize}
	}
	drop := func(entry string) string {
		i := strings.Index(a64Info, entry)
		j := strings.IndexByte(a64Info[i:], '\n')
		return a64Info[:i] + a64Info[i+j+1:]
	}
	tests := []struct {
		name  string
		info  string
		loads []fixture.Load
		want  []vmcore.Segment
		warn  string // in the warnings; "" none
	}{
		{"QEMU: p_vaddr = p_paddr", a64Info, ram(a64RAM), append(slices.Clone(image), linear), ""},
		{"p_vaddr 0", a64Info, ram(0), append(slices.Clone(image), linear), ""},
		{"the kernel's: left alone", a64Info,
			append([]fixture.Load{{Vaddr: a64Text, Paddr: a64ImagePhys, FileSize: 0x300000, MemSize: 0x300000}}, ram(a64PageOffset)...),
			[]vmcore.Segment{{VirtAddr: a64Text, PhysAddr: a64ImagePhys, MemSize: 0x300000, FileSize: 0x300000}, linear}, ""},
		{"no kimage_voffset", drop("NUMBER(kimage_voffset)"), ram(0), []vmcore.Segment{physical(0)}, "kimage_voffset"},
		{"no _stext", drop("SYMBOL(_stext)"), ram(0), []vmcore.Segment{physical(0)}, "SYMBOL(_stext)"},
		// A PHYS_OFFSET the page tables do not confirm: the direct map
		// is left out, the image is still added.
		{"wrong PHYS_OFFSET", strings.Replace(a64Info, "PHYS_OFFSET)=0x40000000", "PHYS_OFFSET)=0x40200000", 1), ram(0),
			append(slices.Clone(image), physical(0)), "no kernel virtual address"},
		{"no PHYS_OFFSET", drop("NUMBER(PHYS_OFFSET)"), ram(0), append(slices.Clone(image), physical(0)), ""},
		{"swapper_pg_dir elsewhere", strings.Replace(a64Info, "swapper_pg_dir)=ffff800080080000", "swapper_pg_dir)=ffff800080088000", 1), ram(0),
			[]vmcore.Segment{physical(0)}, "no kernel-image PT_LOAD added"},
		// The page tables are not in the dump: nothing is confirmed.
		{"the tables beyond the dump", a64Info, []fixture.Load{{Paddr: a64RAM, FileSize: 0x200000, MemSize: 0x200000}},
			[]vmcore.Segment{{PhysAddr: a64RAM, MemSize: 0x200000, FileSize: 0x200000}}, "no kernel-image PT_LOAD added"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := a64Source(t, tt.info, tt.loads)
			checkKernelSegments(t, src, tt.want, tt.warn)
		})
	}
}

// checkKernelSegments checks KernelSegments of src against want (file
// offsets aside: they are the source's) and its warnings against warn ("":
// none; else a part of them).
func checkKernelSegments(t *testing.T, src *vmcore.File, want []vmcore.Segment, warn string) {
	t.Helper()
	km := KernelSegments(src)
	got := slices.Clone(km.Segments)
	for i := range got {
		got[i].Offset = 0
	}
	if !slices.Equal(got, want) {
		t.Errorf("segments\n%x\nwant\n%x", got, want)
	}
	w := strings.Join(km.Warnings, "; ")
	if warn == "" && w != "" || !strings.Contains(w, warn) {
		t.Errorf("warnings %q, want %q", w, warn)
	}
}

// TestKernelSegmentsWritten writes the amended segments: the file reads
// back with the image at its virtual addresses over the same data as the
// RAM, at every dump level's kind of keep-set.
func TestKernelSegmentsWritten(t *testing.T) {
	src := a64Source(t, a64Info, []fixture.Load{{Vaddr: a64RAM, Paddr: a64RAM, FileSize: a64RAMSize, MemSize: a64RAMSize}})
	km := KernelSegments(src)
	if km.Image != 2 || km.Linear != 1 {
		t.Fatalf("image %d, linear %d", km.Image, km.Linear)
	}
	// Keep the page tables and one page in four: the image's dropped
	// pages stay in the file (zero-filled), as the kernel text's do.
	keep := func(pfn uint64) bool { return pfn%4 == 0 || pfn<<12 >= a64PGD && pfn<<12 <= a64PTEImg }
	out := filepath.Join(t.TempDir(), "out")
	fh, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Save(fh, src, keep, Options{Segments: km.Segments}); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var text, data, lin bool
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		switch {
		case p.Vaddr == a64Stext:
			text = p.Paddr == a64Stext-a64VOff && p.Memsz == 0x100000 && p.Filesz == p.Memsz
		case p.Vaddr == a64DataStart:
			data = p.Paddr == a64DataStart-a64VOff && p.Memsz == 0x80000 && p.Filesz == p.Memsz
		case p.Vaddr>>48 == 0xffff && p.Vaddr < a64Text:
			lin = lin || p.Vaddr-p.Paddr == a64PageOffset-a64RAM
		default:
			t.Errorf("PT_LOAD %+v", p.ProgHeader)
		}
		// A kept page through the segment equals the source's.
		for a := p.Paddr; a < p.Paddr+p.Filesz; a += 4096 {
			if !keep(a >> 12) {
				continue
			}
			got := make([]byte, 4096)
			if _, err := p.ReadAt(got, int64(a-p.Paddr)); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			want := make([]byte, 4096)
			src.ReadPhys(want, a)
			if !bytes.Equal(got, want) {
				t.Fatalf("PT_LOAD at %#x: page %#x differs", p.Vaddr, a)
			}
			break
		}
	}
	if !text || !data || !lin {
		t.Errorf("text %v, data %v, linear %v:\n%v", text, data, lin, ef.Progs)
	}
}

// A synthetic x86_64 machine: 64 MiB of RAM from 0, the kernel image at
// physical 0x2000000 mapped at _stext in three 2 MiB pages, as
// __START_KERNEL_map + (physical - phys_base) with phys_base 0x1000000.
const (
	x86Stext = 0xffffffff81000000
	x86Phys  = 0x2000000
	x86PGD   = x86Phys + 0x200000 // init_top_pgt, in the image
	x86PUD   = x86PGD + 0x1000
	x86PMD   = x86PGD + 0x2000
)

func x86Content(pfn uint64, page []byte) {
	fixture.Pattern(pfn, page)
	le := binary.LittleEndian
	put := func(i, v uint64) { le.PutUint64(page[i*8:], v) }
	switch pfn << 12 {
	case x86PGD:
		clear(page)
		put(511, x86PUD|0x63)
	case x86PUD:
		clear(page)
		put(510, x86PMD|0x63)
	case x86PMD:
		clear(page)
		for i := range uint64(3) {
			put((x86Stext>>21)&0x1ff+i, (x86Phys+i<<21)|0xe3) // present, PSE
		}
	}
}

// TestKernelSegmentsX86 adds the image PT_LOAD to a physical-only x86_64
// core (QEMU's), found through phys_base and the page tables; the direct
// map's base is not in VMCOREINFO, so the RAM keeps its p_vaddr.
func TestKernelSegmentsX86(t *testing.T) {
	const info = "OSRELEASE=6.12.0-test\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\n" +
		"SYMBOL(init_top_pgt)=ffffffff81200000\nNUMBER(phys_base)=16777216\nKERNELOFFSET=0\nNUMBER(KERNEL_IMAGE_SIZE)=1073741824\n"
	ram := vmcore.Segment{PhysAddr: 0, MemSize: 64 << 20, FileSize: 64 << 20}
	image := vmcore.Segment{VirtAddr: x86Stext, PhysAddr: x86Phys, MemSize: 6 << 20, FileSize: 6 << 20}
	for _, tt := range []struct {
		name, info string
		want       []vmcore.Segment
		warn       string
	}{
		{"image added", info, []vmcore.Segment{image, ram}, ""},
		{"no phys_base", strings.Replace(info, "NUMBER(phys_base)=16777216\n", "", 1), []vmcore.Segment{ram}, "phys_base"},
		{"phys_base the tables deny", strings.Replace(info, "phys_base)=16777216", "phys_base)=18874368", 1), []vmcore.Segment{ram},
			"no kernel-image PT_LOAD added"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bo := binary.LittleEndian
			notes := append(fixture.PRStatus(bo, elf.EM_X86_64, 1, nil), fixture.VMCOREINFO(bo, tt.info)...)
			im := fixture.Core{Notes: notes, Loads: []fixture.Load{{MemSize: 64 << 20, FileSize: 64 << 20}}, Content: x86Content}.Build()
			src, err := vmcore.NewFile(im, im.Size())
			if err != nil {
				t.Fatal(err)
			}
			checkKernelSegments(t, src, tt.want, tt.warn)
		})
	}
}

// TestKernelSegmentsKernelCore: a core the kernel wrote (x86_64's
// /proc/vmcore layout, with _stext and phys_base in VMCOREINFO) is left as
// it is, so its file is laid out exactly as without KernelSegments.
func TestKernelSegmentsKernelCore(t *testing.T) {
	bo := binary.LittleEndian
	info := "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\nNUMBER(phys_base)=0\n" +
		"SYMBOL(init_top_pgt)=ffffffff82000000\nKERNELOFFSET=0\n"
	notes := append(fixture.PRStatus(bo, elf.EM_X86_64, 1, nil), fixture.VMCOREINFO(bo, info)...)
	im := fixture.Core{Notes: notes, Loads: x86Loads()}.Build()
	src, err := vmcore.NewFile(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	km := KernelSegments(src)
	if km.Image != 0 || km.Linear != 0 || len(km.Warnings) != 0 || !slices.Equal(km.Segments, src.Segments) {
		t.Fatalf("changed: %+v", km)
	}
	keep := func(pfn uint64) bool { return pfn%3 != 0 && pfn < 0x3000 }
	a, err := NewLayout(src, keep, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewLayout(src, keep, Options{Segments: km.Segments})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Segments(), b.Segments()) || a.FileSize() != b.FileSize() || a.Stats() != b.Stats() {
		t.Errorf("layouts differ: %+v %d %+v vs %+v %d %+v", a.Segments(), a.FileSize(), a.Stats(), b.Segments(), b.FileSize(), b.Stats())
	}
}
