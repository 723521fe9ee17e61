package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/size"
)

func init() {
	register(&command{
		name:  "info",
		args:  "DUMP | DIR | s3://BUCKET/PREFIX/HOST/TIME",
		short: "summarise a dump without debug symbols: kernel, crash time and reason, format, pages, completeness",
		long: `DUMP is a dump file (ELF or kdump-compressed), or a dump directory
(/var/crash/<crash time>/, holding vmcore or vmcore-incomplete). A directory
of dump directories (/var/crash) lists them, newest last.

--json prints one object. For a dump: path, format, complete, incomplete,
size, release, version, machine, crash_time, panic, panic_log,
crashed_cpu, cpus, dump_level, compression, page_size, max_pfn,
pages_dumped (pages in the dump), log_dropped, log_error, note_error,
check {pages, beyond_end, missing, detail}, missing {pages, bytes, ranges
[{start, pages}], partial, error}, verify. For a directory of dumps: dir,
dumps [{name, dir, time, seq, state (complete, incomplete, in-progress,
no-dump), file, size, dmesg, foreign}]. Fields without a value are left
out; names do not change.

An s3:// dump (what gokdump ls lists) is read in place through ranged
GETs of its vmcore object, with the server and keys of --config; the bytes
read are printed on standard error.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			asJSON := fs.Bool("json", false, "print JSON")
			verify := fs.Bool("verify", false, "read (and decompress) every page, and name the first bad one; exit 1 if one is")
			var cf configFlag
			cf.define(fs, config.DefaultPath, "the config naming s3_endpoint, s3_credentials and ca_file, for an s3:// dump")
			return func(args []string, s streams) error {
				if err := needArgs(args, "DUMP | DIR"); err != nil {
					return err
				}
				if strings.HasPrefix(args[0], config.S3Prefix) {
					return runInfoS3(cf, args[0], *asJSON, *verify, s)
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
	fi, err := os.Stat(path)
	if err != nil {
		return explainOpen(path, err)
	}
	if fi.IsDir() {
		if file := dumpFileIn(path); file != "" {
			return runInfo(file, asJSON, verify, w)
		}
		return listDumps(path, asJSON, w)
	}
	d, err := anydump.Open(path)
	if err != nil {
		return explainOpen(path, err)
	}
	defer d.Close()
	return reportInfo(d, path, asJSON, verify, w)
}

// reportInfo prints what runInfo tells of an open dump.
func reportInfo(d *anydump.Dump, path string, asJSON, verify bool, w io.Writer) error {
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
	p("size", "%s (%d bytes)", size.Size(in.Size), in.Size)
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
		p("log", "%s (detail: %s)", logProblem(in.LogError), printk.Printable(in.LogError))
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

// logProblem says in a user's terms why the log was not read, from the
// error text an Info keeps.
func logProblem(detail string) string {
	switch {
	case strings.Contains(detail, "excluded"):
		return "its pages were left out of this dump (its dump level excluded them)"
	case strings.Contains(detail, "not in dump"), strings.Contains(detail, "missing"):
		return "its pages are not in this dump"
	case strings.Contains(detail, "no VMCOREINFO"):
		return "this dump has no VMCOREINFO to find it by"
	case strings.Contains(detail, "VMCOREINFO lacks"):
		return "the dump's VMCOREINFO lacks what finding it takes"
	}
	return "unreadable"
}

// dumpFileIn returns the dump file of a dump directory, "" when dir holds
// none: the complete one first.
func dumpFileIn(dir string) string {
	for _, name := range []string{crashdir.VMCore, crashdir.VMCoreIncomplete, crashdir.VMCore + ".flat", crashdir.VMCoreIncomplete + ".flat"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// listDumps lists the dump directories in dir, oldest first.
func listDumps(dir string, asJSON bool, w io.Writer) error {
	dumps, err := crashdir.Scan(dir)
	if err != nil {
		return explain(err, "%s cannot be read", dir)
	}
	if asJSON {
		if dumps == nil {
			dumps = []crashdir.Dump{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Dir   string          `json:"dir"`
			Dumps []crashdir.Dump `json:"dumps"`
		}{dir, dumps})
	}
	if len(dumps) == 0 {
		return fmt.Errorf("%s holds no dump: neither a dump file (vmcore) nor dump directories (<crash time>/vmcore)", dir)
	}
	fmt.Fprintf(w, "%-24s %-12s %10s  %s\n", "crash time (UTC)", "state", "size", "dump")
	for _, d := range dumps {
		file, bytes := "-", "-"
		if d.File != "" {
			file, bytes = d.File, sizeOf(d.Size)
		}
		if !d.Dmesg {
			file += " (no vmcore-dmesg.txt)"
		}
		if len(d.Foreign) > 0 {
			file += fmt.Sprintf(" (and %d files not gokdump's)", len(d.Foreign))
		}
		fmt.Fprintf(w, "%-24s %-12s %10s  %s\n", d.Time.UTC().Format("2006-01-02 15:04:05"), d.State, bytes, file)
	}
	fmt.Fprintf(w, "\n'gokdump info %s' tells what happened.\n", filepath.Join(dir, dumps[len(dumps)-1].Name))
	return nil
}

func sizeOf(n int64) string { return size.Size(n).String() }
