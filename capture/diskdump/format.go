package diskdump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
)

// Signature begins every kdump-compressed file.
const Signature = "KDUMP   "

// HeaderVersion is the disk_dump_header version the Writer writes: the
// first with 64-bit max_mapnr and pfn ranges in the sub-header.
const HeaderVersion = 6

// Header status bits (disk_dump_header.status), as makedumpfile's
// diskdump_mod.h names them DUMP_DH_*. The compression bits equal the
// page descriptor flags of package codec.
const (
	StatusZlib            = codec.FlagZlib
	StatusLZO             = codec.FlagLZO
	StatusSnappy          = codec.FlagSnappy
	StatusIncomplete      = 0x8  // the dump stopped early (disk full)
	StatusExcludedVmemmap = 0x10 // struct pages of excluded pages were dropped too
	StatusZstd            = codec.FlagZstd
)

// On-disk sizes for 64-bit dumps.
const (
	headerSize    = 464 // struct disk_dump_header
	subHeaderSize = 104 // struct kdump_sub_header
	descSize      = 24  // struct page_desc
	utsLen        = 65  // each field of struct new_utsname
)

// Field offsets in disk_dump_header (LP64).
const (
	offSignature     = 0
	offHeaderVersion = 8
	offUtsname       = 12
	offTimestamp     = 408 // tv_sec, then tv_usec
	offStatus        = 424
	offBlockSize     = 428
	offSubHdrSize    = 432
	offBitmapBlocks  = 436
	offMaxMapnr      = 440
	offTotalRAM      = 444
	offDeviceBlocks  = 448
	offWrittenBlocks = 452
	offCurrentCPU    = 456
	offNrCPUs        = 460
)

// Field offsets in kdump_sub_header (LP64).
const (
	offPhysBase         = 0
	offDumpLevel        = 8
	offSplit            = 12
	offStartPFN         = 16
	offEndPFN           = 24
	offOffsetVmcoreinfo = 32
	offSizeVmcoreinfo   = 40
	offOffsetNote       = 48
	offSizeNote         = 56
	offOffsetEraseinfo  = 64
	offSizeEraseinfo    = 72
	offStartPFN64       = 80
	offEndPFN64         = 88
	offMaxMapnr64       = 96
)

// Limits on what a header may declare.
const (
	MinBlockSize = 1 << 10
	MaxBlockSize = 1 << 18
	// MaxMapnr bounds max_mapnr: 2^52 bytes of physical address space
	// (x86_64 and arm64 maximum) in 4 KiB pages.
	MaxMapnr = 1 << 40
	// MaxNoteSize bounds the ELF notes copied into the sub-header.
	MaxNoteSize = 64 << 20
)

// Header is the metadata of a kdump-compressed file: what NewWriter
// writes, and what Open reads back.
type Header struct {
	// The crashed kernel's utsname, each field at most 64 bytes.
	// libkdumpfile (and so drgn) accepts a header only when Sysname is
	// "Linux" and Release, Version and Machine are not empty.
	Sysname, Nodename, Release, Version, Machine, Domainname string

	// Timestamp is the time of the crash. The Writer keeps whole seconds:
	// a non-zero tv_usec can make libkdumpfile take the header for a
	// 32-bit one.
	Timestamp time.Time

	// Status holds the compression flag of the dump (StatusZlib, …, or
	// 0) and StatusExcludedVmemmap. The Writer sets and clears
	// StatusIncomplete itself.
	Status uint32

	BlockSize  int    // page size
	MaxMapnr   uint64 // one past the highest page frame number
	NrCPUs     int    // CPUs of the crashed machine (its NT_PRSTATUS notes)
	CurrentCPU int
	// PhysBase must equal VMCOREINFO's NUMBER(phys_base): libkdumpfile
	// checks it.
	PhysBase  uint64
	DumpLevel int

	// Notes is the vmcore's PT_NOTE data, copied verbatim. VMCOREINFOOffset
	// is the offset within Notes of the VMCOREINFO note's descriptor (-1
	// when there is none), VMCOREINFOSize its length.
	Notes            []byte
	VMCOREINFOOffset int64
	VMCOREINFOSize   int64

	// Set by Open only.
	HeaderVersion    int
	Split            bool   // one of several files of a split dump
	StartPFN, EndPFN uint64 // pages this file holds, for split dumps
	EraseInfoOffset  int64  // file offset of makedumpfile's erase info
	EraseInfoSize    int64
}

