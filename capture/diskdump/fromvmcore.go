package diskdump

import (
	"bytes"
	"debug/elf"
	"time"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// HeaderFromVmcore fills a Header for a dump of the ELF vmcore f: the
// crashed kernel's utsname (read from init_uts_ns in its memory when the
// vmcore holds it, else "Linux", "(none)", VMCOREINFO's OSRELEASE, "#1"
// and the ELF machine), CRASHTIME, the page size, max_mapnr, one CPU per
// NT_PRSTATUS note, phys_base and the notes. The caller sets Status (the
// compression flag) and DumpLevel.
func HeaderFromVmcore(f *vmcore.File) Header {
	h := Header{
		Sysname:          "Linux",
		Nodename:         "(none)",
		Version:          "#1",
		Domainname:       "(none)",
		BlockSize:        int(f.PageSize),
		MaxMapnr:         f.MaxPFN(),
		NrCPUs:           len(f.PRStatus),
		Notes:            f.NoteData,
		VMCOREINFOOffset: f.VMCOREINFOOffset,
		VMCOREINFOSize:   f.VMCOREINFOSize,
	}
	switch f.Machine {
	case elf.EM_X86_64:
		h.Machine = "x86_64"
	case elf.EM_AARCH64:
		h.Machine = "aarch64"
	default:
		h.Machine = "unknown"
	}
	h.Timestamp = time.Now().Truncate(time.Second)
	info := f.VMCOREINFO
	if info == nil {
		h.Release = "unknown"
		return h
	}
	h.Release = info.OSRelease()
	if h.Release == "" {
		h.Release = "unknown"
	}
	if t, ok := info.CrashTime(); ok && t > 0 {
		h.Timestamp = time.Unix(t, 0)
	}
	if pb, ok := info.Number("phys_base"); ok {
		h.PhysBase = uint64(pb)
	} else if po, ok := info.Number("PHYS_OFFSET"); ok && f.Machine == elf.EM_AARCH64 {
		// makedumpfile's arm64 phys_base.
		h.PhysBase = uint64(po)
	}
	if uts, ok := readUTS(f, h.PhysBase); ok {
		h.Sysname, h.Nodename, h.Release = uts[0], uts[1], uts[2]
		h.Version, h.Machine, h.Domainname = uts[3], uts[4], uts[5]
	}
	return h
}

// readUTS reads struct new_utsname from init_uts_ns in the dumped memory.
func readUTS(f *vmcore.File, physBase uint64) ([6]string, bool) {
	var uts [6]string
	info := f.VMCOREINFO
	sym, ok := info.Symbol("init_uts_ns")
	if !ok {
		return uts, false
	}
	// The name is the first member since Linux 5.11; a struct kref
	// preceded it before, and older kernels do not export the offset.
	offs := []uint64{0, 4, 8}
	if o, ok := info.Offset("uts_namespace.name"); ok && o >= 0 && o < 4096 {
		offs = []uint64{uint64(o)}
	}
	for _, o := range offs {
		paddr, ok := virtToPhys(f, sym+o, physBase)
		if !ok {
			return uts, false
		}
		var b [6 * utsLen]byte
		if _, err := f.ReadPhys(b[:], paddr); err != nil {
			return uts, false
		}
		good := true
		for i := range uts {
			field := b[i*utsLen : (i+1)*utsLen]
			end := bytes.IndexByte(field, 0)
			if end < 0 {
				good = false
				break
			}
			uts[i] = string(field[:end])
		}
		if good && uts[0] == "Linux" && uts[2] != "" && uts[3] != "" && uts[4] != "" {
			return uts, true
		}
	}
	return uts, false
}

// virtToPhys translates a kernel virtual address through the vmcore's
// PT_LOADs, which carry virtual addresses as /proc/vmcore writes them, or
// through the kernel image's mapping: x86_64's fixed one, arm64's at
// kimage_voffset (its /proc/vmcore maps the linear map only, and QEMU's
// cores carry no virtual addresses).
func virtToPhys(f *vmcore.File, v, physBase uint64) (uint64, bool) {
	for _, s := range f.Segments {
		if s.VirtAddr != 0 && s.VirtAddr != s.PhysAddr && v >= s.VirtAddr && v-s.VirtAddr < s.MemSize {
			return s.PhysAddr + (v - s.VirtAddr), true
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		if v >= kmem.X86StartKernelMap {
			return v - kmem.X86StartKernelMap + physBase, true
		}
	case elf.EM_AARCH64:
		if voff, ok := f.VMCOREINFO.Number("kimage_voffset"); ok && v >= uint64(voff) {
			return v - uint64(voff), true
		}
	}
	return 0, false
}
