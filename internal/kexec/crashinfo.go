package kexec

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// pnXNum is ELF's PN_XNUM: e_phnum at or above it means "look elsewhere".
const pnXNum = 0xffff

// maxCPUs bounds how many cpuN/crash_notes ReadCrashInfo reads: the
// kernel's NR_CPUS is at most 8192.
const maxCPUs = 8192

// CrashInfo is what a classic kexec_load(2) of a capture kernel needs to
// know about the running kernel, read from /proc and /sys: the memory the
// capture kernel describes in the ELF core header it is given, and where
// the reservation is. The kernel gathers this itself for kexec_file_load.
type CrashInfo struct {
	Machine elf.Machine // the running kernel's: elf.EM_X86_64 or elf.EM_AARCH64

	RAM      []Range // top-level "System RAM" of /proc/iomem
	Crash    Range   // the "Crash kernel" reservation the segments go into (crashk_res)
	CrashLow []Range // other "Crash kernel" ranges (crashkernel=…,low): RAM for the capture kernel

	// The firmware's ranges the x86 capture kernel must see in its e820
	// table: ACPI tables and NVS it reads, reserved ranges it must not
	// take for RAM.
	ACPI, NVS, Reserved []Range

	Notes      []Range // each CPU's crash_notes (physical address, size)
	VMCOREINFO Range   // the VMCOREINFO ELF note

	// Text is the physical range of the kernel image (_text to _end),
	// TextVaddr its virtual address; Text is zero when /proc/kcore does
	// not say (lockdown=confidentiality hides it). PageOffset is the
	// virtual address of physical 0 in the direct map, 0 when unknown.
	Text       Range
	TextVaddr  uint64
	PageOffset uint64

	// BootParams is the x86 zero page the running kernel was booted with
	// (/sys/kernel/boot_params/data), nil where there is none: the
	// capture kernel inherits its firmware facts (screen, EDD, ACPI RSDP).
	BootParams []byte
	// ACPIRSDP is the ACPI 2.0 RSDP from /sys/firmware/efi/systab on EFI
	// machines, 0 when absent.
	ACPIRSDP uint64
}

