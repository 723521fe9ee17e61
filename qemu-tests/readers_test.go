package qemutests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

// TestReaders has the capture kernel of every line of the kernel matrix
// write an unfiltered ELF dump, then makes every output kind from it on
// the host and has the real readers open them: Debian 12's drgn,
// makedumpfile and crash, and sid's newer ones (scripts/sid-root). A line
// fails when a reader it needs (harness.Matrix) does not read its dumps;
// the others are tried, and its row of the kernel table says which could.
// The ELF dump is kept for the unit tests (GOKDUMP_KEEP_VMCORES).
func TestReaders(t *testing.T) {
	t.Parallel()
	for _, line := range harness.Lines() {
		t.Run(line.Name, func(t *testing.T) {
			t.Parallel()
			r := crash(t, harness.Spec{Line: line.Name, Dbg: true,
				CaptureAppend: "gokdump.format=elf gokdump.dump_level=0"})
			// crash takes a ':' in a dump's name for an address.
			elfFile := filepath.Join(r.Spec.Dir, "vmcore.elf")
			if err := r.Extract(savedPath(t, r), elfFile); err != nil {
				t.Fatal(err)
			}
			checkDump(t, r, elfFile, want{format: anydump.ELF, userAll: true, cacheAll: true})

			rec := r.Kernel.Record(t.Name())
			versions, err := harness.ReaderVersions(repoRoot)
			if err != nil {
				fixture.Missing(t, "no sid tree for the newer readers: %v", err)
			}
			rec.Versions = versions
			v := newVerdicts(t, r, &rec)
			defer record(t, rec)

			for _, rd := range []matrix.Reader{matrix.DrgnOld, matrix.DrgnNew} {
				ok, why := drgnRead(t, rd, r, elfFile)
				v.set(rd, "the ELF dump", ok, why)
				ok, why = drgnPhys(t, rd, r, elfFile)
				v.set(rd, "the ELF dump's physical memory, no symbols", ok, why)
			}
			ours := ourDmesg(t, elfFile)
			for _, rd := range []matrix.Reader{matrix.MDFOld, matrix.MDFNew} {
				ref, err := mdfDmesg(t, rd, elfFile)
				switch {
				case err != nil:
					v.set(rd, "--dump-dmesg", false, err.Error())
				case !bytes.Equal(ours, ref):
					v.set(rd, "--dump-dmesg", false, "differs from gokdump dmesg: "+firstDiff(ours, ref))
				default:
					v.set(rd, "--dump-dmesg", true, "")
				}
			}
			for _, rd := range []matrix.Reader{matrix.CrashOld, matrix.CrashNew} {
				if r.Kernel.VMLinux != "" {
					ok, why := crashRead(t, rd, r, elfFile)
					v.set(rd, "the ELF dump", ok, why)
				}
			}

			src, err := vmcore.Open(elfFile)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			for _, c := range []codec.Codec{codec.Zstd, codec.Zlib, codec.Snappy} {
				out := save(t, src, r.Spec.Dir, pipeline.Options{Level: 31, Codec: c})
				checkDump(t, r, out, want{format: anydump.Kdump})
				fullRead(t, src, out)
				if got := ourDmesg(t, out); !bytes.Equal(got, ours) {
					t.Errorf("gokdump dmesg on our %v dump differs from that on the ELF dump:\n%s", c, firstDiff(got, ours))
				}
				if c == codec.Zlib {
					// Debian 12's makedumpfile reads zlib and lzo only.
					for _, rd := range []matrix.Reader{matrix.MDFOld, matrix.MDFNew} {
						b, err := mdfDmesg(t, rd, out)
						if err == nil && !bytes.Contains(b, []byte(guest.Marker("KMSG", r.ID, 0))) {
							err = errors.New("the log lacks the kmsg marker")
						}
						v.set(rd, "--dump-dmesg on our zlib dump", err == nil, fmt.Sprint(err))
						refiltered := filepath.Join(r.Spec.Dir, "refiltered")
						_, err = mdfRun(t, rd, r.Spec.Dir, "-c", "-d", "31", out, refiltered)
						v.set(rd, "-c -d 31 on our zlib dump", err == nil, fmt.Sprint(err))
						os.Remove(refiltered)
					}
				}
				if c != codec.Snappy && r.Kernel.VMLinux != "" {
					// crash as README shows it, on the dumps users keep:
					// each run reads the whole vmlinux, so Debian 12's
					// where the line needs it, sid's on the newest line.
					for _, rd := range []matrix.Reader{matrix.CrashOld, matrix.CrashNew} {
						if rd == matrix.CrashOld && line.Needs(rd) || rd == matrix.CrashNew && line.Name == harness.Newest().Name {
							ok, why := crashRead(t, rd, r, out)
							v.set(rd, fmt.Sprintf("our %v dump", c), ok, why)
						}
					}
				}
				os.Remove(out)
			}
			out := save(t, src, r.Spec.Dir, pipeline.Options{Level: 1, Codec: codec.Zstd})
			checkDump(t, r, out, want{format: anydump.Kdump, userAll: true, cacheAll: true})
			os.Remove(out)

			out = save(t, src, r.Spec.Dir, pipeline.Options{Level: 31, Format: pipeline.FormatELF})
			checkDump(t, r, out, want{format: anydump.ELF})
			for _, rd := range []matrix.Reader{matrix.MDFOld, matrix.MDFNew} {
				b, err := mdfDmesg(t, rd, out)
				if err == nil && !bytes.Contains(b, []byte(guest.Marker("KMSG", r.ID, 0))) {
					err = errors.New("the log lacks the kmsg marker")
				}
				v.set(rd, "--dump-dmesg on our ELF dump", err == nil, fmt.Sprint(err))
			}
			os.Remove(out)

			compareClasses(t, r, src, elfFile, v)
			keep(t, r, elfFile, "elf")
		})
	}
}

