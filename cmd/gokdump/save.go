package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/capture/vmcore"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{
		name: "save",
		args: "OUT",
		short: "save a vmcore (/proc/vmcore, a saved ELF vmcore or kdump-compressed dump) as a filtered, " +
			"compressed dump",
		long: `OUT is written under a temporary name beside it and takes its name only
once complete: a failed run leaves an existing OUT as it was, and OUT may
not be the input, nor a symbolic link (name the file itself). An incomplete
dump never replaces an existing OUT: it is kept as OUT.incomplete.

OUT "-" is standard output: with --flat (makedumpfile -F) the dump goes
anywhere a pipe goes (gokdump save --flat - | ssh host 'cat > vmcore.flat';
then gokdump savecore vmcore.flat DIR, or makedumpfile -R vmcore <
vmcore.flat); without it standard output must be a file (> FILE), since a
dump is written at offsets. The summary then goes to standard error.

--vmcore may be a kdump-compressed dump, gokdump's or makedumpfile's, to
filter it again at a higher level or compress it with another codec, as
makedumpfile does: the level is the one asked for combined with the dump's
own (pages it left out stay out).

--quiet shows no progress, notes or summary; warnings about what the dump
lacks, and errors, still go to standard error.

exit codes: 0 saved, complete; 1 failed, nothing saved; 2 the command line
is wrong, nothing done; 3 saved, but the dump is incomplete (the disk
filled, or the source was; flagged so, readable)`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var o saveFlags
			fs.StringVar(&o.vmcore, "vmcore", "/proc/vmcore", "the dump to read: /proc/vmcore in a capture kernel, a saved ELF vmcore, or a kdump-compressed dump")
			fs.IntVar(&o.level, "d", 31, "dump level 0..31, as makedumpfile's -d: 1 zero, 2 cache, 4 private cache, 8 user, 16 free pages")
			fs.StringVar(&o.compress, "compress", "zstd", "page compression: zstd, lzo (makedumpfile -l's), zlib, snappy or none (kdump format only)")
			fs.StringVar(&o.format, "format", "kdump", "output format: kdump (makedumpfile's kdump-compressed) or elf")
			fs.BoolVar(&o.flat, "flat", false, "write makedumpfile's flattened stream (its -F), to OUT or, with OUT -, to standard output")
			fs.IntVar(&o.workers, "workers", 0, fmt.Sprintf("compression workers, at most %d (0: one per CPU); the output does not depend on it", maxWorkers()))
			fs.BoolVar(&o.stats, "stats", false, "print the page classes as makedumpfile's report lists them (counts in decimal and hex)")
			fs.BoolVar(&o.force, "f", false, "replace OUT if it exists, once the new dump is complete (until then both take space)")
			fs.BoolVar(&o.quiet, "quiet", false, "no progress line, notes or summary; warnings and errors only")
			fs.BoolVar(&o.quiet, "q", false, "same as --quiet")
			return func(args []string, s streams) error {
				if err := needArgs(args, "OUT"); err != nil {
					return err
				}
				return runSave(o, args[0], s.out, s.err)
			}
		},
	})
}

type saveFlags struct {
	vmcore, compress, format  string
	level, workers            int
	stats, force, quiet, flat bool
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

// A saveSource is what save reads: an ELF vmcore, or a kdump-compressed
// dump through its ELF view.
type saveSource struct {
	*vmcore.File
	kdump *diskdump.File // nil for an ELF vmcore
}

func (s *saveSource) Close() error {
	err := s.File.Close()
	if s.kdump != nil {
		err = errors.Join(err, s.kdump.Close())
	}
	return err
}

// openSource opens path as save's input, whatever format it is in.
func openSource(path string) (*saveSource, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, explainOpen(path, err)
	}
	format, err := anydump.Detect(fh)
	fh.Close()
	switch {
	case err != nil && path != "/proc/vmcore":
		return nil, explainOpen(path, err)
	case format == anydump.Flattened:
		return nil, explainOpen(path, anydump.ErrFlattened)
	case format != anydump.Kdump:
		f, err := vmcore.Open(path)
		if err != nil {
			return nil, explainOpen(path, err)
		}
		return &saveSource{File: f}, nil
	}
	kf, err := diskdump.OpenFile(path)
	if err != nil {
		return nil, explainOpen(path, err)
	}
	v, err := kf.ELFView()
	if err == nil {
		var f *vmcore.File
		if f, err = vmcore.NewFile(v, v.Size()); err == nil {
			return &saveSource{File: f, kdump: kf}, nil
		}
	}
	kf.Close()
	return nil, explain(err, "%s cannot be filtered again", path)
}

// dumpTo is where save writes: a temporary file that becomes OUT, or
// standard output.
type dumpTo struct {
	out  io.WriterAt
	file *outFile // nil for standard output
	flat *diskdump.FlattenWriter
	buf  *bufio.Writer // under flat
	name string        // for messages
}

// finish ends the flattened stream, if any.
func (d *dumpTo) finish() error {
	if d.flat == nil {
		return nil
	}
	return errors.Join(d.flat.Close(), d.buf.Flush())
}