// ReadCrashInfo reads the running kernel's CrashInfo from a procfs at
// procRoot and a sysfs at sysfsRoot ("/proc" and "/sys" on a live system).
// machine is the running kernel's architecture.
func ReadCrashInfo(procRoot, sysfsRoot string, machine elf.Machine) (*CrashInfo, error) {
	ci := &CrashInfo{Machine: machine}
	f, err := os.Open(filepath.Join(procRoot, "iomem"))
	if err != nil {
		return nil, fmt.Errorf("kexec: %w", err)
	}
	res, err := ParseIOMem(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	ci.RAM = find(res, iomemSystemRAM, true)
	ci.ACPI = find(res, iomemACPITables, true)
	ci.NVS = find(res, iomemACPINVS, true)
	ci.Reserved = find(res, iomemReserved, true)
	crash := find(res, iomemCrashKernel, false)
	if len(crash) == 0 {
		return nil, fmt.Errorf("kexec: %w: no %q in %s/iomem", ErrNoReservation, iomemCrashKernel, procRoot)
	}
	// crashk_res is the reservation kexec_crash_size counts; with
	// crashkernel=…,high there is a low one too. Without the size, the
	// largest.
	want, known, err := readUint(filepath.Join(sysfsRoot, "kernel/kexec_crash_size"))
	if err != nil {
		return nil, err
	}
	pick := 0
	for i, c := range crash {
		if c.Size() > crash[pick].Size() {
			pick = i
		}
	}
	for i, c := range crash {
		if known && c.Size() == want {
			pick = i
			break
		}
	}
	ci.Crash = crash[pick]
	for i, c := range crash {
		if i != pick {
			ci.CrashLow = append(ci.CrashLow, c)
		}
	}
	if ci.Notes, err = readCrashNotes(sysfsRoot); err != nil {
		return nil, err
	}
	if ci.VMCOREINFO, err = readVMCOREINFO(sysfsRoot); err != nil {
		return nil, err
	}
	readKcore(ci, filepath.Join(procRoot, "kcore"))
	if machine == elf.EM_X86_64 {
		if b, err := os.ReadFile(filepath.Join(sysfsRoot, "kernel/boot_params/data")); err == nil && len(b) == zeroPageSize {
			ci.BootParams = b
		}
		if b, err := os.ReadFile(filepath.Join(sysfsRoot, "firmware/efi/systab")); err == nil {
			ci.ACPIRSDP = parseSystab(string(b))
		}
	}
	return ci, nil
}

// readCrashNotes reads each CPU's crash_notes address and
// crash_notes_size, in CPU order.
func readCrashNotes(sysfsRoot string) ([]Range, error) {
	dir := filepath.Join(sysfsRoot, "devices/system/cpu")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("kexec: crash notes: %w", err)
	}
	var cpus []int
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "cpu"))
		if err == nil && strings.HasPrefix(e.Name(), "cpu") && n >= 0 && n < maxCPUs {
			cpus = append(cpus, n)
		}
	}
	sort.Ints(cpus)
	var notes []Range
	for _, n := range cpus {
		cpu := filepath.Join(dir, fmt.Sprintf("cpu%d", n))
		b, err := os.ReadFile(filepath.Join(cpu, "crash_notes"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a possible CPU with notes
		}
		if err != nil {
			return nil, fmt.Errorf("kexec: %w", err)
		}
		addr, err := parseHex(string(b))
		if err != nil {
			return nil, fmt.Errorf("kexec: cpu%d/crash_notes: %w", n, err)
		}
		size, ok, err := readUint(filepath.Join(cpu, "crash_notes_size"))
		if err != nil {
			return nil, err
		}
		if !ok || size == 0 || size > 1<<20 {
			return nil, fmt.Errorf("kexec: cpu%d/crash_notes_size: missing or out of range (%d)", n, size)
		}
		notes = append(notes, Range{addr, addr + size - 1})
	}
	if len(notes) == 0 {
		return nil, fmt.Errorf("kexec: %w: no cpuN/crash_notes in %s (CONFIG_CRASH_DUMP off?)", ErrUnsupported, dir)
	}
	return notes, nil
}

// readVMCOREINFO reads /sys/kernel/vmcoreinfo: "ADDR SIZE", both hex
// ("%lx %x" before Linux 5.x, "%pa %x" after, with 0x).
func readVMCOREINFO(sysfsRoot string) (Range, error) {
	path := filepath.Join(sysfsRoot, "kernel/vmcoreinfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return Range{}, fmt.Errorf("kexec: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Range{}, fmt.Errorf("kexec: %s: %q is not \"ADDR SIZE\"", path, strings.TrimSpace(string(b)))
	}
	addr, err1 := parseHex(f[0])
	size, err2 := parseHex(f[1])
	if err1 != nil || err2 != nil || size == 0 || size > 1<<20 || addr+size < addr {
		return Range{}, fmt.Errorf("kexec: %s: bad address or size %q", path, strings.TrimSpace(string(b)))
	}
	return Range{addr, addr + size - 1}, nil
}

func parseHex(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	return strconv.ParseUint(s, 16, 64)
}

// readKcore learns the kernel image's place and the direct map's offset
// from /proc/kcore's program headers, as kexec-tools does: the running
// kernel describes its text (KCORE_TEXT) and RAM (KCORE_RAM) there with
// both addresses. Anything unreadable leaves them unknown.
func readKcore(ci *CrashInfo, path string) {
	f, err := elf.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	kcoreLayout(ci, f.Progs)
}

