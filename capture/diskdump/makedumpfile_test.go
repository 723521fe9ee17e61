package diskdump

import (
	"bytes"
	"testing"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/internal/fixture"
)

// TestReadMakedumpfile reads makedumpfile 1.7.2's -c (zlib) and -l (lzo)
// output of the real vmcores: the header says what the vmcore says, and
// every dumped page equals the vmcore's.
func TestReadMakedumpfile(t *testing.T) {
	if testing.Short() {
		t.Skip("reads whole dumps")
	}
	for _, d := range fixture.RealDumps(t) {
		for _, tc := range []struct {
			flag  string
			codec codec.Codec
		}{{"-c", codec.Zlib}, {"-l", codec.LZO}} {
			t.Run(d.Name()+tc.flag, func(t *testing.T) {
				src := d.Open(t)
				ref := makedumpfileRef(t, d.Path, tc.flag, "-d", "31")
				kf, err := OpenFile(ref)
				if err != nil {
					t.Fatal(err)
				}
				defer kf.Close()
				h := kf.Header
				if h.HeaderVersion != 6 || h.Compression() != tc.codec || kf.Incomplete() {
					t.Errorf("version %d compression %v incomplete %v", h.HeaderVersion, h.Compression(), kf.Incomplete())
				}
				want := HeaderFromVmcore(src)
				if h.Release != want.Release || h.Version != want.Version || h.Machine != want.Machine ||
					h.Sysname != want.Sysname || h.Nodename != want.Nodename || h.Domainname != want.Domainname {
					t.Errorf("utsname %q, HeaderFromVmcore %q", []string{h.Sysname, h.Nodename, h.Release, h.Version, h.Machine, h.Domainname},
						[]string{want.Sysname, want.Nodename, want.Release, want.Version, want.Machine, want.Domainname})
				}
				if h.PhysBase != want.PhysBase || h.MaxMapnr != want.MaxMapnr || h.NrCPUs != want.NrCPUs ||
					h.DumpLevel != 31 || h.BlockSize != want.BlockSize || !h.Timestamp.Equal(want.Timestamp) {
					t.Errorf("header %+v", h)
				}
				if !bytes.Equal(h.Notes, src.NoteData) || h.VMCOREINFOOffset != src.VMCOREINFOOffset || h.VMCOREINFOSize != src.VMCOREINFOSize {
					t.Errorf("notes differ, VMCOREINFO at %d+%d want %d+%d", h.VMCOREINFOOffset, h.VMCOREINFOSize, src.VMCOREINFOOffset, src.VMCOREINFOSize)
				}
				if kf.VMCOREINFO == nil || kf.VMCOREINFO.OSRelease() != want.Release || len(kf.PRStatus) != len(src.PRStatus) {
					t.Errorf("VMCOREINFO %v, %d PRSTATUS", kf.VMCOREINFO != nil, len(kf.PRStatus))
				}
				// The 1st bitmap is the RAM the vmcore holds.
				for pfn := uint64(0); pfn < kf.MaxPFN(); pfn++ {
					if kf.IsRAM(pfn) != ramPFN(src, pfn) {
						t.Fatalf("IsRAM(%#x) = %v", pfn, kf.IsRAM(pfn))
					}
					if kf.IsDumpable(pfn) && !kf.IsRAM(pfn) {
						t.Fatalf("pfn %#x dumpable, not RAM", pfn)
					}
				}
				n := comparePages(t, kf, src)
				t.Logf("%s: %d pages equal the vmcore", tc.flag, n)
			})
		}
	}
}
