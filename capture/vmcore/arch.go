package vmcore

import "debug/elf"

// arch holds what the reader needs to know of a machine. The machine comes
// from the dump's ELF header, never from the running host.
type arch struct {
	nregs    int   // registers in pr_reg
	pcIndex  int   // index of the program counter in pr_reg
	spIndex  int   // index of the stack pointer in pr_reg
	pageSize int64 // default page size when VMCOREINFO does not say
	regNames []string
}

func archOf(m elf.Machine) arch {
	switch m {
	case elf.EM_X86_64:
		return archX86_64
	case elf.EM_AARCH64:
		return archAArch64
	}
	return arch{pageSize: 4096, pcIndex: -1, spIndex: -1}
}

func defaultPageSize(m elf.Machine) int64 { return archOf(m).pageSize }

// PC returns the program counter saved for this CPU, if the machine is known.
func (p PRStatus) PC(m elf.Machine) (uint64, bool) {
	a := archOf(m)
	if a.pcIndex < 0 || a.pcIndex >= len(p.Regs) {
		return 0, false
	}
	return p.Regs[a.pcIndex], true
}

// SP returns the stack pointer saved for this CPU, if the machine is known.
func (p PRStatus) SP(m elf.Machine) (uint64, bool) {
	a := archOf(m)
	if a.spIndex < 0 || a.spIndex >= len(p.Regs) {
		return 0, false
	}
	return p.Regs[a.spIndex], true
}

// RegNames returns the names of pr_reg's entries for machine m.
func RegNames(m elf.Machine) []string { return archOf(m).regNames }
