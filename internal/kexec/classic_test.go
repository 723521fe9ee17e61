package kexec

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// qemuIOMem is a QEMU q35 guest's /proc/iomem with 1 GiB and
// crashkernel=256M, trimmed.
const qemuIOMem = `00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-0009ffff : Reserved
000a0000-000bffff : PCI Bus 0000:00
000f0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-3ffdcfff : System RAM
  01000000-01e0241f : Kernel code
  02000000-0255afff : Kernel rodata
  02600000-0288e67f : Kernel data
  02d7f000-02ffffff : Kernel bss
  2f000000-3effffff : Crash kernel
3ffdd000-3fffffff : Reserved
  3ffe0000-3ffe0fff : ACPI Tables
b0000000-bfffffff : PCI MMCONFIG 0000 [bus 00-ff]
  b0000000-bfffffff : Reserved
fed1c000-fed1ffff : Reserved
feffc000-feffffff : Reserved
fffc0000-ffffffff : Reserved
`

// crashFixture writes /proc and /sys trees for ReadCrashInfo.
func crashFixture(t *testing.T, iomem string, cpus int) (proc, sys string) {
	root := t.TempDir()
	files := map[string]string{
		"proc/iomem":                    iomem,
		"sys/kernel/kexec_crash_size":   fmt.Sprint(256 << 20),
		"sys/kernel/vmcoreinfo":         "0x0000000002b3e000 1024\n",
		"sys/devices/system/cpu/online": "0-1\n",
	}
	for i := 0; i < cpus; i++ {
		files[fmt.Sprintf("sys/devices/system/cpu/cpu%d/crash_notes", i)] = fmt.Sprintf("%x\n", 0x3fc17e00+i*0x10000)
		files[fmt.Sprintf("sys/devices/system/cpu/cpu%d/crash_notes_size", i)] = "416\n"
	}
	for p, data := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, "proc"), filepath.Join(root, "sys")
}

func TestReadCrashInfo(t *testing.T) {
	proc, sys := crashFixture(t, qemuIOMem, 2)
	ci, err := ReadCrashInfo(proc, sys, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	want := &CrashInfo{
		Machine:    elf.EM_X86_64,
		RAM:        []Range{{0x1000, 0x9fbff}, {0x100000, 0x3ffdcfff}},
		Crash:      Range{0x2f000000, 0x3effffff},
		ACPI:       nil, // nested under Reserved: the e820 entry is the Reserved one
		Reserved:   []Range{{0, 0xfff}, {0x9fc00, 0x9ffff}, {0xf0000, 0xfffff}, {0x3ffdd000, 0x3fffffff}, {0xfed1c000, 0xfed1ffff}, {0xfeffc000, 0xfeffffff}, {0xfffc0000, 0xffffffff}},
		Notes:      []Range{{0x3fc17e00, 0x3fc17e00 + 415}, {0x3fc27e00, 0x3fc27e00 + 415}},
		VMCOREINFO: Range{0x2b3e000, 0x2b3e000 + 0x1024 - 1},
	}
	if fmt.Sprintf("%+v", ci) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", ci, want)
	}
}

func TestReadCrashInfoErrors(t *testing.T) {
	for _, tc := range []struct {
		name, iomem string
		cpus        int
		want        error
		wantText    string
	}{
		{"no reservation", strings.ReplaceAll(qemuIOMem, "Crash kernel", "Kernel data"), 1, ErrNoReservation, ""},
		{"no crash notes", qemuIOMem, 0, ErrUnsupported, ""},
		{"hidden addresses", "00000000-00000000 : System RAM\n00000000-00000000 : Crash kernel\n", 1, nil, "CAP_SYS_ADMIN"},
		{"garbage", "hello\n", 1, nil, "no \" : \""},
		{"reversed", "00002000-00001000 : System RAM\n", 1, nil, "bad range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, sys := crashFixture(t, tc.iomem, tc.cpus)
			_, err := ReadCrashInfo(proc, sys, elf.EM_X86_64)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want %v %q", err, tc.want, tc.wantText)
			}
		})
	}
}