// kcoreLayout picks the direct map and the kernel image out of kcore's
// PT_LOADs with physical addresses (KCORE_RAM, KCORE_TEXT): the direct
// map's offset is that of the largest RAM entry; the image is the entry
// mapped at another offset (x86-64: __START_KERNEL_map; arm64: the
// kimage in the vmalloc area).
func kcoreLayout(ci *CrashInfo, progs []*elf.Prog) {
	var big *elf.Prog
	for _, p := range progs {
		if p.Type == elf.PT_LOAD && p.Paddr != ^uint64(0) && p.Memsz > 0 && inRanges(ci.RAM, p.Paddr) &&
			(big == nil || p.Memsz > big.Memsz) {
			big = p
		}
	}
	if big == nil {
		return
	}
	ci.PageOffset = big.Vaddr - big.Paddr
	for _, p := range progs {
		if p.Type == elf.PT_LOAD && p.Paddr != ^uint64(0) && p.Memsz > 0 && p.Vaddr-p.Paddr != ci.PageOffset &&
			inRanges(ci.RAM, p.Paddr) && p.Paddr+p.Memsz > p.Paddr {
			ci.Text = Range{p.Paddr, p.Paddr + p.Memsz - 1}
			ci.TextVaddr = p.Vaddr
			return
		}
	}
}

func inRanges(rs []Range, a uint64) bool {
	for _, r := range rs {
		if a >= r.Start && a <= r.End {
			return true
		}
	}
	return false
}

// parseSystab finds ACPI20= (else ACPI=) in /sys/firmware/efi/systab.
func parseSystab(s string) uint64 {
	var acpi, acpi20 uint64
	for _, l := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok {
			continue
		}
		n, err := parseHex(v)
		if err != nil {
			continue
		}
		switch k {
		case "ACPI20":
			acpi20 = n
		case "ACPI":
			acpi = n
		}
	}
	if acpi20 != 0 {
		return acpi20
	}
	return acpi
}

// Elfcorehdr builds the ELF core header the capture kernel is given with
// elfcorehdr=, as the kernel's crash_prepare_elf64_headers does: one
// PT_NOTE per CPU's crash_notes and one for VMCOREINFO (p_offset = p_paddr
// = the note's physical address: /proc/vmcore reads them from there), the
// kernel image's PT_LOAD where known, then one PT_LOAD per range of System
// RAM outside every crash reservation.
func (ci *CrashInfo) Elfcorehdr() ([]byte, error) {
	type phdr struct {
		typ                        elf.ProgType
		flags                      elf.ProgFlag
		off, vaddr, paddr, sz, aln uint64
	}
	var ph []phdr
	for _, n := range ci.Notes {
		ph = append(ph, phdr{typ: elf.PT_NOTE, off: n.Start, paddr: n.Start, sz: n.Size()})
	}
	ph = append(ph, phdr{typ: elf.PT_NOTE, off: ci.VMCOREINFO.Start, paddr: ci.VMCOREINFO.Start, sz: ci.VMCOREINFO.Size()})
	if ci.Text.End != 0 {
		ph = append(ph, phdr{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_W | elf.PF_X, off: ci.Text.Start,
			vaddr: ci.TextVaddr, paddr: ci.Text.Start, sz: ci.Text.Size()})
	}
	cut := append([]Range{ci.Crash}, ci.CrashLow...)
	sort.Slice(cut, func(i, j int) bool { return cut[i].Start < cut[j].Start })
	for _, r := range subtract(ci.RAM, cut) {
		va := uint64(0)
		if ci.PageOffset != 0 {
			va = ci.PageOffset + r.Start
		}
		ph = append(ph, phdr{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_W | elf.PF_X, off: r.Start,
			vaddr: va, paddr: r.Start, sz: r.Size()})
	}
	if len(ph) >= pnXNum {
		return nil, fmt.Errorf("kexec: elfcorehdr: %d program headers, more than ELF's %d", len(ph), pnXNum-1)
	}
	const ehsize, phentsize = 64, 56
	var b bytes.Buffer
	w := func(v ...any) {
		for _, x := range v {
			_ = writeLE(&b, x)
		}
	}
	b.Write([]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(elf.ELFOSABI_NONE)})
	b.Write(make([]byte, 8))
	w(uint16(elf.ET_CORE), uint16(ci.Machine), uint32(elf.EV_CURRENT), uint64(0), uint64(ehsize), uint64(0),
		uint32(0), uint16(ehsize), uint16(phentsize), uint16(len(ph)), uint16(0), uint16(0), uint16(0))
	for _, p := range ph {
		w(uint32(p.typ), uint32(p.flags), p.off, p.vaddr, p.paddr, p.sz, p.sz, p.aln)
	}
	return b.Bytes(), nil
}
