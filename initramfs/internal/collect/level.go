package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/size"
	"golang.org/x/sys/unix"
)

// headroom is what a level's estimate must leave free to be chosen: the
// estimate's own error (a few percent on real dumps) and room for the
// filesystem's metadata.
func headroom(bytes int64) int64 { return bytes/16 + 1<<20 }

// chooseLevel picks the dump level: the first of levels whose estimated
// dump fits in room bytes (what room says in words: "10.0 MiB free"), or,
// when none does, the one with the smallest estimate. It returns the
// level and a line saying why. With a single level, or room unknown
// (< 0), there is nothing to choose and estimate is not called.
func chooseLevel(levels []filter.Level, room int64, what string, estimate func() ([]pipeline.SizeEstimate, error)) (filter.Level, string) {
	if len(levels) == 1 {
		if room < 0 {
			return levels[0], fmt.Sprintf("level %d", levels[0])
		}
		return levels[0], fmt.Sprintf("level %d, %s", levels[0], what)
	}
	if room < 0 {
		return levels[0], fmt.Sprintf("level %d chosen: the free space is unknown", levels[0])
	}
	ests, err := estimate()
	if err != nil || len(ests) != len(levels) {
		return levels[0], fmt.Sprintf("level %d chosen: no size estimate (%v)", levels[0], err)
	}
	var skipped []string
	for _, e := range ests {
		if e.Bytes+headroom(e.Bytes) <= room {
			why := fmt.Sprintf("level %d chosen: ~%s expected, %s", e.Level, mib(e.Bytes), what)
			if len(skipped) > 0 {
				why += "; " + strings.Join(skipped, ", ")
			}
			return e.Level, why
		}
		skipped = append(skipped, fmt.Sprintf("level %d needs ~%s", e.Level, mib(e.Bytes+headroom(e.Bytes))))
	}
	small := ests[0]
	for _, e := range ests[1:] {
		if e.Bytes < small.Bytes {
			small = e
		}
	}
	return small.Level, fmt.Sprintf("level %d chosen, the smallest, though no level fits in %s (%s): the dump will be incomplete if it does not fit",
		small.Level, what, strings.Join(skipped, ", "))
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// room is what the dump may take: the target's free space (free, < 0 when
// unknown), or max_size when that is less. It says which in words.
func room(free int64, maxSize size.Size) (int64, string) {
	limit := int64(min(uint64(maxSize), math.MaxInt64))
	switch {
	case limit > 0 && (free < 0 || limit < free):
		if free < 0 {
			return limit, fmt.Sprintf("max_size %s", mib(limit))
		}
		return limit, fmt.Sprintf("max_size %s (%s free)", mib(limit), mib(free))
	case free < 0:
		return -1, "free space unknown"
	}
	return free, mib(free) + " free"
}

// ErrMaxSize is why a dump stopped at max_size.
var ErrMaxSize = errors.New("max_size reached")

// guardWriter is the dump's output with a check before every write: a
// write that check refuses is refused whole, as a full disk refuses it,
// so that the dump writer closes what it wrote as an incomplete dump. Its
// header and page descriptors lie before the pages and are finished in
// place, so a limit on the size (max_size) still leaves room for them.
type guardWriter struct {
	w     io.WriterAt
	check func(off, n int64) error
}

// capWriter keeps a dump within max bytes.
func capWriter(w io.WriterAt, max int64) *guardWriter {
	return &guardWriter{w: w, check: func(off, n int64) error {
		if off+n > max {
			return fmt.Errorf("%w: %d bytes written, limit %d (%w)", ErrMaxSize, off, max, unix.EFBIG)
		}
		return nil
	}}
}

// ErrStopped is why a dump stopped when the console's ^C (or its
// time_budget) stopped it.
var ErrStopped = errors.New("stopped on the console")

// stopWriter ends a dump once ctx is done.
func stopWriter(ctx context.Context, w io.WriterAt) *guardWriter {
	return &guardWriter{w: w, check: func(int64, int64) error {
		if ctx.Err() != nil {
			return ErrStopped
		}
		return nil
	}}
}

func (g *guardWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := g.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	return g.w.WriteAt(p, off)
}

// Preallocate and ReadAt pass the dump writer's reservation and reads on.
func (g *guardWriter) Preallocate(off, size int64) error {
	if err := g.check(off, size); err != nil {
		return err
	}
	return diskdump.Preallocate(g.w, off, size)
}

func (g *guardWriter) ReadAt(p []byte, off int64) (int, error) {
	r, ok := g.w.(io.ReaderAt)
	if !ok {
		return 0, errors.New("output cannot be read")
	}
	return r.ReadAt(p, off)
}

// saveDump saves src to out at the level that fits in free bytes, with a
// progress line, and says how it went. checkpoint, called now and then
// from the goroutine that writes out, makes what is written durable.
func saveDump(env *Env, cfg *config.Config, src *source, out io.WriterAt, free int64, format config.Format, checkpoint func()) Result {
	c, err := codec.Parse(string(cfg.Compress))
	if err != nil {
		return Failedf("%v", err)
	}
	logf := env.logf
	opts := pipeline.Options{Codec: c, Format: pipeline.Format(format), Logf: logf}
	room, what := room(free, cfg.MaxSize)
	if cfg.MaxSize > 0 {
		out = capWriter(out, int64(min(uint64(cfg.MaxSize), math.MaxInt64)))
	}
	if src.ctx != nil {
		out = stopWriter(src.ctx, out)
	}
	level, why := chooseLevel(cfg.DumpLevel, room, what, func() ([]pipeline.SizeEstimate, error) {
		t := env.Clock.Now()
		ests, err := pipeline.Estimate(src.f, cfg.DumpLevel, opts)
		for _, e := range ests {
			logf("estimate: %s", e)
		}
		logf("estimated %d levels in %.2fs", len(ests), env.since(t).Seconds())
		return ests, err
	})
	logf("%s", why)
	opts.Level = level
	prog := newProgress(env.Console, env.Clock.Now, uint64(src.f.PageSize), cfg.Progress)
	prog.hook = env.Hooks.Writing
	prog.checkpoint = checkpoint
	opts.Progress = prog.update
	st, err := pipeline.Save(src.f, out, opts)
	prog.end()
	res := Result{Level: level, Format: string(opts.Format)}
	if st != nil {
		logf("%s", st.Summary()) // pipeline.Save has logged st.Degraded as it found them
		if st.Absent > 0 {
			logf("%d pages the crashed kernel declared are absent from %s", st.Absent, src.path)
		}
		if st.Unreadable > 0 {
			logf("%d pages could not be read and are missing from the dump (listed in it)", st.Unreadable)
		}
		res.Bytes = st.BytesOut
	}
	switch {
	case err == nil:
		res.Status = StatusSaved
	case errors.Is(err, pipeline.ErrIncomplete):
		res.Status, res.Reason = StatusIncomplete, err.Error()
		if errors.Is(err, ErrStopped) {
			res.Reason = "stopped on the console: " + err.Error()
		} else if errors.Is(err, ErrMaxSize) {
			res.Reason = fmt.Sprintf("the dump reached max_size (%s) and was cut there: %v", cfg.MaxSize, err)
		} else if errors.Is(err, unix.ENOSPC) {
			res.Reason = "the target is full: " + err.Error()
		}
	default:
		res.Status, res.Reason = StatusFailed, err.Error()
	}
	return res
}
