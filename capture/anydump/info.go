package anydump

import (
	"debug/elf"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// Info is what a triage needs of a dump without debug symbols: what
// `gokdump info` reports.
type Info struct {
	Path     string `json:"path"`
	Format   string `json:"format"`
	Complete bool   `json:"complete"`
	// Incomplete is the writer's flag: the capture did not finish.
	Incomplete bool      `json:"incomplete,omitempty"`
	Size       int64     `json:"size"`
	Release    string    `json:"release"`
	Version    string    `json:"version,omitempty"`
	Machine    string    `json:"machine"`
	CrashTime  time.Time `json:"crash_time,omitzero"`
	Panic      string    `json:"panic,omitempty"`
	PanicLog   []string  `json:"panic_log,omitempty"`
	CrashedCPU *int      `json:"crashed_cpu,omitempty"`
	CPUs       int       `json:"cpus"`
	Level      *int      `json:"dump_level,omitempty"`
	Codec      string    `json:"compression,omitempty"`
	PageSize   int       `json:"page_size"`
	MaxPFN     uint64    `json:"max_pfn"`
	Pages      uint64    `json:"pages_dumped"`
	// LogDropped counts the oldest log records not read: the log is
	// larger than printk.MaxLogMemory.
	LogDropped int    `json:"log_dropped,omitempty"`
	LogError   string `json:"log_error,omitempty"`
	NoteError  string `json:"note_error,omitempty"` // damaged ELF notes (the rest kept)
	// Check is what Dump.Check found missing; nil when the file holds
	// what its headers promise.
	Check *CheckInfo `json:"check,omitempty"`
	// Missing is the memory the capture could not read (Dump.Missing).
	Missing *MissingInfo `json:"missing,omitempty"`
}

// MissingInfo is a Dump's missing memory in an Info: the first ranges of
// it, as page frame numbers.
type MissingInfo struct {
	Pages   uint64            `json:"pages"`
	Bytes   uint64            `json:"bytes"`
	Ranges  []vmcore.PFNRange `json:"ranges"`
	Partial bool              `json:"partial,omitempty"` // more ranges than listed
	Error   string            `json:"error,omitempty"`   // the note could not be read
}

// maxInfoRanges bounds the missing ranges an Info lists.
const maxInfoRanges = 16

// CheckInfo is a CheckError in an Info.
type CheckInfo struct {
	Pages   uint64 `json:"pages"`      // pages the headers promise
	Beyond  uint64 `json:"beyond_end"` // of which past the end of the file
	Missing uint64 `json:"missing"`    // unreadable, Beyond included
	Detail  string `json:"detail"`
}

// ReadInfo opens the dump at path and summarises it.
func ReadInfo(path string) (*Info, error) {
	d, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Info(), nil
}

// Info summarises the dump: its kernel, the crash reason and context from
// its log, format and pages, and what Check finds missing. A dump is
// Complete when its writer finished it and the file holds all it
// promises.
func (d *Dump) Info() *Info {
	in := &Info{
		Path: d.Path, Format: string(d.Format), Complete: !d.Incomplete, Incomplete: d.Incomplete, Size: d.Size,
		Machine: MachineName(d.Machine), CPUs: len(d.PRStatus), PageSize: d.PageSize, MaxPFN: d.MaxPFN,
	}
	if d.ELF != nil && d.ELF.NoteErr != nil {
		in.NoteError = d.ELF.NoteErr.Error()
	}
	if d.KdumpFile != nil && d.KdumpFile.NoteErr != nil {
		in.NoteError = d.KdumpFile.NoteErr.Error()
	}
	var ce *CheckError
	switch err := d.Check(); {
	case errors.As(err, &ce):
		in.Check = &CheckInfo{Pages: ce.Pages, Beyond: ce.Beyond, Missing: ce.Missing, Detail: ce.Error()}
		in.Complete = false
	case err != nil:
		in.Check = &CheckInfo{Detail: err.Error()}
		in.Complete = false
	}
	switch {
	case d.MissingErr != nil:
		in.Missing = &MissingInfo{Error: d.MissingErr.Error()}
	case !d.Missing.Empty():
		m := d.Missing
		in.Missing = &MissingInfo{Pages: m.Pages, Bytes: m.Bytes(), Partial: m.Partial || len(m.Ranges) > maxInfoRanges,
			Ranges: m.Ranges[:min(len(m.Ranges), maxInfoRanges)]}
		in.Complete = false
	}
	if v := d.VMCOREINFO; v != nil {
		in.Release = v.OSRelease()
		if t, ok := v.CrashTime(); ok {
			in.CrashTime = time.Unix(t, 0).UTC()
		}
	}
	switch {
	case d.KdumpFile != nil:
		h := d.KdumpFile.Header
		lvl := h.DumpLevel
		in.Level = &lvl
		in.Codec = h.Compression().String()
		in.Pages = d.KdumpFile.NumDumped()
		in.Version = h.Version
	case d.ELF != nil:
		for _, r := range d.ELF.PhysRanges() {
			in.Pages += (r.FileEnd - r.Start + uint64(d.PageSize) - 1) / uint64(d.PageSize)
		}
	}
	if mem, err := d.Memory(); err == nil {
		if uts, err := mem.ReadUTSName(); err == nil {
			in.Version = uts.Version
		}
	}
	l, err := d.Log()
	if l != nil {
		in.LogDropped = l.Dropped
	}
	if err == nil {
		reason, ctx := l.Panic()
		in.Panic = reason
		for _, r := range ctx {
			in.PanicLog = append(in.PanicLog, fmt.Sprintf("[%5d.%06d] %s",
				r.Time/time.Second, (r.Time%time.Second)/time.Microsecond, r.Text))
		}
		if cpu, ok := crashedCPU(ctx, d.PRStatus); ok {
			in.CrashedCPU = &cpu
		}
	}
	if err != nil {
		in.LogError = err.Error()
	}
	return in
}

// crashedCPU finds the CPU that panicked: the panic line's caller names a
// CPU (C<n>) or a task (T<pid>), whose NT_PRSTATUS note gives the CPU.
func crashedCPU(ctx []printk.Record, ps []vmcore.PRStatus) (int, bool) {
	for i := len(ctx) - 1; i >= 0; i-- {
		c := ctx[i].Caller
		if !strings.Contains(ctx[i].Text, "Kernel panic") || len(c) < 2 {
			continue
		}
		n, err := strconv.Atoi(c[1:])
		if err != nil {
			return 0, false
		}
		switch c[0] {
		case 'C':
			return n, true
		case 'T':
			for cpu, p := range ps {
				if int(p.PID) == n {
					return cpu, true
				}
			}
		}
		return 0, false
	}
	return 0, false
}

// MachineName names an ELF machine as uname -m does.
func MachineName(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	}
	return m.String()
}
