package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
		setup: func(fs *flag.FlagSet) func([]string) error {
			var o saveFlags
			fs.StringVar(&o.vmcore, "vmcore", "/proc/vmcore", "ELF vmcore to read: /proc/vmcore in a capture kernel, or a saved copy")
			fs.IntVar(&o.level, "d", 31, "dump level 0..31, as makedumpfile's -d: 1 zero, 2 cache, 4 private cache, 8 user, 16 free pages")
			fs.StringVar(&o.compress, "compress", "zstd", "page compression: zstd, zlib, snappy or none (kdump format only)")
			fs.StringVar(&o.format, "format", "kdump", "output format: kdump (makedumpfile's kdump-compressed) or elf")
			fs.IntVar(&o.workers, "workers", 0, "compression workers (0: one per CPU); the output does not depend on it")
			fs.BoolVar(&o.stats, "stats", false, "print the page classes as makedumpfile reports them")
			fs.BoolVar(&o.force, "f", false, "overwrite OUT if it exists")
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

func runSave(o saveFlags, out string, stdout, stderr io.Writer) error {
	c, err := codec.Parse(o.compress)
	if err != nil {
		return err
	}
	if o.format == string(pipeline.FormatELF) && c != codec.None && o.compress != "zstd" {
		return fmt.Errorf("--compress %s: ELF dumps are not compressed", o.compress)
	}
	level, err := filter.CheckLevel(o.level)
	if err != nil {
		return fmt.Errorf("-d: %w", err)
	}
	src, err := vmcore.Open(o.vmcore)
	if err != nil {
		return err
	}
	defer src.Close()
	flags := os.O_RDWR | os.O_CREATE | os.O_EXCL | unix.O_NOFOLLOW
	if o.force {
		flags = os.O_RDWR | os.O_CREATE | os.O_TRUNC | unix.O_NOFOLLOW
	}
	// 0600: a dump holds whatever the kernel held, keys included.
	f, err := os.OpenFile(out, flags, 0o600)
	if err != nil {
		return err
	}
	opts := pipeline.Options{
		Level:   level,
		Codec:   c,
		Format:  pipeline.Format(o.format),
		Workers: o.workers,
		Logf:    func(format string, args ...any) { fmt.Fprintf(stderr, "gokdump save: "+format+"\n", args...) },
	}
	var prog *ttyProgress
	if !o.quiet && isTerminal(stderr) {
		prog = &ttyProgress{w: stderr, pageSize: uint64(src.PageSize), begin: time.Now()}
		opts.Progress = prog.update
	}
	st, err := pipeline.Save(src, f, opts)
	if prog != nil {
		prog.end()
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if st != nil {
		if o.stats {
			st.WriteTable(stdout)
		}
		fmt.Fprintf(stdout, "%s: %s\n", out, st.Summary())
		for _, l := range st.MissingLines(8) {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
		for _, d := range st.Degraded {
			fmt.Fprintf(stdout, "  warning: %s\n", d)
		}
	}
	if errors.Is(err, pipeline.ErrIncomplete) {
		return fmt.Errorf("%s is incomplete but readable: %w", out, err)
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
