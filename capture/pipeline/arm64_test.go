package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestSaveARM64VMCOREINFOLacks saves a real 52-bit arm64 dump whose
// VMCOREINFO lacks what the page-table walk needs, or says what it cannot
// honour: every page is kept, and a note names what was missing.
func TestSaveARM64VMCOREINFOLacks(t *testing.T) {
	if testing.Short() {
		t.Skip("saves whole real dumps")
	}
	var d fixture.Dump
	for _, rd := range fixture.RealDumpsOf(t, "arm64", "6.12") {
		if rd.Line == "6.12" && rd.CPU == "" {
			d = rd
		}
	}
	if d.Path == "" {
		fixture.Missing(t, "no arm64 6.12 dump made with QEMU's default CPU")
		return
	}
	fh, err := os.Open(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fi, _ := fh.Stat()
	head := make([]byte, 1<<20)
	fh.ReadAt(head, 0)
	for _, tc := range []struct {
		name, old, new, says string
	}{
		// A 52-bit kernel may have run with 48 bits: only T1SZ says.
		{"no-T1SZ", "NUMBER(TCR_EL1_T1SZ)=", "NUMBER(TCR_EL1_XXXX)=", "TCR_EL1_T1SZ"},
		{"no-kimage_voffset", "NUMBER(kimage_voffset)=", "NUMBER(kimage_xxxxxxx)=", "kimage_voffset"},
		{"8K-pages", "PAGESIZE=4096", "PAGESIZE=8192", "PAGESIZE=8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := bytes.Index(head, []byte("\n"+tc.old))
			if i < 0 {
				t.Fatalf("%s not in the VMCOREINFO of %s", tc.old, d.Name())
			}
			r := &fxPatched{r: fh, at: int64(i + 1), b: []byte(tc.new)}
			src, err := vmcore.NewFile(r, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			out := fixture.CreateFile(t, "dump")
			st, err := Save(src, out, Options{Level: 31, Codec: codec.Snappy, Logf: func(string, ...any) {}})
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			if excluded := st.Cache + st.CachePriv + st.User + st.Free; excluded != 0 {
				t.Errorf("%d pages excluded by class with %s", excluded, tc.name)
			}
			if st.PagesKept+st.Zero != st.PagesTotal {
				t.Errorf("kept %d + zero %d of %d", st.PagesKept, st.Zero, st.PagesTotal)
			}
			if deg := fmt.Sprint(st.Degraded); !strings.Contains(deg, tc.says) {
				t.Errorf("degraded %q, want it to name %s", deg, tc.says)
			}
			t.Logf("kept %d, zero %d; %q", st.PagesKept, st.Zero, st.Degraded)
		})
	}
}
