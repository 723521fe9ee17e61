package anydump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/fixture"
)

// writeKdump writes a kdump-compressed dump of npages pages of
// fixture.Mixed, zstd-compressed, through out.
func writeKdump(t testing.TB, out io.WriterAt, npages uint64) {
	t.Helper()
	writeKdumpOpts(t, out, npages, 4096)
}

// writeKdumpOpts is writeKdump with pages of bs bytes.
func writeKdumpOpts(t testing.TB, out io.WriterAt, npages uint64, bs int) {
	t.Helper()
	le := binary.LittleEndian
	const vi = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"
	notes := fixture.VMCOREINFO(le, vi)
	w, err := diskdump.NewWriter(out, diskdump.Header{
		Sysname: "Linux", Nodename: "(none)", Release: "6.1.0-test", Version: "#1", Machine: "x86_64",
		Domainname: "(none)", BlockSize: bs, MaxMapnr: npages, NrCPUs: 1, DumpLevel: 1,
		Status: codec.FlagZstd, Timestamp: time.Unix(1795782722, 0),
		Notes: notes, VMCOREINFOOffset: 24, VMCOREINFOSize: int64(len(vi)),
	})
	if err != nil {
		t.Fatal(err)
	}
	bm := make([]byte, (npages+7)/8)
	for i := range bm {
		bm[i] = 0xff
	}
	if npages%8 != 0 {
		bm[len(bm)-1] = 1<<(npages%8) - 1
	}
	if err := w.SetBitmaps(0, bm, bm); err != nil {
		t.Fatal(err)
	}
	if err := w.StartPages(); err != nil {
		t.Fatal(err)
	}
	comp, _ := codec.NewCompressor(codec.Zstd, bs)
	page := make([]byte, bs)
	for pfn := range npages {
		fixture.Mixed(pfn, page)
		if out, ok := comp.Compress(nil, page); ok {
			err = w.WritePage(pfn, out, codec.FlagZstd)
		} else {
			err = w.WritePage(pfn, page, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// cut truncates the file at path to size.
func cut(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestCheckCutKdump: a kdump file cut to a third: Info says which pages
// are past the end and that it is not complete; Verify names the first.
func TestCheckCutKdump(t *testing.T) {
	f := fixture.CreateFile(t, "vmcore")
	path := f.Name()
	writeKdump(t, f, 3000)
	in, err := ReadInfo(path)
	if err != nil || !in.Complete || in.Check != nil || in.Pages != 3000 {
		t.Fatalf("whole file: %+v, %v", in, err)
	}
	st, _ := f.Stat()
	cut(t, path, st.Size()/3)
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in = d.Info()
	c := in.Check
	if in.Complete || c == nil || c.Pages != 3000 || c.Beyond == 0 || c.Beyond >= 3000 || c.Missing != c.Beyond {
		t.Fatalf("cut file: complete %v, check %+v", in.Complete, c)
	}
	// The pages Check says are beyond the end are those that do not read.
	var unreadable uint64
	var first uint64 = 1 << 63
	page := make([]byte, 4096)
	for pfn := range uint64(3000) {
		if _, err := d.ReadPhys(page, pfn*4096); err != nil {
			unreadable++
			first = min(first, pfn)
		}
	}
	if unreadable != c.Beyond {
		t.Errorf("%d pages do not read, Check says %d", unreadable, c.Beyond)
	}
	var pe *diskdump.PageError
	if err := d.KdumpFile.Verify(); !errors.As(err, &pe) || pe.PFN != first {
		t.Errorf("Verify = %v, want pfn %#x", err, first)
	}
	var ce *CheckError
	if err := d.Verify(); !errors.As(err, &ce) || !errors.Is(err, ErrTruncated) || !errors.Is(err, diskdump.ErrTruncated) {
		t.Errorf("Dump.Verify = %v", err)
	}
}

// TestCheckCutELF: an ELF core cut inside its second PT_LOAD.
func TestCheckCutELF(t *testing.T) {
	im := fixture.Core{Loads: []fixture.Load{fixture.RAM(0, 64, 64), fixture.RAM(256, 100, 60), fixture.RAM(1024, 32, 32)}}.Build()
	path := filepath.Join(t.TempDir(), "vmcore")
	if err := im.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	if err := d.Verify(); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	d.Close()
	// 10 pages of the second PT_LOAD, and all of the third, are cut off.
	cut(t, path, int64(im.LoadOff[1])+50*4096)
	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := d.Info()
	if in.Complete || in.Check == nil || in.Check.Pages != 64+60+32 || in.Check.Beyond != 10+32 {
		t.Fatalf("cut file: complete %v, %+v", in.Complete, in.Check)
	}
	var ce *CheckError
	if err := d.Verify(); !errors.As(err, &ce) || ce.Beyond != 42 {
		t.Errorf("Verify = %v", err)
	}
}

// TestCheckCutStream: what savecore keeps of a flattened stream cut
// short, rebuilt, is flagged incomplete by its header and missing pages.
func TestCheckCutStream(t *testing.T) {
	var stream bytes.Buffer
	fw := diskdump.NewFlattenWriter(&stream)
	writeKdump(t, fw, 3000)
	fw.Close()
	out := fixture.CreateFile(t, "vmcore-incomplete")
	err := diskdump.Unflatten(bytes.NewReader(stream.Bytes()[:stream.Len()*2/3]), out)
	if !errors.Is(err, diskdump.ErrTruncated) {
		t.Fatalf("Unflatten: %v", err)
	}
	in, err := ReadInfo(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if in.Complete || !in.Incomplete || in.Check == nil || in.Check.Missing == 0 {
		t.Fatalf("complete %v, incomplete %v, check %+v", in.Complete, in.Incomplete, in.Check)
	}
	t.Log(in.Check.Detail)
}
