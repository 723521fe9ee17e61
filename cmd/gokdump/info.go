package main

import (
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/dumpfile"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
)

func init() {
	register(&command{
		name:  "info",
		args:  "DUMP",
		short: "summarise a dump without debug symbols: kernel, crash time and reason, format, pages, completeness",
		setup: func(fs *flag.FlagSet) func([]string) error {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(args []string) error {
				if len(args) != 1 {
					return errUsage
				}
				return runInfo(args[0], *asJSON, os.Stdout)
			}
		},
	})
}

// dumpInfo is what `gokdump info` reports.
type dumpInfo struct {
	Path       string    `json:"path"`
	Format     string    `json:"format"`
	Complete   bool      `json:"complete"`
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
	LogError   string    `json:"log_error,omitempty"`
}

func gatherInfo(path string) (*dumpInfo, error) {
	d, err := dumpfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	in := &dumpInfo{
		Path: path, Format: string(d.Format), Complete: !d.Incomplete, Size: d.Size,
		Machine: machineName(d.Machine), CPUs: len(d.PRStatus), PageSize: d.PageSize, MaxPFN: d.MaxPFN,
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
	mem, err := d.Memory()
	if err == nil {
		if uts, err := mem.ReadUTSName(); err == nil {
			in.Version = uts.Version
		}
		var l *printk.Log
		if l, err = printk.Read(mem); err == nil {
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
	}
	if err != nil {
		in.LogError = err.Error()
	}
	return in, nil
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

func machineName(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	}
	return m.String()
}

func runInfo(path string, asJSON bool, w io.Writer) error {
	in, err := gatherInfo(path)
	if err != nil {
		return err
	}
	if asJSON {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(in)
	}
	p := func(k, f string, a ...any) { fmt.Fprintf(w, "%-12s %s\n", k+":", fmt.Sprintf(f, a...)) }
	p("dump", "%s", in.Path)
	state := "complete"
	if !in.Complete {
		state = "INCOMPLETE (the capture did not finish; what is there is readable)"
	}
	p("format", "%s, %s", in.Format, state)
	p("size", "%.1f MiB", float64(in.Size)/(1<<20))
	p("kernel", "%s %s", in.Release, in.Version)
	p("machine", "%s, %d CPUs", in.Machine, in.CPUs)
	if !in.CrashTime.IsZero() {
		p("crashed at", "%s", in.CrashTime.Format(time.RFC3339))
	}
	if in.CrashedCPU != nil {
		p("crashed CPU", "%d", *in.CrashedCPU)
	}
	if in.Level != nil {
		p("dump level", "%d, %s", *in.Level, in.Codec)
	}
	p("pages", "%d dumped of %d page frames (%d-byte pages)", in.Pages, in.MaxPFN, in.PageSize)
	if in.Panic != "" {
		p("panic", "%s", in.Panic)
		fmt.Fprintln(w)
		for _, l := range in.PanicLog {
			fmt.Fprintln(w, "  "+l)
		}
	} else if in.LogError != "" {
		p("log", "unreadable: %s", in.LogError)
	}
	return nil
}
