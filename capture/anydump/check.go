package anydump

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// ErrTruncated is wrapped by the *CheckError of a dump that lacks pages its
// headers promise. A kdump file's also wraps diskdump.ErrTruncated.
var ErrTruncated = errors.New("anydump: dump truncated")

// CheckError is what Dump.Check finds missing: the pages the dump's
// headers promise that its file cannot deliver.
type CheckError struct {
	// Pages is the number of pages the headers promise: a kdump file's
	// dumped pages, the pages of an ELF dump's PT_LOADs that have file
	// data (p_filesz).
	Pages uint64
	// Beyond counts those whose data would lie past the end of the file.
	Beyond uint64
	// Missing counts all that cannot be read, Beyond included.
	Missing uint64
	// Err is the format's own account (a *diskdump.Damage, or the
	// ELF dump's PT_LOAD that first passes the end of the file).
	Err error
}

func (e *CheckError) Error() string { return e.Err.Error() }

// Unwrap returns ErrTruncated and the format's error.
func (e *CheckError) Unwrap() []error { return []error{ErrTruncated, e.Err} }

// Check tests cheaply that the file holds what the dump's headers
// promise: for a kdump file, its page descriptors and the data they name
// (diskdump.File.Check, 24 bytes read per page); for an ELF dump, that
// every PT_LOAD's file data lies within the file. It returns nil, a
// *CheckError, or an I/O error.
func (d *Dump) Check() error {
	switch {
	case d.KdumpFile != nil:
		err := d.KdumpFile.Check()
		var dm *diskdump.Damage
		if !errors.As(err, &dm) {
			return err
		}
		return &CheckError{Pages: dm.Pages, Beyond: dm.Beyond, Missing: dm.Missing(), Err: err}
	case d.ELF != nil:
		return checkELF(d.ELF.ReaderAt(), d.Size, uint64(d.PageSize))
	}
	return nil
}

// checkELF compares the file ranges of an ELF core's PT_LOADs with its
// size. package vmcore clips the segments of a cut file to what is there,
// so the program headers are read again here as the file states them.
func checkELF(r io.ReaderAt, size int64, ps uint64) error {
	loads, err := readLoads(r, size)
	if err != nil {
		return err
	}
	ce := &CheckError{}
	var first *elf.Prog64
	for i := range loads {
		p := &loads[i]
		n := (p.Filesz + ps - 1) / ps
		ce.Pages += n
		if p.Off+p.Filesz <= uint64(size) {
			continue
		}
		in := uint64(0)
		if p.Off < uint64(size) {
			in = (uint64(size) - p.Off) / ps // whole pages present
		}
		ce.Beyond += n - in
		if first == nil {
			first = p
		}
	}
	if ce.Beyond == 0 {
		return nil
	}
	ce.Missing = ce.Beyond
	ce.Err = fmt.Errorf("%w: %d of %d pages beyond the end of the file (%d bytes; the PT_LOAD of physical %#x needs %d)",
		ErrTruncated, ce.Beyond, ce.Pages, size, first.Paddr, first.Off+first.Filesz)
	return ce
}

// readLoads returns the PT_LOAD program headers of the ELF64 core in r,
// whose ELF header package vmcore has already checked.
func readLoads(r io.ReaderAt, size int64) ([]elf.Prog64, error) {
	var h [64]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("anydump: read ELF header: %w", err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	phoff, phnum := bo.Uint64(h[32:]), uint64(bo.Uint16(h[56:]))
	if phnum == 0xffff { // PN_XNUM: the count is section 0's sh_info
		var sh [4]byte
		if _, err := r.ReadAt(sh[:], int64(bo.Uint64(h[40:]))+44); err != nil {
			return nil, fmt.Errorf("anydump: read section 0: %w", err)
		}
		phnum = uint64(bo.Uint32(sh[:]))
	}
	if phnum > vmcore.MaxSegments || phoff > uint64(size) || phnum*56 > uint64(size)-phoff {
		return nil, fmt.Errorf("anydump: %d program headers at %#x in a file of %d bytes", phnum, phoff, size)
	}
	b := make([]byte, phnum*56)
	if _, err := r.ReadAt(b, int64(phoff)); err != nil {
		return nil, fmt.Errorf("anydump: read program headers: %w", err)
	}
	var loads []elf.Prog64
	for i := uint64(0); i < phnum; i++ {
		p := b[i*56:]
		if elf.ProgType(bo.Uint32(p)) != elf.PT_LOAD {
			continue
		}
		loads = append(loads, elf.Prog64{
			Type: uint32(elf.PT_LOAD), Off: bo.Uint64(p[8:]), Vaddr: bo.Uint64(p[16:]), Paddr: bo.Uint64(p[24:]),
			Filesz: bo.Uint64(p[32:]), Memsz: bo.Uint64(p[40:]),
		})
	}
	return loads, nil
}

// PageError names a page of the dump that does not read.
type PageError struct {
	PFN uint64
	Off int64 // file offset of its data
	Err error
}

func (e *PageError) Error() string {
	return fmt.Sprintf("anydump: pfn %#x (at offset %#x): %v", e.PFN, e.Off, e.Err)
}

func (e *PageError) Unwrap() error { return e.Err }

// Verify reads every page the dump holds — decompressing each page of a
// kdump file (diskdump.File.Verify) — after Check, and returns the first
// failure: a *CheckError, a *diskdump.PageError or a *PageError naming
// the page, the offset of its data and the error. Nil when all read.
func (d *Dump) Verify() error {
	if err := d.Check(); err != nil {
		return err
	}
	if d.KdumpFile != nil {
		return d.KdumpFile.Verify()
	}
	r, ps := d.ELF.ReaderAt(), uint64(d.PageSize)
	var most uint64
	for _, s := range d.ELF.Segments {
		most = max(most, s.FileSize)
	}
	buf := make([]byte, min(most, 1<<20))
	for _, s := range d.ELF.Segments {
		for done := uint64(0); done < s.FileSize; {
			n := min(s.FileSize-done, uint64(len(buf)))
			off := int64(s.Offset + done)
			if _, err := r.ReadAt(buf[:n], off); err != nil {
				// Find the page that fails.
				for at := uint64(0); at < n; at += ps {
					k := min(ps-(s.PhysAddr+done+at)%ps, n-at)
					if _, err := r.ReadAt(buf[:k], off+int64(at)); err != nil {
						return &PageError{PFN: (s.PhysAddr + done + at) / ps, Off: off + int64(at), Err: err}
					}
				}
				return &PageError{PFN: (s.PhysAddr + done) / ps, Off: off, Err: err}
			}
			done += n
		}
	}
	return nil
}