// Compression returns the codec named by the header's status, the one
// makedumpfile used for most pages (descriptors say per page).
func (h *Header) Compression() codec.Codec {
	for _, c := range []codec.Codec{codec.Zlib, codec.LZO, codec.Snappy, codec.Zstd} {
		if h.Status&c.Flag() != 0 {
			return c
		}
	}
	return codec.None
}

// layout is where a file's parts begin, in bytes.
type layout struct {
	bs           int64
	subHdrBlocks int64
	bitmapLen    int64 // bytes of one bitmap
	bitmap1      int64
	bitmap2      int64
	desc         int64 // first page descriptor
}

func newLayout(bs int64, noteSize int64, maxMapnr uint64) layout {
	l := layout{bs: bs}
	l.subHdrBlocks = (subHeaderSize + noteSize + bs - 1) / bs
	l.bitmapLen = (int64((maxMapnr+7)/8) + bs - 1) / bs * bs
	if l.bitmapLen == 0 {
		l.bitmapLen = bs
	}
	l.bitmap1 = (1 + l.subHdrBlocks) * bs
	l.bitmap2 = l.bitmap1 + l.bitmapLen
	l.desc = l.bitmap2 + l.bitmapLen
	return l
}

func (l layout) bitmapBlocks() int64 { return 2 * l.bitmapLen / l.bs }

// validate checks what the Writer is asked to write against what readers
// accept.
func (h *Header) validate() error {
	bs := h.BlockSize
	if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return fmt.Errorf("diskdump: block size %d: want a power of two in [%d, %d]", bs, MinBlockSize, MaxBlockSize)
	}
	if h.MaxMapnr == 0 || h.MaxMapnr > MaxMapnr {
		return fmt.Errorf("diskdump: max_mapnr %d out of range", h.MaxMapnr)
	}
	if l := newLayout(int64(bs), int64(len(h.Notes)), h.MaxMapnr); l.bitmapBlocks() > 1<<31-1 {
		return fmt.Errorf("diskdump: %d bitmap blocks do not fit the header", l.bitmapBlocks())
	}
	if len(h.Notes) > MaxNoteSize {
		return fmt.Errorf("diskdump: %d bytes of notes (limit %d)", len(h.Notes), MaxNoteSize)
	}
	if h.VMCOREINFOOffset >= 0 && h.VMCOREINFOSize > 0 {
		if h.VMCOREINFOOffset > int64(len(h.Notes)) || h.VMCOREINFOSize > int64(len(h.Notes))-h.VMCOREINFOOffset {
			return fmt.Errorf("diskdump: VMCOREINFO at %d+%d outside %d bytes of notes",
				h.VMCOREINFOOffset, h.VMCOREINFOSize, len(h.Notes))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"sysname", h.Sysname}, {"nodename", h.Nodename}, {"release", h.Release},
		{"version", h.Version}, {"machine", h.Machine}, {"domainname", h.Domainname},
	} {
		if len(f.v) >= utsLen {
			return fmt.Errorf("diskdump: utsname %s %q longer than %d bytes", f.name, f.v, utsLen-1)
		}
		if bytes.IndexByte([]byte(f.v), 0) >= 0 {
			return fmt.Errorf("diskdump: utsname %s %q holds a NUL", f.name, f.v)
		}
	}
	if h.Sysname != "Linux" || h.Release == "" || h.Version == "" || h.Machine == "" {
		return fmt.Errorf("diskdump: utsname needs sysname \"Linux\" and a release, version and machine (readers refuse it otherwise): %q %q %q %q",
			h.Sysname, h.Release, h.Version, h.Machine)
	}
	if h.Status&^(codec.FlagMask|StatusExcludedVmemmap|StatusIncomplete) != 0 {
		return fmt.Errorf("diskdump: unknown status bits %#x", h.Status)
	}
	if bits.OnesCount32(h.Status&codec.FlagMask) > 1 {
		return fmt.Errorf("diskdump: status %#x names more than one compression", h.Status)
	}
	if h.NrCPUs < 0 || h.CurrentCPU < 0 || h.DumpLevel < 0 {
		return fmt.Errorf("diskdump: negative nr_cpus, current_cpu or dump_level")
	}
	return nil
}

