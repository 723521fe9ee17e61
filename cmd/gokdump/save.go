package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/capture/vmcore"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{
		name:  "save",
		args:  "OUT",
		short: "save a vmcore (/proc/vmcore or a saved ELF vmcore) as a filtered, compressed dump",
		long: `OUT is written under a temporary name beside it and takes its name only
once complete: a failed run leaves an existing OUT as it was, and OUT may
not be the input. An incomplete dump never replaces an existing OUT: it is
kept as OUT.incomplete.

exit codes: 0 saved, complete; 1 failed, nothing saved; 2 the command line
is wrong, nothing done; 3 saved, but the dump is incomplete (the disk
filled; flagged so, readable)`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			var o saveFlags
			fs.StringVar(&o.vmcore, "vmcore", "/proc/vmcore", "ELF vmcore to read: /proc/vmcore in a capture kernel, or a saved copy")
			fs.IntVar(&o.level, "d", 31, "dump level 0..31, as makedumpfile's -d: 1 zero, 2 cache, 4 private cache, 8 user, 16 free pages")
			fs.StringVar(&o.compress, "compress", "zstd", "page compression: zstd, lzo (makedumpfile -l's), zlib, snappy or none (kdump format only)")
			fs.StringVar(&o.format, "format", "kdump", "output format: kdump (makedumpfile's kdump-compressed) or elf")
			fs.IntVar(&o.workers, "workers", 0, fmt.Sprintf("compression workers, at most %d (0: one per CPU); the output does not depend on it", maxWorkers()))
			fs.BoolVar(&o.stats, "stats", false, "print the page classes as makedumpfile reports them")
			fs.BoolVar(&o.force, "f", false, "replace OUT if it exists, once the new dump is complete (until then both take space)")
			fs.BoolVar(&o.quiet, "quiet", false, "no progress line (it is shown only when standard error is a terminal)")
			return func(args []string) error {
				if len(args) != 1 {
					return errUsage
				}
				return runSave(o, args[0], os.Stdout, os.Stderr)
			}
		},
	})
}

type saveFlags struct {
	vmcore, compress, format string
	level, workers           int
	stats, force, quiet      bool
}

// maxWorkers bounds --workers: each worker holds buffers, and beyond a few
// per CPU more only cost memory.
func maxWorkers() int { return max(64, 4*runtime.NumCPU()) }

// options checks every flag and returns the pipeline's options; a bad
// value is a usage error.
func (o saveFlags) options() (pipeline.Options, error) {
	var opts pipeline.Options
	switch f := pipeline.Format(o.format); f {
	case pipeline.FormatKdump, pipeline.FormatELF:
		opts.Format = f
	default:
		return opts, usagef("--format %q: want %s or %s", o.format, pipeline.FormatKdump, pipeline.FormatELF)
	}
	c, err := codec.Parse(o.compress)
	if err != nil {
		return opts, usagef("--compress: %v", err)
	}
	if opts.Format == pipeline.FormatELF && c != codec.None && o.compress != "zstd" {
		return opts, usagef("--compress %s: ELF dumps are not compressed", o.compress)
	}
	level, err := filter.CheckLevel(o.level)
	if err != nil {
		return opts, usagef("-d: %v", err)
	}
	if o.workers < 0 || o.workers > maxWorkers() {
		return opts, usagef("--workers %d: want 0 (one per CPU) to %d", o.workers, maxWorkers())
	}
	opts.Level, opts.Codec, opts.Workers = level, c, o.workers
	return opts, nil
}

func runSave(o saveFlags, out string, stdout, stderr io.Writer) error {
	// Everything that can be refused is, before anything is created.
	opts, err := o.options()
	if err != nil {
		return err
	}
	if err := checkOutput(out, o.force, o.vmcore); err != nil {
		return err
	}
	src, err := vmcore.Open(o.vmcore)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := createOutput(out, o.force)
	if err != nil {
		return err
	}
	opts.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "gokdump save: "+format+"\n", args...) }
	var prog *ttyProgress
	if !o.quiet && isTerminal(stderr) {
		prog = &ttyProgress{w: stderr, pageSize: uint64(src.PageSize), begin: time.Now()}
		opts.Progress = prog.update
	}
	st, err := pipeline.Save(src, f, opts)
	if prog != nil {
		prog.end()
	}
	saved := out
	switch {
	case err == nil:
		err = f.commit()
	case errors.Is(err, pipeline.ErrIncomplete):
		// Readable and flagged incomplete: keep it, but never in place
		// of a dump that is there already.
		if _, serr := os.Lstat(out); serr == nil {
			saved = out + ".incomplete"
		}
		if cerr := f.commitAs(saved, false); cerr != nil {
			fmt.Fprintf(stderr, "gokdump save: %v\n", cerr)
			saved = f.Name()
		}
		err = fmt.Errorf("%w: %s is incomplete but readable: %w", errIncomplete, saved, err)
	default:
		f.discard()
		return err
	}
	if st != nil {
		if o.stats {
			st.WriteTable(stdout)
		}
		fmt.Fprintf(stdout, "%s: %s\n", saved, st.Summary())
		for _, d := range st.Degraded {
			fmt.Fprintf(stdout, "  warning: %s\n", d)
		}
	}
	return err
}

// ttyProgress rewrites one terminal line with the dump's progress, a few
// times a second at most.
type ttyProgress struct {
	w           io.Writer
	pageSize    uint64
	begin, last time.Time
	shown       bool
}

func (p *ttyProgress) update(done, total uint64) {
	now := time.Now()
	if done < total && now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.shown = now, true
	fmt.Fprintf(p.w, "\r%s", pipeline.ProgressLine(done, total, p.pageSize, now.Sub(p.begin)))
}

func (p *ttyProgress) end() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
