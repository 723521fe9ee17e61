package anydump

import (
	"encoding/binary"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// FuzzReadInfo runs ReadInfo, Check and Verify on files made by editing
// a small kdump file and a small ELF core (fixture.Patched).
func FuzzReadInfo(f *testing.F) {
	var kd fixture.MemFile
	writeKdumpOpts(f, &kd, 24, 1024)
	notes := fixture.VMCOREINFO(binary.LittleEndian, "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nCRASHTIME=1795782722\n")
	elfCore := fixture.Core{Notes: notes, Loads: []fixture.Load{fixture.RAM(0, 4, 3), fixture.RAM(16, 2, 2)}}.Build().Bytes()
	bases := [][]byte{kd.Bytes(), elfCore}
	for i := range bases {
		f.Add([]byte{byte(i)})
	}
	f.Add(append([]byte{0}, fixture.Edit(len(kd.Bytes())-100)...))
	f.Add(append([]byte{1}, fixture.Edit(len(elfCore)-5000)...))
	// One file, rewritten in place: truncating a file to zero and
	// writing it again makes ext4 flush it on close (auto_da_alloc).
	out := fixture.CreateFile(f, "vmcore")
	path := out.Name()
	f.Fuzz(func(t *testing.T, in []byte) {
		data := fixture.Patched(bases, in)
		if _, err := out.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := out.Truncate(int64(len(data))); err != nil {
			t.Fatal(err)
		}
		d, err := Open(path)
		if err != nil {
			return
		}
		defer d.Close()
		info := d.Info()
		if info.Complete != (!info.Incomplete && info.Check == nil) {
			t.Fatalf("complete %v, incomplete %v, check %+v", info.Complete, info.Incomplete, info.Check)
		}
		if c := info.Check; c != nil && c.Pages > 0 && (c.Missing > c.Pages || c.Beyond > c.Missing) {
			t.Fatalf("check %+v", c)
		}
		if info.Pages <= 1000 {
			d.Verify()
		}
	})
}
