package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/printk"
)

func init() {
	register(&command{
		name:  "info",
		args:  "DUMP",
		short: "summarise a dump without debug symbols: kernel, crash time and reason, format, pages, completeness",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			asJSON := fs.Bool("json", false, "print JSON")
			verify := fs.Bool("verify", false, "read (and decompress) every page, and name the first bad one; exit 1 if one is")
			return func(args []string, s streams) error {
				if err := needArgs(args, "DUMP"); err != nil {
					return err
				}
				return runInfo(args[0], *asJSON, *verify, s.out)
			}
		},
	})
}

// errVerify is returned by runInfo when --verify finds a bad page; the
// report has said which.
var errVerify = errors.New("verification failed")

func runInfo(path string, asJSON, verify bool, w io.Writer) error {
	d, err := anydump.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	in := d.Info()
	var verr error
	verified := ""
	if verify {
		if verr = d.Verify(); verr != nil {
			verified = verr.Error()
		} else {
			verified = "every page reads"
		}
	}
	if asJSON {
		out := struct {
			*anydump.Info
			Verify string `json:"verify,omitempty"`
		}{in, verified}
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		if err := e.Encode(out); err != nil {
			return err
		}
	} else {
		writeInfo(w, in, verified)
	}
	if verr != nil {
		return fmt.Errorf("%s: %w: %v", path, errVerify, verr)
	}
	return nil
}

// writeInfo prints in for a terminal. Everything that comes from the dump
// goes through printable: the crashed machine wrote it, and a task name
// (which any process sets) reaches the panic line.
func writeInfo(w io.Writer, in *anydump.Info, verified string) {
	p := func(k, f string, a ...any) { fmt.Fprintf(w, "%-12s %s\n", k+":", fmt.Sprintf(f, a...)) }
	p("dump", "%s", in.Path)
	var state []string
	if in.Incomplete {
		state = append(state, "INCOMPLETE (the capture did not finish; what is there is readable)")
	}
	if c := in.Check; c != nil && c.Beyond > 0 && c.Beyond == c.Missing {
		state = append(state, fmt.Sprintf("truncated: %d of %d pages beyond the end of the file", c.Beyond, c.Pages))
	} else if c != nil {
		state = append(state, "damaged: "+printk.Printable(c.Detail))
	}
	if len(state) == 0 {
		state = append(state, "complete")
	}
	p("format", "%s, %s", in.Format, strings.Join(state, ", "))
	p("size", "%.1f MiB", float64(in.Size)/(1<<20))
	if m := in.Missing; m != nil {
		if m.Error != "" {
			p("missing", "unknown: %s", printk.Printable(m.Error))
		} else {
			p("missing", "%d pages (%.1f MiB) the capture could not read: %s", m.Pages, float64(m.Bytes)/(1<<20), missingRanges(m))
		}
	}
	p("kernel", "%s %s", printk.Printable(in.Release), printk.Printable(in.Version))
	p("machine", "%s, %d CPUs", printk.Printable(in.Machine), in.CPUs)
	if !in.CrashTime.IsZero() {
		p("crashed at", "%s", in.CrashTime.Format(time.RFC3339))
	}
	if in.CrashedCPU != nil {
		p("crashed CPU", "%d", *in.CrashedCPU)
	}
	if in.Level != nil {
		p("dump level", "%d, %s", *in.Level, in.Codec)
	}
	p("pages", "%d in the dump, of %d page frames (holes included; %d-byte pages)", in.Pages, in.MaxPFN, in.PageSize)
	if verified != "" {
		p("verify", "%s", printk.Printable(verified))
	}
	if in.Panic != "" {
		p("panic", "%s", printk.Printable(in.Panic))
		fmt.Fprintln(w)
		for _, l := range in.PanicLog {
			fmt.Fprintln(w, "  "+printk.Printable(l))
		}
	} else if in.LogError != "" {
		p("log", "unreadable: %s", printk.Printable(in.LogError))
	}
	if in.LogDropped > 0 {
		p("log", "%d oldest records not read (the log is larger than the reader holds)", in.LogDropped)
	}
	if in.NoteError != "" {
		p("notes", "damaged: %s", printk.Printable(in.NoteError))
	}
}

// missingRanges lists missing pfn ranges as a person reads them.
func missingRanges(m *anydump.MissingInfo) string {
	parts := make([]string, len(m.Ranges))
	for i, r := range m.Ranges {
		parts[i] = fmt.Sprintf("pfn %#x-%#x", r.Start, r.End()-1)
	}
	s := strings.Join(parts, ", ")
	if m.Partial {
		s += ", and more"
	}
	return s
}
