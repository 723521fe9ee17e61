package diskdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// memFile is an in-memory io.WriterAt and io.ReaderAt.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, os.ErrNotExist
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, errEOF
	}
	return n, nil
}

var errEOF = errors.New("EOF")

// smallDump writes a dump of npfn pfns with block size bs: pfns 0–9 not
// RAM, every 4th excluded, every 7th zero.
func smallDump(t testing.TB, bs int, c codec.Codec, npfn int) []byte {
	t.Helper()
	hdr := testHeader(uint64(npfn), c)
	hdr.BlockSize = bs
	m := &memFile{}
	w, err := NewWriter(m, hdr)
	if err != nil {
		t.Fatal(err)
	}
	ram, dump := make([]byte, (npfn+7)/8), make([]byte, (npfn+7)/8)
	for p := 10; p < npfn; p++ {
		ram[p/8] |= 1 << (p % 8)
		if p%4 != 0 {
			dump[p/8] |= 1 << (p % 8)
		}
	}
	if err := w.SetBitmaps(0, ram, dump); err != nil {
		t.Fatal(err)
	}
	if err := w.StartPages(); err != nil {
		t.Fatal(err)
	}
	comp, _ := codec.NewCompressor(c, bs)
	page := make([]byte, bs)
	for p := uint64(10); p < uint64(npfn); p++ {
		if p%4 == 0 {
			continue
		}
		if p%7 == 0 {
			w.WriteZeroPage(p)
			continue
		}
		smallPage(p, page)
		if out, ok := comp.Compress(nil, page); ok {
			err = w.WritePage(p, out, comp.Flag())
		} else {
			err = w.WritePage(p, page, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return m.b
}

func smallPage(pfn uint64, p []byte) {
	for i := range p {
		p[i] = byte(pfn) ^ byte(i/16)
	}
	if pfn%3 == 0 {
		for i := range p {
			p[i] = byte((uint64(i)*2654435761 + pfn*40503) >> 7)
		}
	}
}

// realHeaderDump builds a small dump on makedumpfile 1.7.2's real header,
// sub-header and notes (testdata), with max_mapnr cut to 64 pfns.
func realHeaderDump(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "makedumpfile-6.1-header.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const bs = 4096
	f := make([]byte, 2*bs)
	copy(f, b)
	le := binary.LittleEndian
	le.PutUint32(f[offMaxMapnr:], 64)
	le.PutUint64(f[bs+offMaxMapnr64:], 64)
	le.PutUint32(f[offBitmapBlocks:], 2)
	bm := make([]byte, 2*bs)
	bm[0], bm[1] = 0xff, 0xff // pfns 0–15 RAM
	bm[bs] = 0b1011           // pfns 0, 1, 3 dumped
	f = append(f, bm...)
	dataOff := int64(len(f)) + 3*descSize
	comp, _ := codec.NewCompressor(codec.Zlib, bs)
	page := make([]byte, bs)
	var data []byte
	for _, pfn := range []uint64{0, 1, 3} {
		smallPage(pfn, page)
		out, ok := comp.Compress(nil, page)
		d := PageDesc{Offset: dataOff + int64(len(data)), Size: uint32(len(out)), Flags: codec.FlagZlib}
		if !ok {
			out, d.Size, d.Flags = page, bs, 0
		}
		var db [descSize]byte
		d.put(db[:])
		f = append(f, db[:]...)
		data = append(data, out...)
	}
	return append(f, data...)
}

// TestRealHeader parses makedumpfile's own header and sub-header.
func TestRealHeader(t *testing.T) {
	b := realHeaderDump(t)
	kf, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	h := kf.Header
	want := []string{"Linux", "(none)", "6.1.0-56-cloud-amd64",
		"#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", "x86_64", "(none)"}
	if got := []string{h.Sysname, h.Nodename, h.Release, h.Version, h.Machine, h.Domainname}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("utsname %q", got)
	}
	if h.HeaderVersion != 6 || h.PhysBase != 0x1ae00000 || h.DumpLevel != 31 || h.NrCPUs != 1 ||
		h.Timestamp.Unix() != 1795782722 || h.Compression() != codec.Zlib || h.BlockSize != 4096 ||
		h.VMCOREINFOOffset != 0x11e4-0x1068 || h.VMCOREINFOSize != 0xcd2 || len(h.Notes) != 0xe50 {
		t.Errorf("header %+v", h)
	}
	if kf.VMCOREINFO == nil || kf.VMCOREINFO.OSRelease() != "6.1.0-56-cloud-amd64" || len(kf.PRStatus) != 1 {
		t.Fatalf("notes: %v %d", kf.VMCOREINFO, len(kf.PRStatus))
	}
	if pb, _ := kf.VMCOREINFO.Number("phys_base"); uint64(pb) != h.PhysBase {
		t.Errorf("phys_base %#x, VMCOREINFO %#x", h.PhysBase, pb)
	}
	page, want2 := make([]byte, 4096), make([]byte, 4096)
	for _, pfn := range []uint64{0, 1, 3} {
		if err := kf.ReadPage(pfn, page); err != nil {
			t.Fatal(err)
		}
		smallPage(pfn, want2)
		if !bytes.Equal(page, want2) {
			t.Errorf("pfn %d differs", pfn)
		}
	}
	if err := kf.ReadPage(2, page); !errors.Is(err, ErrExcluded) {
		t.Errorf("pfn 2: %v", err)
	}
}

// TestHostileHeader mutates a valid dump's header and sub-header: each
// is refused with a *FormatError naming the field and its offset.
func TestHostileHeader(t *testing.T) {
	le := binary.LittleEndian
	good := smallDump(t, 4096, codec.Zstd, 200)
	if _, err := Open(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
	const sub = 4096
	for _, tc := range []struct {
		name  string
		mut   func(b []byte) []byte
		want  error
		field string
		off   int64
	}{
		{"signature", func(b []byte) []byte { b[0] = 'X'; return b }, ErrNotKdump, "signature", 0},
		{"diskdump", func(b []byte) []byte { copy(b, "DISKDUMP"); return b }, ErrUnsupported, "signature", 0},
		{"tiny file", func(b []byte) []byte { return b[:100] }, ErrNotKdump, "disk_dump_header", 0},
		{"header only", func(b []byte) []byte { return b[:4096] }, ErrCorrupt, "bitmap_blocks", offBitmapBlocks},
		{"block size 0", func(b []byte) []byte { le.PutUint32(b[offBlockSize:], 0); return b }, ErrCorrupt, "block_size", offBlockSize},
		{"block size 3000", func(b []byte) []byte { le.PutUint32(b[offBlockSize:], 3000); return b }, ErrCorrupt, "block_size", offBlockSize},
		{"block size 1 GiB", func(b []byte) []byte { le.PutUint32(b[offBlockSize:], 1<<30); return b }, ErrCorrupt, "block_size", offBlockSize},
		{"big-endian", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offBlockSize:], 4096); return b }, ErrUnsupported, "block_size", offBlockSize},
		{"version 0", func(b []byte) []byte { le.PutUint32(b[offHeaderVersion:], 0); return b }, ErrUnsupported, "header_version", offHeaderVersion},
		{"sub_hdr_size 0", func(b []byte) []byte { le.PutUint32(b[offSubHdrSize:], 0); return b }, ErrCorrupt, "sub_hdr_size", offSubHdrSize},
		{"sub_hdr_size -1", func(b []byte) []byte { le.PutUint32(b[offSubHdrSize:], 0xffffffff); return b }, ErrCorrupt, "sub_hdr_size", offSubHdrSize},
		{"sub_hdr_size huge", func(b []byte) []byte { le.PutUint32(b[offSubHdrSize:], 1<<30); return b }, ErrCorrupt, "sub_hdr_size", offSubHdrSize},
		{"bitmap_blocks 0", func(b []byte) []byte { le.PutUint32(b[offBitmapBlocks:], 0); return b }, ErrCorrupt, "bitmap_blocks", offBitmapBlocks},
		{"bitmap_blocks odd", func(b []byte) []byte { le.PutUint32(b[offBitmapBlocks:], 3); return b }, ErrCorrupt, "bitmap_blocks", offBitmapBlocks},
		{"bitmap_blocks huge", func(b []byte) []byte { le.PutUint32(b[offBitmapBlocks:], 0xfffffffe); return b }, ErrCorrupt, "bitmap_blocks", offBitmapBlocks},
		{"max_mapnr_64 past bitmap", func(b []byte) []byte { le.PutUint64(b[sub+offMaxMapnr64:], 8*4096+1); return b }, ErrCorrupt, "max_mapnr", sub + offMaxMapnr64},
		{"max_mapnr_64 huge", func(b []byte) []byte { le.PutUint64(b[sub+offMaxMapnr64:], 1<<63); return b }, ErrCorrupt, "max_mapnr", sub + offMaxMapnr64},
		{"max_mapnr past bitmap", func(b []byte) []byte {
			le.PutUint32(b[offHeaderVersion:], 5)
			le.PutUint32(b[offMaxMapnr:], 8*4096+1)
			return b
		}, ErrCorrupt, "max_mapnr", offMaxMapnr},
		{"split backwards", func(b []byte) []byte {
			le.PutUint32(b[sub+offSplit:], 1)
			le.PutUint64(b[sub+offStartPFN64:], 100)
			le.PutUint64(b[sub+offEndPFN64:], 50)
			return b
		}, ErrCorrupt, "start_pfn", sub + offStartPFN64},
		{"split past max_mapnr", func(b []byte) []byte {
			le.PutUint32(b[sub+offSplit:], 1)
			le.PutUint64(b[sub+offEndPFN64:], 1000)
			return b
		}, ErrCorrupt, "start_pfn", sub + offStartPFN64},
	} {
		b := tc.mut(bytes.Clone(good))
		_, err := Open(bytes.NewReader(b), int64(len(b)))
		var fe *FormatError
		if !errors.Is(err, tc.want) || !errors.As(err, &fe) {
			t.Errorf("%s: %v, want a *FormatError wrapping %v", tc.name, err, tc.want)
			continue
		}
		if fe.Field != tc.field || fe.Off != tc.off {
			t.Errorf("%s: field %q at %#x, want %q at %#x", tc.name, fe.Field, fe.Off, tc.field, tc.off)
		}
	}
}

