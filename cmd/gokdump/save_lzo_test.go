package main

import (
	"path/filepath"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
)

// TestSaveLZO: --compress lzo (any case) writes makedumpfile -l's page
// format, and the dump reads back.
func TestSaveLZO(t *testing.T) {
	core := testVmcore(t, 48, 1764246000)
	out := filepath.Join(t.TempDir(), "dump")
	if code, _, stderr := gokdump("save", "--quiet", "--compress", "LZO", "-d", "1", "--vmcore", core, out); code != exitOK {
		t.Fatalf("save --compress LZO: exit %d: %s", code, stderr)
	}
	f, err := diskdump.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Header.Status&codec.FlagMask != codec.FlagLZO {
		t.Errorf("header status %#x, want the lzo flag", f.Header.Status)
	}
	page := make([]byte, f.PageSize())
	n := 0
	for pfn, err := range f.DumpedPFNs() {
		if err != nil {
			t.Fatal(err)
		}
		if err := f.ReadPage(pfn, page); err != nil {
			t.Fatalf("pfn %#x: %v", pfn, err)
		}
		n++
	}
	if n == 0 {
		t.Error("no pages")
	}
}
