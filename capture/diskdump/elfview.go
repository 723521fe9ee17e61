package diskdump

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// An ELFView presents a kdump-compressed file as the ELF vmcore it was made
// from, through an io.ReaderAt: an ELF header, a PT_NOTE with the dump's
// notes, and one PT_LOAD per run of dumped pages, whose data is read and
// decompressed on demand. What the pipeline reads from /proc/vmcore it can
// then read from a saved dump, to filter it again at a higher level or
// compress it with another codec, as makedumpfile re-filters its dumps.
//
// Pages the dump left out are not in the view. The RAM (1st bitmap) that
// follows a run of dumped pages, up to the next dumped page, stays in its
// PT_LOAD as memory declared without data (p_memsz > p_filesz), as a
// filtered ELF dump declares it: a dump made from the view marks it RAM,
// not dumped. In a dump flagged incomplete, pages whose data was never
// written fail to read (missing, not zero).
type ELFView struct {
	f       *File
	head    []byte // ELF header, program headers, notes
	dataOff int64  // file offset of the first page's data
	size    int64
	ps      int64
	runs    []viewRun // by rank
	segs    int       // PT_LOADs

	cache [viewCachePages]viewPage // decompressed pages, under f.mu
	next  int
}

// viewRun is a run of dumped pfns [pfn, pfn+n) whose first page is the
// rank'th the file holds.
type viewRun struct {
	pfn, n, rank uint64
}

type viewPage struct {
	pfn  uint64
	ok   bool
	data []byte
}

// viewCachePages is how many decompressed pages a view keeps: a reader
// walking struct pages reads each page in many small pieces.
const viewCachePages = 16

// ErrTooManyRuns is returned by ELFView for a dump whose dumped pages
// fall into more runs than an ELF file's program headers hold.
var ErrTooManyRuns = errors.New("diskdump: too many runs of dumped pages for an ELF view")

// maxViewRuns keeps e_phnum below PN_XNUM (the PT_NOTE takes one) and
// within what vmcore reads.
const maxViewRuns = min(0xffff-2, vmcore.MaxSegments-1)

// ELFView returns the ELF view of f. A split dump (one file of several)
// has no view: it holds part of memory only.
func (f *File) ELFView() (*ELFView, error) {
	if f.Header.Split {
		return nil, fmt.Errorf("diskdump: %w: a split dump (pfns %#x-%#x of %#x): reassemble it first (makedumpfile --reassemble)",
			ErrUnsupported, f.Header.StartPFN, f.Header.EndPFN, f.maxMapnr)
	}
	if f.Machine == elf.EM_NONE {
		return nil, fmt.Errorf("diskdump: %w: machine %q", ErrUnsupported, f.Header.Machine)
	}
	v := &ELFView{f: f, ps: f.lay.bs}
	var rank uint64
	for pfn, err := range f.DumpedPFNs() {
		if err != nil {
			return nil, err
		}
		if l := len(v.runs); l > 0 && v.runs[l-1].pfn+v.runs[l-1].n == pfn {
			v.runs[l-1].n++
		} else {
			if len(v.runs) == maxViewRuns {
				return nil, fmt.Errorf("%w: more than %d", ErrTooManyRuns, maxViewRuns)
			}
			v.runs = append(v.runs, viewRun{pfn: pfn, n: 1, rank: rank})
		}
		rank++
	}
	notes := f.Header.Notes
	if len(notes) == 0 && f.VMCOREINFO != nil {
		// An old header version keeps VMCOREINFO outside any notes.
		notes = vmcore.AppendNote(nil, binary.LittleEndian, vmcore.NoteVMCOREINFO, 0, f.VMCOREINFO.Raw())
	}
	ps := uint64(v.ps)
	// The segments: the kernel image's mapping first, as /proc/vmcore
	// has it, then every run, with the RAM after it declared.
	type seg struct{ vaddr, paddr, rank, filesz, memsz uint64 }
	var segs []seg
	if delta, lo, hi, ok := kernelTextMap(f.VMCOREINFO, f.Machine); ok {
		for _, r := range v.runs {
			a, b := max(r.pfn*ps, lo), min((r.pfn+r.n)*ps, hi)
			if a >= b || len(segs)+len(v.runs) == maxViewRuns {
				continue
			}
			a, b = a/ps*ps, (b+ps-1)/ps*ps
			segs = append(segs, seg{vaddr: a + delta, paddr: a, rank: r.rank + a/ps - r.pfn, filesz: b - a, memsz: b - a})
		}
	}
	f.mu.Lock()
	for i, r := range v.runs {
		limit := f.maxMapnr
		if i+1 < len(v.runs) {
			limit = v.runs[i+1].pfn
		}
		tail, err := f.ramUntil(r.pfn+r.n, limit)
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		segs = append(segs, seg{paddr: r.pfn * ps, rank: r.rank, filesz: r.n * ps, memsz: (r.n + tail) * ps})
	}
	f.mu.Unlock()
	phnum := 1 + len(segs)
	notesOff := int64(64 + 56*phnum)
	v.dataOff = (notesOff + int64(len(notes)) + v.ps - 1) / v.ps * v.ps
	v.size = v.dataOff + int64(rank)*v.ps
	v.head = make([]byte, notesOff+int64(len(notes)))
	le := binary.LittleEndian
	h := v.head
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	le.PutUint16(h[16:], uint16(elf.ET_CORE))
	le.PutUint16(h[18:], uint16(f.Machine))
	le.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(h[32:], 64) // e_phoff
	if f.Incomplete() {
		le.PutUint32(h[48:], vmcore.FlagIncomplete)
	}
	le.PutUint16(h[52:], 64) // e_ehsize
	le.PutUint16(h[54:], 56) // e_phentsize
	le.PutUint16(h[56:], uint16(phnum))
	ph := func(i int, typ elf.ProgType, off, vaddr, paddr, filesz, memsz uint64) {
		b := h[64+56*i:]
		le.PutUint32(b[0:], uint32(typ))
		le.PutUint32(b[4:], uint32(elf.PF_R|elf.PF_W|elf.PF_X))
		le.PutUint64(b[8:], off)
		le.PutUint64(b[16:], vaddr)
		le.PutUint64(b[24:], paddr)
		le.PutUint64(b[32:], filesz)
		le.PutUint64(b[40:], memsz)
		if typ == elf.PT_LOAD {
			le.PutUint64(b[48:], ps)
		}
	}
	ph(0, elf.PT_NOTE, uint64(notesOff), 0, 0, uint64(len(notes)), uint64(len(notes)))
	copy(h[notesOff:], notes)
	// p_vaddr 0 for the runs: a kdump file holds no virtual addresses;
	// readers go through physical addresses and the page tables.
	for i, sg := range segs {
		ph(i+1, elf.PT_LOAD, uint64(v.dataOff)+sg.rank*ps, sg.vaddr, sg.paddr, sg.filesz, sg.memsz)
	}
	v.segs = len(segs)
	return v, nil
}

