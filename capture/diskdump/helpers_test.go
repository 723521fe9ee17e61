package diskdump

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

var (
	refMu    sync.Mutex
	refFiles = map[string]string{}
	refDir   string
)

// makedumpfileRef returns a makedumpfile output of vmcorePath made with
// args, made once per test binary run.
func makedumpfileRef(t testing.TB, vmcorePath string, args ...string) string {
	t.Helper()
	refMu.Lock()
	defer refMu.Unlock()
	key := vmcorePath + "\x00" + strings.Join(args, "\x00")
	if p, ok := refFiles[key]; ok {
		return p
	}
	if refDir == "" {
		var err error
		refDir, err = os.MkdirTemp("", "kdump-ref-")
		if err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(refDir, fmt.Sprintf("ref%d", len(refFiles)))
	fixture.Makedumpfile(t, append(append([]string{}, args...), vmcorePath, out)...)
	refFiles[key] = out
	return out
}

// realCase is a real dump and a codec to write it with.
type realCase struct {
	d fixture.Dump
	c codec.Codec
}

func (rc realCase) name() string { return rc.d.Name() + "/" + rc.c.String() }

// realCases pairs the real dumps with codecs: the first dump with each of
// them, the others with the first only. One dump covers the codecs; every
// kernel, what the dump holds.
func realCases(t *testing.T, codecs ...codec.Codec) []realCase {
	t.Helper()
	var cases []realCase
	for i, d := range fixture.RealDumps(t) {
		for j, c := range codecs {
			if i == 0 || j == 0 {
				cases = append(cases, realCase{d, c})
			}
		}
	}
	return cases
}

func TestMain(m *testing.M) {
	code := m.Run()
	if refDir != "" {
		os.RemoveAll(refDir)
	}
	os.Exit(code)
}

// ramPFN reports whether the vmcore stores pfn's page.
func ramPFN(src *vmcore.File, pfn uint64) bool {
	ps := uint64(src.PageSize)
	_, n, ok := src.FileOffset(pfn * ps)
	return ok && n >= ps
}

type dumpOpts struct {
	codec     codec.Codec
	dumpLevel int
	exclude   func(pfn uint64) bool // RAM pfns to leave out
	chunk     int                   // bitmap blocks per SetBitmaps call
}

// dumpStats counts what writeDump did.
type dumpStats struct {
	pages, zero, raw, compressed int
}

// writeDump writes a kdump file of src to out with a plain loop: every
// RAM page not excluded is dumped, zero pages share the zero page.
func writeDump(t testing.TB, src *vmcore.File, out io.WriterAt, o dumpOpts) (*Writer, dumpStats, error) {
	t.Helper()
	hdr := HeaderFromVmcore(src)
	hdr.Status = o.codec.Flag()
	hdr.DumpLevel = o.dumpLevel
	w, err := NewWriter(out, hdr)
	if err != nil {
		return nil, dumpStats{}, err
	}
	var st dumpStats
	bs := uint64(hdr.BlockSize)
	perChunk := 8 * bs * uint64(max(o.chunk, 1))
	ram := make([]byte, perChunk/8)
	dump := make([]byte, perChunk/8)
	for start := uint64(0); start < hdr.MaxMapnr; start += perChunk {
		clear(ram)
		clear(dump)
		end := min(start+perChunk, hdr.MaxMapnr)
		for pfn := start; pfn < end; pfn++ {
			if !ramPFN(src, pfn) {
				continue
			}
			i := pfn - start
			ram[i/8] |= 1 << (i % 8)
			if o.exclude == nil || !o.exclude(pfn) {
				dump[i/8] |= 1 << (i % 8)
			}
		}
		n := (end - start + 7) / 8
		if err := w.SetBitmaps(start, ram[:n], dump[:n]); err != nil {
			return w, st, err
		}
	}
	if err := w.StartPages(); err != nil {
		return w, st, err
	}
	var comp *codec.Compressor
	if o.codec != codec.None {
		comp, err = codec.NewCompressor(o.codec, int(bs))
		if err != nil {
			t.Fatal(err)
		}
	}
	page := make([]byte, bs)
	zero := make([]byte, bs)
	cbuf := make([]byte, 0, 2*bs)
	for pfn := uint64(0); pfn < hdr.MaxMapnr; pfn++ {
		if !ramPFN(src, pfn) || (o.exclude != nil && o.exclude(pfn)) {
			continue
		}
		if _, err := src.ReadPhys(page, pfn*bs); err != nil {
			t.Fatalf("read pfn %#x: %v", pfn, err)
		}
		st.pages++
		if bytes.Equal(page, zero) {
			st.zero++
			if err := w.WriteZeroPage(pfn); err != nil {
				return w, st, err
			}
			continue
		}
		if comp != nil {
			if out, ok := comp.Compress(cbuf, page); ok {
				st.compressed++
				if err := w.WritePage(pfn, out, comp.Flag()); err != nil {
					return w, st, err
				}
				continue
			}
		}
		st.raw++
		if err := w.WritePage(pfn, page, 0); err != nil {
			return w, st, err
		}
	}
	return w, st, w.Close()
}

// comparePages reads every dumped page of kf and compares it with src.
// It returns the number of pages compared.
func comparePages(t testing.TB, kf *File, src *vmcore.File) int {
	t.Helper()
	bs := kf.PageSize()
	got := make([]byte, bs)
	want := make([]byte, bs)
	n := 0
	for pfn, err := range kf.DumpedPFNs() {
		if err != nil {
			t.Fatal(err)
		}
		if err := kf.ReadPage(pfn, got); err != nil {
			t.Fatalf("ReadPage(%#x): %v", pfn, err)
		}
		if _, err := src.ReadPhys(want, pfn*uint64(bs)); err != nil {
			t.Fatalf("vmcore ReadPhys(pfn %#x): %v", pfn, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("pfn %#x differs from the vmcore", pfn)
		}
		n++
	}
	if uint64(n) != kf.NumDumped() {
		t.Fatalf("DumpedPFNs yielded %d pfns, NumDumped %d", n, kf.NumDumped())
	}
	return n
}