func TestElfcorehdr(t *testing.T) {
	proc, sys := crashFixture(t, qemuIOMem, 2)
	ci, err := ReadCrashInfo(proc, sys, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	ci.Text, ci.TextVaddr, ci.PageOffset = Range{0x1000000, 0x2ffffff}, 0xffffffff81000000, 0xffff888000000000
	b, err := ci.Elfcorehdr()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 {
		t.Errorf("type %v machine %v", f.Type, f.Machine)
	}
	var got []string
	for _, p := range f.Progs {
		if p.Off != p.Paddr || p.Filesz != p.Memsz {
			t.Errorf("%v at %#x: p_offset %#x, filesz %#x memsz %#x: /proc/vmcore reads p_offset as the physical address", p.Type, p.Paddr, p.Off, p.Filesz, p.Memsz)
		}
		got = append(got, fmt.Sprintf("%v %#x+%#x v%#x", p.Type, p.Paddr, p.Memsz, p.Vaddr))
	}
	want := []string{
		"PT_NOTE 0x3fc17e00+0x1a0 v0x0",
		"PT_NOTE 0x3fc27e00+0x1a0 v0x0",
		"PT_NOTE 0x2b3e000+0x1024 v0x0",
		"PT_LOAD 0x1000000+0x2000000 v0xffffffff81000000",
		"PT_LOAD 0x1000+0x9ec00 v0xffff888000001000",
		// The reservation 0x2f000000-0x3effffff is left out: the
		// capture kernel runs there.
		"PT_LOAD 0x100000+0x2ef00000 v0xffff888000100000",
		"PT_LOAD 0x3f000000+0xfdd000 v0xffff88803f000000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("program headers:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBuildX86 checks the whole layout against testdata/classic-x86.golden
// and the invariants kexec_load enforces: page-aligned segments inside the
// reservation, not overlapping, buffers no larger than their memory.
func TestBuildX86(t *testing.T) {
	proc, sys := crashFixture(t, qemuIOMem, 2)
	ci, err := ReadCrashInfo(proc, sys, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	ci.BootParams = make([]byte, zeroPageSize)
	binary.LittleEndian.PutUint64(ci.BootParams[bpACPIRSDPAddr:], 0xf5a40)
	ci.BootParams[bpEFIInfo] = 0xaa
	binary.LittleEndian.PutUint64(ci.BootParams[bpSetupData:], 0x12345000)
	kernel := fakeBzImage()
	kernel[0x200], kernel[0x201] = 0xeb, 0x6a // the setup header's jump: it ends at 0x26c
	img, err := ParseBzImage(bytes.NewReader(kernel), int64(len(kernel)))
	if err != nil {
		t.Fatal(err)
	}
	initrd := bytes.Repeat([]byte{7}, 5<<20+123)
	l, err := BuildX86(ci, kernel, img, initrd, "console=ttyS0 nr_cpus=1")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "entry %#x\ncmdline %s\n", l.Entry, l.Cmdline)
	for i, s := range l.Segments {
		fmt.Fprintf(&out, "segment %-11s %#x-%#x buf %#x\n", s.What, s.Mem, s.Mem+s.MemSz-1, len(s.Buf))
		if s.Mem&(pageSize-1) != 0 || s.MemSz&(pageSize-1) != 0 || uint64(len(s.Buf)) > s.MemSz {
			t.Errorf("segment %s: not page aligned or buffer too big", s.What)
		}
		if s.Mem < ci.Crash.Start || s.Mem+s.MemSz-1 > ci.Crash.End {
			t.Errorf("segment %s outside the reservation", s.What)
		}
		if i > 0 && l.Segments[i-1].Mem+l.Segments[i-1].MemSz > s.Mem {
			t.Errorf("segment %s overlaps %s", s.What, l.Segments[i-1].What)
		}
	}
	for _, e := range l.E820 {
		fmt.Fprintf(&out, "e820 %#x-%#x type %d\n", e.Start, e.End, e.Type)
	}
	checkGolden(t, "classic-x86.golden", out.String())

	seg := func(what string) Segment {
		for _, s := range l.Segments {
			if s.What == what {
				return s
			}
		}
		t.Fatalf("no %s segment", what)
		return Segment{}
	}
	bp, k, hdr, rd := seg("boot params"), seg("kernel"), seg("elfcorehdr"), seg("initrd")
	le := binary.LittleEndian
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"cmd_line_ptr", uint64(le.Uint32(bp.Buf[bpCmdLinePtr:])), bp.Mem + zeroPageSize},
		{"ramdisk_image", uint64(le.Uint32(bp.Buf[bpRamdiskImage:])), rd.Mem},
		{"ramdisk_size", uint64(le.Uint32(bp.Buf[bpRamdiskSize:])), uint64(len(initrd))},
		{"code32_start", uint64(le.Uint32(bp.Buf[bpCode32Start:])), k.Mem},
		{"type_of_loader", uint64(bp.Buf[bpTypeOfLoader]), 0xd0},
		{"init_size (copied header)", uint64(le.Uint32(bp.Buf[bzInitSize:])), 40 << 20},
		{"acpi_rsdp_addr (inherited)", le.Uint64(bp.Buf[bpACPIRSDPAddr:]), 0xf5a40},
		{"efi_info (cleared)", uint64(bp.Buf[bpEFIInfo]), 0},
		{"setup_data (cleared)", le.Uint64(bp.Buf[bpSetupData:]), 0},
		{"e820_entries", uint64(bp.Buf[bpE820Entries]), uint64(len(l.E820))},
		{"elfcorehdr", l.Elfcorehdr, hdr.Mem},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if cmd := bp.Buf[zeroPageSize:]; string(cmd) != l.Cmdline+"\x00" {
		t.Errorf("command line in the segment %q", cmd)
	}
	if !bytes.Equal(k.Buf, kernel[img.SetupSize():]) {
		t.Error("kernel segment is not the protected-mode kernel")
	}
	// The ELF core header is not RAM to the capture kernel.
	for _, e := range l.E820 {
		if e.Type == e820RAM && e.Start <= hdr.Mem+hdr.MemSz-1 && e.End >= hdr.Mem {
			t.Errorf("e820 RAM %v covers the ELF core header", e.Range)
		}
	}
}

// TestPurgatoryX86 decodes the generated purgatory's operands: where it
// points rsi, rsp and the jump, and the GDT startup_64 requires.
func TestPurgatoryX86(t *testing.T) {
	const base, bp, entry = 0x2f000000, 0x2d000000, 0x2c000200
	b := purgatoryX86(base, bp, entry)
	le := binary.LittleEndian
	want := []byte{0xfa, 0x0f, 0x01, 0x15, 0x78, 0, 0, 0, 0x48, 0xbc}
	if !bytes.Equal(b[:len(want)], want) {
		t.Fatalf("prologue % x, want cli; lgdt 0x80 (% x)", b[:len(want)], want)
	}
	if got := le.Uint64(b[10:]); got != base+2*pageSize {
		t.Errorf("stack %#x", got)
	}
	i := bytes.Index(b, []byte{0x48, 0xbe})
	if i < 0 || le.Uint64(b[i+2:]) != bp {
		t.Errorf("rsi not set to the boot params")
	}
	if j := bytes.Index(b, []byte{0x48, 0xb8}); j < 0 || le.Uint64(b[j+2:]) != entry || !bytes.Equal(b[j+10:j+12], []byte{0xff, 0xe0}) {
		t.Errorf("no movabs entry, %%rax; jmp *%%rax")
	}
	// lretq lands on the movabs to rsi.
	lea := bytes.Index(b, []byte{0x48, 0x8d, 0x05})
	if lea < 0 || lea+7+int(le.Uint32(b[lea+3:])) != i {
		t.Errorf("lea target is not the instruction after lretq")
	}
	if l, gdt := le.Uint16(b[purgGDTDesc:]), le.Uint64(b[purgGDTDesc+2:]); l != 31 || gdt != base+purgGDT {
		t.Errorf("gdt descriptor limit %d base %#x", l, gdt)
	}
	if cs, ds := le.Uint64(b[purgGDT+bootCS:]), le.Uint64(b[purgGDT+bootDS:]); cs != 0x00af9a000000ffff || ds != 0x00cf92000000ffff {
		t.Errorf("__BOOT_CS %#x __BOOT_DS %#x", cs, ds)
	}
}

func TestBuildX86TooSmall(t *testing.T) {
	proc, sys := crashFixture(t, strings.Replace(qemuIOMem, "2f000000-3effffff : Crash kernel", "3c000000-3effffff : Crash kernel", 1), 1)
	if err := os.WriteFile(filepath.Join(sys, "kernel/kexec_crash_size"), []byte(fmt.Sprint(48<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	ci, err := ReadCrashInfo(proc, sys, elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	kernel := fakeBzImage()
	img, _ := ParseBzImage(bytes.NewReader(kernel), int64(len(kernel)))
	if _, err := BuildX86(ci, kernel, img, make([]byte, 8<<20), "x"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := BuildX86(ci, kernel, img, nil, strings.Repeat("a", 2040)); !errors.Is(err, ErrCmdlineTooLong) {
		t.Fatalf("err = %v, want ErrCmdlineTooLong", err)
	}
}

// checkGolden compares a layout with testdata/name (-update rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("layout:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

func TestSubtract(t *testing.T) {
	got := subtract([]Range{{0, 99}, {200, 299}}, []Range{{10, 19}, {90, 210}, {250, 400}})
	want := []Range{{0, 9}, {20, 89}, {211, 249}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func TestParseSystab(t *testing.T) {
	if got := parseSystab("MPS=0x1\nACPI20=0x7f77e014\nACPI=0x7f77e000\nSMBIOS=0x1\n"); got != 0x7f77e014 {
		t.Errorf("got %#x", got)
	}
	if got := parseSystab("ACPI=0x7f77e000\n"); got != 0x7f77e000 {
		t.Errorf("got %#x", got)
	}
}

func FuzzParseIOMem(f *testing.F) {
	f.Add(qemuIOMem)
	f.Add("00000000-00000000 : x\n")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := ParseIOMem(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, r := range res {
			if r.End < r.Start || r.Depth < 0 {
				t.Fatalf("bad resource %+v", r)
			}
		}
		subtract(find(res, iomemSystemRAM, true), find(res, iomemCrashKernel, false))
	})
}