// kernelTextMap returns how the kernel image is mapped, virtual = physical
// + delta, for physical [lo, hi): from VMCOREINFO's _stext, phys_base and
// KERNEL_IMAGE_SIZE on x86_64. Readers such as drgn find the page tables
// through it (/proc/vmcore has a PT_LOAD for it). The range may reach past
// the kernel's end; nothing reads the mapping there.
func kernelTextMap(info *vmcoreinfo.Info, m elf.Machine) (delta, lo, hi uint64, ok bool) {
	if m != elf.EM_X86_64 || info == nil {
		return 0, 0, 0, false
	}
	stext, ok1 := info.Symbol("_stext")
	pb, ok2 := info.Number("phys_base")
	// phys_base is negative when KASLR moved the kernel further in
	// virtual than in physical memory: the arithmetic wraps, as the
	// kernel's __pa_symbol does.
	if !ok1 || !ok2 || stext < kmem.X86StartKernelMap {
		return 0, 0, 0, false
	}
	size := int64(1 << 30)
	if n, ok := info.Number("KERNEL_IMAGE_SIZE"); ok && n > 0 && n <= 1<<30 {
		size = n
	}
	lo = stext - kmem.X86StartKernelMap + uint64(pb)
	hi = uint64(pb) + uint64(size)
	if lo >= hi {
		return 0, 0, 0, false
	}
	return kmem.X86StartKernelMap - uint64(pb), lo, hi, true
}

// ramUntil counts the pfns from pfn on, up to limit, that the 1st bitmap
// marks RAM without a break. Its work is bounded by the bitmap bytes it
// reads; callers hold f.mu.
func (f *File) ramUntil(pfn, limit uint64) (uint64, error) {
	start := pfn
	for pfn < limit {
		b, err := f.block(&f.bm1, pfn/f.pfnsPer)
		if err != nil {
			return 0, err
		}
		i := pfn % f.pfnsPer
		if i%64 == 0 && limit-pfn >= 64 && binary.LittleEndian.Uint64(b[i/8:]) == ^uint64(0) {
			pfn += 64
			continue
		}
		if b[i/8]&(1<<(i%8)) == 0 {
			break
		}
		pfn++
	}
	return pfn - start, nil
}

// Size returns the size of the view's ELF file.
func (v *ELFView) Size() int64 { return v.size }

// Runs returns the number of runs of dumped pages, each a PT_LOAD.
func (v *ELFView) Runs() int { return len(v.runs) }

// Segments returns the number of PT_LOADs: the runs, and those that map
// the kernel image (see kernelTextMap).
func (v *ELFView) Segments() int { return v.segs }

// ReadAt reads the view. It is safe for concurrent use; pages are
// decompressed one at a time (the File's lock).
func (v *ELFView) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("diskdump: ELF view: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= v.size {
			return n, io.EOF
		}
		if at < v.dataOff {
			// Headers and notes, then zeros to the first page.
			m := 0
			if at < int64(len(v.head)) {
				m = copy(p[n:], v.head[at:])
			} else {
				m = int(min(int64(len(p)-n), v.dataOff-at))
				clear(p[n : n+m])
			}
			n += m
			continue
		}
		rank := uint64(at-v.dataOff) / uint64(v.ps)
		in := (at - v.dataOff) % v.ps
		m, err := v.readPage(p[n:], rank, in)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readPage copies the rank'th dumped page, from byte in, into p.
func (v *ELFView) readPage(p []byte, rank uint64, in int64) (int, error) {
	i := sort.Search(len(v.runs), func(i int) bool { return v.runs[i].rank+v.runs[i].n > rank })
	r := v.runs[i] // rank < the pages dumped: some run holds it
	pfn := r.pfn + rank - r.rank
	f := v.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range v.cache {
		if c.ok && c.pfn == pfn {
			return copy(p, c.data[in:]), nil
		}
	}
	if in == 0 && int64(len(p)) >= v.ps {
		// A whole page: straight into p, strict about missing data.
		if err := f.readPage(pfn, p[:v.ps], true); err != nil {
			return 0, err
		}
		return int(v.ps), nil
	}
	c := &v.cache[v.next]
	v.next = (v.next + 1) % viewCachePages
	if c.data == nil {
		c.data = make([]byte, v.ps)
	}
	c.ok = false
	if err := f.readPage(pfn, c.data, true); err != nil {
		return 0, err
	}
	c.pfn, c.ok = pfn, true
	return copy(p, c.data[in:]), nil
}