// TestDamagedNotes: a damaged note block costs only itself. Open keeps
// the notes that parse, takes VMCOREINFO from where the sub-header points
// when it is valid, says what is wrong in NoteErr, and the pages read.
func TestDamagedNotes(t *testing.T) {
	le := binary.LittleEndian
	good := smallDump(t, 4096, codec.Zstd, 200)
	const sub = 4096
	noteOff := sub + subHeaderSize
	for _, tc := range []struct {
		name       string
		mut        func(b []byte)
		prstatus   int  // notes kept
		vmcoreinfo bool // VMCOREINFO found
		field      string
	}{
		{"first note overruns", func(b []byte) { le.PutUint32(b[noteOff+4:], 1<<20) }, 0, true, ""},
		{"second note overruns", func(b []byte) {
			// The second NT_PRSTATUS note's descsz.
			first := 12 + 8 + int(le.Uint32(b[noteOff+4:]))
			le.PutUint32(b[noteOff+first+4:], 1<<20)
		}, 1, true, ""},
		{"note size huge", func(b []byte) { le.PutUint64(b[sub+offSizeNote:], 1<<62) }, 0, true, "offset_note"},
		{"note past end", func(b []byte) { le.PutUint64(b[sub+offOffsetNote:], uint64(len(b))) }, 0, true, "offset_note"},
		{"note offset wraps", func(b []byte) { le.PutUint64(b[sub+offOffsetNote:], 1<<63+5) }, 0, true, "offset_note"},
		{"vmcoreinfo size huge", func(b []byte) { le.PutUint64(b[sub+offSizeVmcoreinfo:], 1<<40) }, 2, true, "offset_vmcoreinfo"},
		{"overrun, VMCOREINFO pointer bad", func(b []byte) {
			le.PutUint32(b[noteOff+4:], 1<<20)
			le.PutUint64(b[sub+offOffsetVmcoreinfo:], uint64(len(b)))
		}, 0, false, ""},
		{"overrun, VMCOREINFO pointer at garbage", func(b []byte) {
			le.PutUint32(b[noteOff+4:], 1<<20)
			le.PutUint64(b[sub+offOffsetVmcoreinfo:], 0)
		}, 0, false, ""},
	} {
		b := bytes.Clone(good)
		tc.mut(b)
		kf, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Errorf("%s: Open: %v", tc.name, err)
			continue
		}
		if kf.NoteErr == nil {
			t.Errorf("%s: no NoteErr", tc.name)
		}
		var fe *FormatError
		if tc.field != "" && (!errors.As(kf.NoteErr, &fe) || fe.Field != tc.field || fe.Off != sub+map[string]int64{
			"offset_note": offOffsetNote, "offset_vmcoreinfo": offOffsetVmcoreinfo}[tc.field]) {
			t.Errorf("%s: NoteErr %v, want %s", tc.name, kf.NoteErr, tc.field)
		}
		if len(kf.PRStatus) != tc.prstatus || (kf.VMCOREINFO != nil) != tc.vmcoreinfo {
			t.Errorf("%s: %d PRSTATUS, VMCOREINFO %v; want %d, %v", tc.name, len(kf.PRStatus), kf.VMCOREINFO != nil, tc.prstatus, tc.vmcoreinfo)
		}
		if tc.vmcoreinfo && kf.VMCOREINFO.OSRelease() != "6.1.0-test" {
			t.Errorf("%s: VMCOREINFO %q", tc.name, kf.VMCOREINFO.OSRelease())
		}
		if err := kf.ReadPage(11, make([]byte, 4096)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestHostileDescriptors corrupts page descriptors and data: errors name
// the pfn and offset; an incomplete dump reads missing data as zeros.
func TestHostileDescriptors(t *testing.T) {
	good := smallDump(t, 4096, codec.Zstd, 200)
	kf, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	const pfn = 11 // RAM, dumped, compressed
	d, ok, err := kf.PageDesc(pfn)
	if err != nil || !ok || d.Flags != codec.FlagZstd {
		t.Fatalf("descriptor of pfn 11: %+v %v %v", d, ok, err)
	}
	idx, _ := kf.descIndex(pfn)
	descAt := kf.lay.desc + int64(idx)*descSize
	for _, tc := range []struct {
		name       string
		d          PageDesc
		incomplete bool
		zeros      bool // reads as zeros
	}{
		{"size 0", PageDesc{Offset: d.Offset, Size: 0, Flags: d.Flags}, false, false},
		{"size past page", PageDesc{Offset: d.Offset, Size: 4097, Flags: d.Flags}, false, false},
		{"raw short", PageDesc{Offset: d.Offset, Size: 100}, false, false},
		{"into the header", PageDesc{Offset: 8, Size: d.Size, Flags: d.Flags}, false, false},
		{"negative offset", PageDesc{Offset: -4096, Size: d.Size, Flags: d.Flags}, false, false},
		{"past end", PageDesc{Offset: int64(len(good)) + 10, Size: d.Size, Flags: d.Flags}, false, false},
		{"overruns end", PageDesc{Offset: int64(len(good)) - 3, Size: d.Size, Flags: d.Flags}, false, false},
		{"unknown flags", PageDesc{Offset: d.Offset, Size: d.Size, Flags: 0x8}, false, false},
		{"two codecs", PageDesc{Offset: d.Offset, Size: d.Size, Flags: 0x21}, false, false},
		{"wrong codec", PageDesc{Offset: d.Offset, Size: d.Size, Flags: codec.FlagLZO}, false, false},
		{"no data", PageDesc{}, false, false},
		{"no data, incomplete", PageDesc{}, true, true},
		{"past end, incomplete", PageDesc{Offset: int64(len(good)) + 10, Size: d.Size, Flags: d.Flags}, true, true},
	} {
		b := bytes.Clone(good)
		tc.d.put(b[descAt:])
		if tc.incomplete {
			binary.LittleEndian.PutUint32(b[offStatus:], binary.LittleEndian.Uint32(b[offStatus:])|StatusIncomplete)
		}
		kf, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: Open: %v", tc.name, err)
		}
		page := make([]byte, 4096)
		page[0] = 1
		err = kf.ReadPage(pfn, page)
		if tc.zeros {
			if err != nil || !bytes.Equal(page, make([]byte, 4096)) {
				t.Errorf("%s: %v, zeros %v", tc.name, err, bytes.Equal(page, make([]byte, 4096)))
			}
			continue
		}
		var pe *PageError
		if !errors.As(err, &pe) || pe.PFN != pfn || !(errors.Is(err, ErrCorrupt) || errors.Is(err, codec.ErrCorrupt)) ||
			!strings.Contains(err.Error(), "pfn 0xb") {
			t.Errorf("%s: %v, want a *PageError for pfn %#x wrapping ErrCorrupt", tc.name, err, pfn)
		} else if want := []int64{descAt, tc.d.Offset}; pe.Off != want[0] && pe.Off != want[1] {
			t.Errorf("%s: offset %#x, want the descriptor's (%#x) or the data's (%#x)", tc.name, pe.Off, want[0], want[1])
		}
		// The other pages still read.
		if err := kf.ReadPage(13, page); err != nil {
			t.Errorf("%s: pfn 13: %v", tc.name, err)
		}
	}
	// Damaged page data: the decompressor's error, naming pfn and offset.
	b := bytes.Clone(good)
	for i := d.Offset + 4; i < d.Offset+int64(d.Size); i++ {
		b[i] ^= 0x5a
	}
	kf, _ = Open(bytes.NewReader(b), int64(len(b)))
	err = kf.ReadPage(pfn, make([]byte, 4096))
	var pe *PageError
	if !errors.As(err, &pe) || pe.PFN != pfn || pe.Off != d.Offset || !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("damaged data: %v, want a *PageError for pfn %#x at %#x wrapping codec.ErrCorrupt", err, pfn, d.Offset)
	}
}