// openDumpTo opens what save writes to; checkOutput has checked OUT.
func openDumpTo(o saveFlags, out string, stdout io.Writer) (*dumpTo, error) {
	d := &dumpTo{name: out}
	var w io.Writer
	if out == "-" {
		d.name = "standard output"
		f, isFile := stdout.(*os.File)
		if isFile && isTerminal(f) {
			return nil, usagef("not writing a dump to a terminal: redirect standard output, or name a file")
		}
		if !o.flat {
			if err := seekableOutput(f, isFile); err != nil {
				return nil, err
			}
			d.out = f
			return d, nil
		}
		w = stdout
	} else {
		f, err := createOutput(out, o.force)
		if err != nil {
			return nil, err
		}
		d.file, d.out, w = f, f, f
	}
	if o.flat {
		d.buf = bufio.NewWriterSize(w, 1<<20)
		d.flat = diskdump.NewFlattenWriter(d.buf)
		d.out = d.flat
	}
	return d, nil
}

// seekableOutput refuses standard output that a dump cannot be written to
// at offsets: a pipe, a socket, a file opened to append.
func seekableOutput(f *os.File, isFile bool) error {
	const hint = "add --flat for makedumpfile's flattened stream (gokdump savecore or makedumpfile -R reads it back)"
	if !isFile {
		return usagef("standard output is not a file: %s", hint)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return usagef("standard output is a %s, not a file: a dump is written at offsets; %s", fileKind(fi.Mode()), hint)
	}
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err == nil && fl&unix.O_APPEND != 0 {
		return usagef("standard output is opened to append (>>): a dump is written at offsets; use > or %s", hint)
	}
	return nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

func runSave(o saveFlags, out string, stdout, stderr io.Writer) error {
	// Everything that can be refused is, before anything is created.
	opts, err := o.options()
	if err != nil {
		return err
	}
	if out != "-" {
		if err := checkOutput(out, o.force, o.vmcore); err != nil {
			return err
		}
	}
	src, err := openSource(o.vmcore)
	if err != nil {
		return err
	}
	defer src.Close()
	report := stdout // the summary and the table
	if out == "-" {
		report = stderr
	}
	logf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if o.quiet && isNote(line) {
			return
		}
		fmt.Fprintf(stderr, "gokdump save: %s\n", line)
	}
	if src.kdump != nil {
		was := filter.Level(src.kdump.Header.DumpLevel) & filter.MaxLevel
		if lvl := opts.Level | was; lvl != opts.Level {
			logf("note: %s was saved at dump level %d: the pages it left out stay out; saving at level %d (-d %d with %d)",
				o.vmcore, was, lvl, opts.Level, was)
			opts.Level = lvl
		}
	}
	d, err := openDumpTo(o, out, stdout)
	if err != nil {
		return err
	}
	opts.Logf = logf
	var prog *ttyProgress
	if !o.quiet && isTerminal(stderr) {
		prog = &ttyProgress{w: stderr, pageSize: uint64(src.PageSize), begin: time.Now()}
		opts.Progress = prog.update
	}
	st, err := pipeline.Save(src.File, d.out, opts)
	if prog != nil {
		prog.end()
	}
	if ferr := d.finish(); ferr != nil && err == nil {
		err = ferr
	}
	saved := d.name
	switch {
	case d.file == nil && err == nil:
	case d.file == nil && errors.Is(err, pipeline.ErrIncomplete):
		err = fmt.Errorf("%w: the dump written to standard output is incomplete but readable: %w", errIncomplete, err)
	case d.file == nil:
		return err
	case err == nil:
		err = d.file.commit()
	case errors.Is(err, pipeline.ErrIncomplete):
		// Readable and flagged incomplete: keep it, but never in place
		// of a dump that is there already.
		saved = out
		if _, serr := os.Lstat(out); serr == nil {
			saved = out + ".incomplete"
		}
		if cerr := d.file.commitAs(saved, false); cerr != nil {
			fmt.Fprintf(stderr, "gokdump save: %v\n", cerr)
			saved = d.file.Name()
		}
		err = fmt.Errorf("%w: %s is incomplete but readable: %w", errIncomplete, saved, err)
	default:
		d.file.discard()
		return err
	}
	if st == nil {
		return err
	}
	if !o.quiet {
		if o.stats {
			st.WriteTable(report)
		}
		fmt.Fprintf(report, "%s: %s\n", saved, st.Summary())
	}
	// What the dump lacks (st.Degraded, st.MissingLines) was logged as a
	// warning as it was found.
	return err
}

// isNote tells the notes of a save (how the filter reads this kernel, how
// many workers, a level combined with the source's) from the warnings
// (what the dump lacks or could not be filtered): --quiet hides the notes.
func isNote(line string) bool {
	switch {
	case strings.HasPrefix(line, "note: "):
		return true
	case strings.HasPrefix(line, "filter: "):
		return !strings.Contains(line, "those pages are kept")
	}
	return workersNote.MatchString(line)
}

// workersNote is the pipeline's note of how it reads and compresses.
var workersNote = regexp.MustCompile(`^[0-9]+ workers?, pages `)

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