// encodeHeader returns block 0 of the file: disk_dump_header padded to
// the block size.
func (h *Header) encodeHeader(l layout, status uint32) []byte {
	b := make([]byte, l.bs)
	le := binary.LittleEndian
	copy(b[offSignature:], Signature)
	le.PutUint32(b[offHeaderVersion:], HeaderVersion)
	for i, s := range []string{h.Sysname, h.Nodename, h.Release, h.Version, h.Machine, h.Domainname} {
		copy(b[offUtsname+i*utsLen:offUtsname+(i+1)*utsLen-1], s)
	}
	var sec int64
	if !h.Timestamp.IsZero() {
		sec = h.Timestamp.Unix()
	}
	le.PutUint64(b[offTimestamp:], uint64(sec))
	le.PutUint64(b[offTimestamp+8:], 0)
	le.PutUint32(b[offStatus:], status)
	le.PutUint32(b[offBlockSize:], uint32(l.bs))
	le.PutUint32(b[offSubHdrSize:], uint32(l.subHdrBlocks))
	le.PutUint32(b[offBitmapBlocks:], uint32(l.bitmapBlocks()))
	le.PutUint32(b[offMaxMapnr:], uint32(min(h.MaxMapnr, 1<<32-1)))
	le.PutUint32(b[offCurrentCPU:], uint32(h.CurrentCPU))
	le.PutUint32(b[offNrCPUs:], uint32(h.NrCPUs))
	return b
}

// encodeSubHeader returns kdump_sub_header followed by the notes.
func (h *Header) encodeSubHeader(l layout) []byte {
	b := h.encodeSubHeaderAt(l, l.bs+subHeaderSize)
	return append(b, h.Notes...)
}

// encodeSubHeaderAt returns kdump_sub_header for notes at file offset
// noteOff.
func (h *Header) encodeSubHeaderAt(l layout, noteOff int64) []byte {
	b := make([]byte, subHeaderSize)
	le := binary.LittleEndian
	le.PutUint64(b[offPhysBase:], h.PhysBase)
	le.PutUint32(b[offDumpLevel:], uint32(h.DumpLevel))
	if len(h.Notes) > 0 {
		le.PutUint64(b[offOffsetNote:], uint64(noteOff))
		le.PutUint64(b[offSizeNote:], uint64(len(h.Notes)))
		if h.VMCOREINFOOffset >= 0 && h.VMCOREINFOSize > 0 {
			le.PutUint64(b[offOffsetVmcoreinfo:], uint64(noteOff+h.VMCOREINFOOffset))
			le.PutUint64(b[offSizeVmcoreinfo:], uint64(h.VMCOREINFOSize))
		}
	}
	le.PutUint64(b[offMaxMapnr64:], h.MaxMapnr)
	return b
}

// PageDesc is one page descriptor (struct page_desc).
type PageDesc struct {
	Offset    int64  // file offset of the page data
	Size      uint32 // bytes stored
	Flags     uint32 // compression flag, 0 for a raw page
	PageFlags uint64 // unused by makedumpfile; 0
}

func (d PageDesc) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(d.Offset))
	le.PutUint32(b[8:], d.Size)
	le.PutUint32(b[12:], d.Flags)
	le.PutUint64(b[16:], d.PageFlags)
}

func getDesc(b []byte) PageDesc {
	le := binary.LittleEndian
	return PageDesc{
		Offset:    int64(le.Uint64(b[0:])),
		Size:      le.Uint32(b[8:]),
		Flags:     le.Uint32(b[12:]),
		PageFlags: le.Uint64(b[16:]),
	}
}