// fuzzBases are the files FuzzOpen edits: small dumps of 1 KiB blocks in
// each codec, makedumpfile's own header, a split dump's first file.
func fuzzBases(f *testing.F) [][]byte {
	bases := [][]byte{realHeaderDump(f)}
	for _, c := range []codec.Codec{codec.Zstd, codec.Zlib, codec.Snappy, codec.None} {
		bases = append(bases, smallDump(f, 1024, c, 24))
	}
	split := smallDump(f, 1024, codec.Zlib, 24)
	le := binary.LittleEndian
	le.PutUint32(split[1024+offSplit:], 1)
	le.PutUint64(split[1024+offStartPFN64:], 12)
	le.PutUint64(split[1024+offEndPFN64:], 20)
	return append(bases, split)
}

// FuzzOpen feeds Open and the page reads files made by editing valid
// dumps (fixture.Patched: the input is a base number and edits).
func FuzzOpen(f *testing.F) {
	bases := fuzzBases(f)
	for i := range bases {
		f.Add([]byte{byte(i)})
	}
	// A few edits of the header and the bitmaps.
	f.Add(append([]byte{1}, fixture.Edit(offBitmapBlocks, 0xff, 0xff, 0, 0)...))
	f.Add(append([]byte{1}, fixture.Edit(1024+offMaxMapnr64, 0, 0, 0, 0, 1)...))
	f.Add(append([]byte{2}, fixture.Edit(4*1024, 0xff, 0xff, 0xff, 0xff)...))
	f.Add(append([]byte{3}, fixture.Edit(3000)...))
	page := make([]byte, MaxBlockSize)
	f.Fuzz(func(t *testing.T, in []byte) {
		data := fixture.Patched(bases, in)
		kf, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) && !errors.Is(err, ErrFlattened) {
				t.Fatalf("Open error is no *FormatError: %v", err)
			}
			return
		}
		// ReadPage on the first pages, Verify (which reads each page
		// the same way) on all of a small dump: each page is
		// decompressed once or twice, not more.
		page := page[:kf.PageSize()]
		n := 0
		for pfn, err := range kf.DumpedPFNs() {
			if err != nil || n == 4 {
				break
			}
			n++
			if err := kf.ReadPage(pfn, page); err != nil {
				var pe *PageError
				if !errors.As(err, &pe) || pe.PFN != pfn {
					t.Fatalf("ReadPage(%#x): %v", pfn, err)
				}
			}
		}
		for pfn := uint64(0); pfn < min(kf.MaxPFN(), 100); pfn++ {
			kf.IsRAM(pfn)
			kf.IsDumpable(pfn)
		}
		kf.ReadPhys(page[:min(len(page), 1500)], 7)
		err = kf.Check()
		var dm *Damage
		if errors.As(err, &dm) && (dm.Missing() > dm.Pages || dm.Missing() == 0) {
			t.Fatalf("Check: %+v", dm)
		}
		if kf.NumDumped() <= 64 {
			if verr := kf.Verify(); verr != nil && err == nil && !kf.Incomplete() {
				var pe *PageError
				if !errors.As(verr, &pe) {
					t.Fatalf("Verify: %v", verr)
				}
			}
		}
		// The ELF view of what opened reads as a vmcore, its size what
		// the file holds.
		if v, err := kf.ELFView(); err == nil {
			// A page per bit of the 2nd bitmap, at most.
			if v.Size() > 8*int64(len(data))*int64(kf.PageSize())+1<<20 {
				t.Fatalf("ELF view of %d bytes from a %d-byte file", v.Size(), len(data))
			}
			if vf, err := vmcore.NewFile(v, v.Size()); err == nil {
				for _, r := range vf.PhysRanges()[:min(2, len(vf.PhysRanges()))] {
					vf.ReadPhys(page[:min(len(page), 100)], r.Start)
				}
			}
		}
	})
}

