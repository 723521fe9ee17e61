package printk

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// Sentinel errors.
var (
	// ErrNoLog means VMCOREINFO describes no kernel log this package reads:
	// neither SYMBOL(prb) nor SYMBOL(log_buf) with log_first_idx.
	ErrNoLog = errors.New("printk: VMCOREINFO describes no kernel log")
	// ErrLayout means VMCOREINFO's sizes and offsets are inconsistent (a
	// field outside its structure, an absurd structure size).
	ErrLayout = errors.New("printk: inconsistent layout in VMCOREINFO")
	// ErrCorrupt means the log's header in memory holds values no kernel
	// writes (a ring larger than the kernel allows, an index past the
	// end), or that not one of the log's records could be read.
	ErrCorrupt = errors.New("printk: corrupt log")
)

// FormatError is a structure of the log in the dead kernel's memory that
// holds what no kernel writes. errors.Is finds its sentinel (Err);
// errors.As gives the address and the field.
type FormatError struct {
	// Addr is the kernel virtual address of the structure at fault.
	Addr uint64
	// Field names it as the kernel does: "prb_desc_ring.count_bits",
	// "log_buf_len", "printk_ringbuffer", …
	Field string
	// Msg says what is wrong, in the user's terms.
	Msg string
	// Err is ErrCorrupt.
	Err error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v: %s (%s at %#x)", e.Err, e.Msg, e.Field, e.Addr)
}

func (e *FormatError) Unwrap() error { return e.Err }

func corrupt(addr uint64, field, format string, args ...any) *FormatError {
	return &FormatError{Addr: addr, Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// Bounds on what a log read from a dump may cost, whatever the dump
// holds: a crashed kernel's memory is hostile input, and the capture
// reads the log in the little memory of the capture kernel before it
// saves the dump.
const (
	// MaxRecordText bounds the text of one record: the kernel stores at
	// most LOG_LINE_MAX (1024 less the prefix, Linux 3.5–6.5) or
	// PRINTKRB_RECORD_MAX (1024, 6.6+) bytes. Longer text_len values are
	// cut here.
	MaxRecordText = 1024
	// MaxLogMemory bounds the memory a Log holds: its records (counted
	// at recordCost each) and their text. It holds the largest ring a
	// kernel configuration builds (CONFIG_LOG_BUF_SHIFT=25, 32 MiB) whole;
	// from larger logs (log_buf_len= up to 2 GiB) the newest records are
	// kept and the older ones counted in Log.Dropped.
	MaxLogMemory = 64 << 20
)

// The bounds the readers use; tests lower them.
var (
	logMemory = MaxLogMemory
	// maxSteps bounds the descriptors or records the reader visits, at
	// about a microsecond each: the newest 2^20 ids of a ring, which is
	// every id of a 32 MiB one.
	maxSteps uint64 = 1 << 20
)

// unreadable returns the error for a log of which not one record could be
// read, or nil.
func unreadable(l *Log, addr uint64, field string) error {
	if len(l.Records) > 0 || l.Skipped == 0 {
		return nil
	}
	return corrupt(addr, field, "none of the log's %d records is readable", l.Skipped)
}

// recordCost is what a Record costs in memory besides its text, with the
// reader's bookkeeping.
const recordCost = int(unsafe.Sizeof(Record{})) + 32

// Kinds of log, as Log.Kind spells them.
const (
	KindLockless = "lockless" // printk_ringbuffer, Linux 5.10+
	KindLegacy   = "legacy"   // log_buf of printk_log records, Linux 3.5-5.9
)

// Flags are a record's internal flags (the kernel's enum printk_info_flags,
// enum log_flags before 5.10).
type Flags uint8

// Record flags as the kernel spells them.
const (
	LogNoCons  Flags = 1 // suppressed on consoles (legacy logs)
	LogNewline Flags = 2 // text ended with a newline
	LogPrefix  Flags = 4 // started a new line (legacy logs)
	LogCont    Flags = 8 // a continuation fragment (KERN_CONT)
)

// Record is one printk record.
type Record struct {
	// Seq is the kernel's sequence number (printk_info.seq). Legacy logs
	// do not store it: there it counts from 0 at the oldest record kept.
	Seq uint64
	// Time is the timestamp, local_clock() at printk time (ts_nsec).
	Time     time.Duration
	Level    int // syslog level, 0 (emerg) to 7 (debug)
	Facility int // syslog facility, 0 for the kernel
	Flags    Flags
	// Caller is "T<pid>" or "C<cpu>" when the kernel records the caller
	// (always since 5.10, with CONFIG_PRINTK_CALLER before), else "".
	Caller string
	// Text is the message as stored: the kernel strips the final
	// newline; the text may hold others and any byte.
	Text string
	// Subsystem and Device come from dev_printk() (dev_printk_info, or
	// the SUBSYSTEM= and DEVICE= dictionary entries before 5.10).
	Subsystem, Device string

	// noData marks an empty-line record, which has no data block in the
	// lockless ring; makedumpfile prints no line for it.
	noData bool
}

// Log is a kernel log read from a dump.
type Log struct {
	// Records in sequence order, oldest first.
	Records []Record
	// Skipped counts records present in the log whose text could not be
	// read: half-written when the kernel died, inconsistent, or lost by
	// the kernel itself (a failed reservation). Records the kernel had
	// already recycled are not counted.
	Skipped int
	// Dropped counts the oldest records, or ring descriptors, left
	// unread because the log is larger than MaxLogMemory or maxSteps
	// allow.
	Dropped int
	// Kind is KindLockless or KindLegacy.
	Kind string
}

// virtReader is the part of *kmem.Memory the parsers use.
type virtReader interface {
	ReadVirt(p []byte, vaddr uint64) (int, error)
}

// Read reads the kernel log of the dump mem reads.
func Read(mem *kmem.Memory) (*Log, error) {
	return read(mem, mem.Info, mem.ByteOrder, pointerSize(mem.Machine))
}

// ReadDump reads the kernel log of a dump of machine m whose physical
// memory pr reads and whose layout info describes: the one way the capture,
// `gokdump dmesg`, `info` and `savecore` find a crashed kernel's log.
//
// Its time and memory are bounded whatever the dump holds (MaxLogMemory,
// MaxRecordText). Damaged records are skipped and counted; a log that has
// records but not one readable is an error (a *FormatError wrapping
// ErrCorrupt), returned with the Log that counts them.
func ReadDump(pr kmem.PhysReader, info *vmcoreinfo.Info, m elf.Machine) (*Log, error) {
	mem, err := kmem.New(pr, info, m)
	if err != nil {
		return nil, err
	}
	return Read(mem)
}

// pointerSize is sizeof(char *) on machine m. The lockless ring's layout
// tells its word size itself; the legacy log_buf pointer needs this.
func pointerSize(m elf.Machine) uint64 {
	switch m {
	case elf.EM_386, elf.EM_ARM:
		return 4
	}
	return 8
}

func read(r virtReader, info *vmcoreinfo.Info, bo binary.ByteOrder, word uint64) (*Log, error) {
	if info == nil {
		return nil, fmt.Errorf("%w: no VMCOREINFO", ErrNoLog)
	}
	if _, ok := info.Symbol("prb"); ok {
		return readLockless(r, info, bo)
	}
	if _, ok := info.Symbol("log_buf"); ok {
		if _, ok := info.Symbol("log_first_idx"); ok {
			return readLegacy(r, info, bo, word)
		}
		if _, ok := info.Symbol("log_end"); ok {
			return nil, fmt.Errorf("%w: a plain-text log_buf (Linux before 3.5) is not supported", ErrNoLog)
		}
	}
	return nil, ErrNoLog
}

// mem reads the dead kernel's memory in its byte order.
type mem struct {
	r  virtReader
	bo binary.ByteOrder
}

func (m *mem) read(p []byte, va uint64) error {
	if _, err := m.r.ReadVirt(p, va); err != nil {
		return fmt.Errorf("printk: read %d bytes at %#x: %w", len(p), va, err)
	}
	return nil
}

// word reads an unsigned long of size n (4 or 8).
func (m *mem) word(va uint64, n uint64) (uint64, error) {
	var b [8]byte
	if err := m.read(b[:n], va); err != nil {
		return 0, err
	}
	return m.getWord(b[:n]), nil
}

func (m *mem) getWord(b []byte) uint64 {
	if len(b) == 4 {
		return uint64(m.bo.Uint32(b))
	}
	return m.bo.Uint64(b)
}

func (m *mem) u32(va uint64) (uint32, error) {
	var b [4]byte
	if err := m.read(b[:], va); err != nil {
		return 0, err
	}
	return m.bo.Uint32(b[:]), nil
}

// levelFlags splits the byte holding the bitfields `u8 flags:5; u8
// level:3;`. GCC allocates bitfields from the least significant bit on
// little-endian machines and from the most significant on big-endian ones.
func levelFlags(b byte, bo binary.ByteOrder) (level int, flags Flags) {
	if bo == binary.BigEndian {
		return int(b & 7), Flags(b >> 3)
	}
	return int(b >> 5), Flags(b & 0x1f)
}

// callerString formats printk_info.caller_id: bit 31 set means a CPU
// number (printk from interrupt context), clear a task's pid.
func callerString(id uint32) string {
	const cpu = 0x80000000
	if id&cpu != 0 {
		return "C" + strconv.FormatUint(uint64(id&^cpu), 10)
	}
	return "T" + strconv.FormatUint(uint64(id), 10)
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// layout reads the SIZE/OFFSET entries the parsers need and checks that
// each field fits its structure, so that slicing a structure read from the
// dump at those offsets cannot go out of range.
type layout struct {
	info *vmcoreinfo.Info
	err  error
}

// maxStruct bounds the structure sizes we accept from VMCOREINFO; the
// largest one read here (printk_info) is 88 bytes.
const maxStruct = 4096

func (l *layout) size(name string) uint64 {
	v, ok := l.info.Size(name)
	if !ok {
		l.fail(fmt.Errorf("%w SIZE(%s)", kmem.ErrMissing, name))
		return 0
	}
	if v <= 0 || v > maxStruct {
		l.fail(fmt.Errorf("%w: SIZE(%s)=%d", ErrLayout, name, v))
		return 0
	}
	return uint64(v)
}

// offset returns OFFSET(name) and checks that n bytes from it fit in a
// structure of size size.
func (l *layout) offset(name string, n, size uint64) uint64 {
	v, ok := l.info.Offset(name)
	if !ok {
		l.fail(fmt.Errorf("%w OFFSET(%s)", kmem.ErrMissing, name))
		return 0
	}
	if v < 0 || uint64(v)+n > size {
		l.fail(fmt.Errorf("%w: OFFSET(%s)=%d with %d bytes exceeds the structure's %d", ErrLayout, name, v, n, size))
		return 0
	}
	return uint64(v)
}

// optOffset is offset for an entry older kernels lack.
func (l *layout) optOffset(name string, n, size uint64) (uint64, bool) {
	v, ok := l.info.Offset(name)
	if !ok || v < 0 || uint64(v)+n > size {
		return 0, false
	}
	return uint64(v), true
}

func (l *layout) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}