// save writes src with opts into dir and returns the file.
func save(t *testing.T, src *vmcore.File, dir string, opts pipeline.Options) string {
	t.Helper()
	name := filepath.Join(dir, fmt.Sprintf("dump-%d-%v-%s", opts.Level, opts.Codec, opts.Format))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pipeline.Save(src, f, opts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("save %s: %v", filepath.Base(name), err)
	}
	t.Logf("%s", st.Summary())
	return name
}

// fullRead decompresses every page of a kdump file and compares it with
// the source: crash and drgn read only the pages they need.
func fullRead(t *testing.T, src *vmcore.File, file string) {
	t.Helper()
	d, err := anydump.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ps := d.PageSize
	a, b := make([]byte, ps), make([]byte, ps)
	n := 0
	for pfn, err := range d.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		if err := d.KdumpFile.ReadPage(pfn, a); err != nil {
			t.Fatalf("%s: pfn %#x: %v", filepath.Base(file), pfn, err)
		}
		if _, err := src.ReadPhys(b, pfn*uint64(ps)); err != nil {
			t.Fatalf("source pfn %#x: %v", pfn, err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: pfn %#x differs from the source", filepath.Base(file), pfn)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s holds no pages", file)
	}
}

func ourDmesg(t *testing.T, file string) []byte {
	t.Helper()
	d, err := anydump.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mem, err := kmem.New(d, d.VMCOREINFO, d.Machine)
	if err != nil {
		t.Fatal(err)
	}
	l, err := printk.Read(mem)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := l.WriteDmesg(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < min(len(al), len(bl)); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n ours: %q\n  ref: %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths differ: %d vs %d lines", len(al), len(bl))
}

var mdfRow = regexp.MustCompile(`(?m)^\s*(Pages filled with zero|Non-private cache pages|Private cache pages|User process data pages|Free pages|Hwpoison pages|Offline pages)\s*:\s*0x([0-9a-f]+)`)

// classes are the page-class rows of makedumpfile's report, in its order.
var classes = []string{"Pages filled with zero", "Non-private cache pages", "Private cache pages",
	"User process data pages", "Free pages", "Hwpoison pages", "Offline pages"}

// compareClasses runs makedumpfile -d 31 on the ELF dump, Debian 12's
// and sid's, and compares their page classes and the pages their dumps
// keep with ours; the line's SameClasses must agree, the others' numbers
// are logged.
func compareClasses(t *testing.T, r *harness.Run, src *vmcore.File, elfFile string, v *verdicts) {
	t.Helper()
	line := harness.LineNamed(r.Spec.Line)
	tmp := filepath.Join(r.Spec.Dir, "classes")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pipeline.Save(src, f, pipeline.Options{Level: 31, Codec: codec.Snappy})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]uint64{
		"Pages filled with zero": st.Zero, "Non-private cache pages": st.Cache,
		"Private cache pages": st.CachePriv, "User process data pages": st.User,
		"Free pages": st.Free, "Hwpoison pages": st.HWPoison, "Offline pages": st.Offline,
		kept: dumpPages(t, tmp),
	}
	os.Remove(tmp)
	theirs := map[matrix.Reader]map[string]uint64{}
	for _, rd := range []matrix.Reader{matrix.MDFOld, matrix.MDFNew} {
		out := filepath.Join(r.Spec.Dir, "mdf")
		b, err := mdfRun(t, rd, r.Spec.Dir, "-l", "-d", "31", "--message-level", "31", elfFile, out)
		if !v.set(rd, "-d 31 on the ELF dump", err == nil, fmt.Sprint(err)) {
			continue
		}
		theirs[rd] = map[string]uint64{kept: dumpPages(t, out)}
		os.Remove(out)
		for _, m := range mdfRow.FindAllStringSubmatch(string(b), -1) {
			n, _ := strconv.ParseUint(m[2], 16, 64)
			theirs[rd][m[1]] = n
		}
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-26s %10s %12s %18s\n", "class (pages)", "gokdump", matrix.MDFOld, matrix.MDFNew)
	for _, k := range append(classes, kept) {
		fmt.Fprintf(&table, "%-26s %10d %12d %18d\n", k, ours[k], theirs[matrix.MDFOld][k], theirs[matrix.MDFNew][k])
		for _, rd := range line.SameClasses {
			if m := theirs[rd]; m != nil && ours[k] != m[k] {
				t.Errorf("-d 31, %s: gokdump %d, %s %d", k, ours[k], rd, m[k])
			}
		}
	}
	t.Logf("%s at -d 31:\n%s", r.Kernel.KVer, table.String())
	for _, rd := range []matrix.Reader{matrix.MDFOld, matrix.MDFNew} {
		if m := theirs[rd]; m != nil && m[kept] != ours[kept] && !slices.Contains(line.SameClasses, rd) {
			v.note(rd, fmt.Sprintf("-d 31 keeps %d pages, gokdump %d", m[kept], ours[kept]))
		}
	}
	if ours["User process data pages"] < uint64(r.Spec.AnonMiB)*256 {
		t.Errorf("only %d user pages found; the guest had %d MiB of user memory", ours["User process data pages"], r.Spec.AnonMiB)
	}
}

// kept is compareClasses' row of the pages a dump holds.
const kept = "pages in the dump"

// dumpPages counts the pages a dump holds.
func dumpPages(t *testing.T, file string) uint64 {
	t.Helper()
	d, err := anydump.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n uint64
	for _, err := range d.Pages() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}
