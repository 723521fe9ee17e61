package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
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

func runInfo(path string, asJSON bool, w io.Writer) error {
	in, err := anydump.ReadInfo(path)
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
	if in.NoteError != "" {
		p("notes", "damaged: %s", in.NoteError)
	}
	return nil
}
