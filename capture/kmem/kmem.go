package kmem

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// PhysReader reads a dump's physical memory. vmcore.File and diskdump.File
// implement it; reads of memory not in the dump fail.
type PhysReader interface {
	ReadPhys(p []byte, paddr uint64) (int, error)
}

// Sentinel errors.
var (
	ErrUnsupported = errors.New("kmem: unsupported machine")
	// ErrMissing means VMCOREINFO lacks an entry the operation needs.
	ErrMissing = errors.New("kmem: VMCOREINFO lacks")
	// ErrNotMapped means the page tables map no memory at the address.
	ErrNotMapped = errors.New("kmem: address not mapped")
)

// translator is the machine-specific part.
type translator interface {
	// translate returns the physical address of vaddr and the number of
	// bytes mapped contiguously from there (to the end of its page).
	translate(vaddr uint64) (paddr, n uint64, err error)
}

// Memory reads kernel virtual memory through a dump's physical memory.
// It is not safe for concurrent use (it caches page-table pages).
type Memory struct {
	Phys      PhysReader
	Info      *vmcoreinfo.Info
	Machine   elf.Machine
	ByteOrder binary.ByteOrder
	tr        translator
	buf       [8]byte
}

// New prepares virtual-memory access for a dump of machine m.
func New(pr PhysReader, info *vmcoreinfo.Info, m elf.Machine) (*Memory, error) {
	if info == nil {
		return nil, fmt.Errorf("%w: the dump has no VMCOREINFO", ErrMissing)
	}
	mem := &Memory{Phys: pr, Info: info, Machine: m}
	switch m {
	case elf.EM_X86_64:
		mem.ByteOrder = binary.LittleEndian
		tr, err := newX86_64(mem)
		if err != nil {
			return nil, err
		}
		mem.tr = tr
	case elf.EM_AARCH64:
		mem.ByteOrder = binary.LittleEndian
		tr, err := newARM64(mem)
		if err != nil {
			return nil, err
		}
		mem.tr = tr
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, m)
	}
	return mem, nil
}

// Translate returns the physical address of a kernel virtual address and
// how many bytes from it are mapped contiguously (to the end of the page
// or block that maps it: 4 KiB, 2 MiB or 1 GiB on x86_64; a page, or a
// block of one or more table levels, on arm64).
func (m *Memory) Translate(vaddr uint64) (paddr, n uint64, err error) {
	return m.tr.translate(vaddr)
}

// ReadVirt reads len(p) bytes at kernel virtual address vaddr.
func (m *Memory) ReadVirt(p []byte, vaddr uint64) (int, error) {
	done := 0
	for done < len(p) {
		va := vaddr + uint64(done)
		pa, n, err := m.tr.translate(va)
		if err != nil {
			return done, err
		}
		want := uint64(len(p) - done)
		if n < want {
			want = n
		}
		k, err := m.Phys.ReadPhys(p[done:done+int(want)], pa)
		done += k
		if err != nil {
			return done, fmt.Errorf("kmem: read %#x (physical %#x): %w", va, pa, err)
		}
	}
	return done, nil
}

// U64 reads a 64-bit value at vaddr.
func (m *Memory) U64(vaddr uint64) (uint64, error) {
	if _, err := m.ReadVirt(m.buf[:8], vaddr); err != nil {
		return 0, err
	}
	return m.ByteOrder.Uint64(m.buf[:8]), nil
}

// U32 reads a 32-bit value at vaddr.
func (m *Memory) U32(vaddr uint64) (uint32, error) {
	if _, err := m.ReadVirt(m.buf[:4], vaddr); err != nil {
		return 0, err
	}
	return m.ByteOrder.Uint32(m.buf[:4]), nil
}

// Symbol returns SYMBOL(name) or an ErrMissing error naming it.
func (m *Memory) Symbol(name string) (uint64, error) {
	v, ok := m.Info.Symbol(name)
	if !ok {
		return 0, fmt.Errorf("%w SYMBOL(%s)", ErrMissing, name)
	}
	return v, nil
}

// Offset returns OFFSET(name) or an ErrMissing error naming it.
func (m *Memory) Offset(name string) (uint64, error) {
	v, ok := m.Info.Offset(name)
	if !ok || v < 0 {
		return 0, fmt.Errorf("%w OFFSET(%s)", ErrMissing, name)
	}
	return uint64(v), nil
}

// Size returns SIZE(name) or an ErrMissing error naming it.
func (m *Memory) Size(name string) (uint64, error) {
	v, ok := m.Info.Size(name)
	if !ok || v < 0 {
		return 0, fmt.Errorf("%w SIZE(%s)", ErrMissing, name)
	}
	return uint64(v), nil
}

// Number returns NUMBER(name) or an ErrMissing error naming it.
func (m *Memory) Number(name string) (int64, error) {
	v, ok := m.Info.Number(name)
	if !ok {
		return 0, fmt.Errorf("%w NUMBER(%s)", ErrMissing, name)
	}
	return v, nil
}

// UTSName is the crashed kernel's struct new_utsname.
type UTSName struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

// ReadUTSName reads init_uts_ns.name, the kernel's `uname` answers.
func (m *Memory) ReadUTSName() (UTSName, error) {
	sym, err := m.Symbol("init_uts_ns")
	if err != nil {
		return UTSName{}, err
	}
	off, ok := m.Info.Offset("uts_namespace.name")
	if !ok {
		// Older kernels do not export it; refuse to guess the layout.
		return UTSName{}, fmt.Errorf("%w OFFSET(uts_namespace.name)", ErrMissing)
	}
	const field = 65 // __NEW_UTS_LEN + 1
	b := make([]byte, 6*field)
	if _, err := m.ReadVirt(b, sym+uint64(off)); err != nil {
		return UTSName{}, err
	}
	s := func(i int) string {
		f := b[i*field : (i+1)*field]
		for j, c := range f {
			if c == 0 {
				return string(f[:j])
			}
		}
		return string(f)
	}
	return UTSName{s(0), s(1), s(2), s(3), s(4), s(5)}, nil
}