// TestOldHeaderVersions reads a dump whose header claims versions 1–5:
// fields of later versions are ignored.
func TestOldHeaderVersions(t *testing.T) {
	good := smallDump(t, 4096, codec.Zlib, 200)
	for v := 1; v <= 5; v++ {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[offHeaderVersion:], uint32(v))
		if v < 6 {
			// Only the 64-bit field may say more than 32 bits.
			binary.LittleEndian.PutUint64(b[4096+offMaxMapnr64:], 1<<40)
		}
		kf, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if kf.MaxPFN() != 200 || kf.Header.HeaderVersion != v {
			t.Errorf("version %d: max_mapnr %d", v, kf.MaxPFN())
		}
		if (kf.VMCOREINFO != nil) != (v >= 3) || (len(kf.PRStatus) > 0) != (v >= 4) {
			t.Errorf("version %d: VMCOREINFO %v, %d PRSTATUS", v, kf.VMCOREINFO != nil, len(kf.PRStatus))
		}
		page, want := make([]byte, 4096), make([]byte, 4096)
		for _, pfn := range []uint64{11, 13, 14, 199} {
			if err := kf.ReadPage(pfn, page); err != nil {
				t.Fatalf("version %d pfn %d: %v", v, pfn, err)
			}
			if pfn%7 != 0 {
				smallPage(pfn, want)
			} else {
				clear(want)
			}
			if !bytes.Equal(page, want) {
				t.Errorf("version %d pfn %d differs", v, pfn)
			}
		}
	}
}
