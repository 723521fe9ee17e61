package anydump

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// Format names a dump file format.
type Format string

// The formats Open knows.
const (
	ELF       Format = "elf"
	Kdump     Format = "kdump"
	Flattened Format = "flattened"
)

// ErrFlattened is returned for makedumpfile's flattened stream, which must
// be rebuilt (gokdump savecore, makedumpfile -R) before it can be read.
var ErrFlattened = errors.New("anydump: flattened kdump stream: rebuild it first (gokdump savecore or makedumpfile -R)")

// ErrUnknown is returned for a file that is no dump Open knows.
var ErrUnknown = errors.New("anydump: not an ELF vmcore or kdump-compressed file")

// Dump is an open crash dump.
type Dump struct {
	Path       string
	Format     Format
	Machine    elf.Machine
	VMCOREINFO *vmcoreinfo.Info // nil when the dump has none
	PRStatus   []vmcore.PRStatus
	PageSize   int
	MaxPFN     uint64
	Size       int64
	// Incomplete is set for dumps their writer flagged incomplete (a
	// full disk, an interrupted capture).
	Incomplete bool
	// Missing is the memory the capture could not read from its source
	// (gokdump's GOKDUMP note, or an ELF file's truncated PT_LOADs); nil
	// when none is known missing. MissingErr says why the note was not
	// understood.
	Missing    *vmcore.Missing
	MissingErr error

	// ELF or KdumpFile is set, by format.
	ELF       *vmcore.File
	KdumpFile *diskdump.File

	phys kmem.PhysReader
	c    io.Closer
}

// Detect reads the first bytes of r and names its format.
func Detect(r io.ReaderAt) (Format, error) {
	var b [16]byte
	if n, err := r.ReadAt(b[:], 0); n < len(b) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("anydump: read header: %w", err)
	}
	switch {
	case string(b[:4]) == elf.ELFMAG:
		return ELF, nil
	case string(b[:8]) == "KDUMP   ":
		return Kdump, nil
	case diskdump.IsFlattened(b[:]):
		return Flattened, nil
	}
	return "", ErrUnknown
}

// Open opens the dump at path.
func Open(path string) (*Dump, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("anydump: %w", err)
	}
	format, err := Detect(fh)
	fh.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := &Dump{Path: path, Format: format}
	switch format {
	case ELF:
		f, err := vmcore.Open(path)
		if err != nil {
			return nil, err
		}
		d.ELF, d.phys, d.c = f, f, f
		d.Machine, d.VMCOREINFO, d.PRStatus = f.Machine, f.VMCOREINFO, f.PRStatus
		d.PageSize, d.MaxPFN, d.Size = int(f.PageSize), f.MaxPFN(), f.Size()
		d.Incomplete = f.Flags&vmcore.FlagIncomplete != 0
		d.Missing = f.Missing
	case Kdump:
		f, err := diskdump.OpenFile(path)
		if err != nil {
			return nil, err
		}
		d.setKdump(f)
	case Flattened:
		return nil, fmt.Errorf("%s: %w", path, ErrFlattened)
	}
	return d, nil
}

func (d *Dump) setKdump(f *diskdump.File) {
	d.KdumpFile, d.phys, d.c = f, f, f
	d.Machine, d.VMCOREINFO, d.PRStatus = f.Machine, f.VMCOREINFO, f.PRStatus
	d.PageSize, d.MaxPFN, d.Size = f.PageSize(), f.MaxPFN(), f.Size()
	d.Incomplete = f.Incomplete()
	d.Missing, d.MissingErr = vmcore.MissingFromNotes(f.Notes, binary.LittleEndian)
}

// ErrReaderFormat is returned by OpenReader for a dump it cannot read in
// place: an ELF file (read from a path only) or a flattened stream.
var ErrReaderFormat = errors.New("anydump: only a kdump-compressed dump is read in place; download it first")

// OpenReader opens a kdump-compressed dump of size bytes read through r
// (an object in a bucket, read by ranged requests); name is for
// messages and Dump.Path. Only what is asked is read.
func OpenReader(name string, r io.ReaderAt, size int64) (*Dump, error) {
	format, err := Detect(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if format != Kdump {
		return nil, fmt.Errorf("%s: %s: %w", name, format, ErrReaderFormat)
	}
	f, err := diskdump.Open(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := &Dump{Path: name, Format: Kdump}
	d.setKdump(f)
	return d, nil
}

// ReadPhys reads physical memory; pages the dump does not hold fail with
// an error wrapping vmcore.ErrHole.
func (d *Dump) ReadPhys(p []byte, paddr uint64) (int, error) { return d.phys.ReadPhys(p, paddr) }

// Memory returns kernel virtual memory access for the dump.
func (d *Dump) Memory() (*kmem.Memory, error) {
	return kmem.New(d, d.VMCOREINFO, d.Machine)
}

// Log reads the crashed kernel's log from the dump.
func (d *Dump) Log() (*printk.Log, error) {
	return printk.ReadDump(d, d.VMCOREINFO, d.Machine)
}

// Pages yields the pfns whose contents the dump holds, in order.
func (d *Dump) Pages() iter.Seq2[uint64, error] {
	if d.KdumpFile != nil {
		return d.KdumpFile.DumpedPFNs()
	}
	return func(yield func(uint64, error) bool) {
		ps := uint64(d.PageSize)
		for _, r := range d.ELF.PhysRanges() {
			for pfn := r.Start / ps; pfn*ps < r.FileEnd; pfn++ {
				if !yield(pfn, nil) {
					return
				}
			}
		}
	}
}

// Close closes the dump.
func (d *Dump) Close() error { return d.c.Close() }
