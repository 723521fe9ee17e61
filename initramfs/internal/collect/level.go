package collect

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/sys/unix"
)

// headroom is what a level's estimate must leave free to be chosen: the
// estimate's own error (a few percent on real dumps) and room for the
// filesystem's metadata.
func headroom(bytes int64) int64 { return bytes/16 + 1<<20 }

// chooseLevel picks the dump level: the first of levels whose estimated
// dump fits in free bytes, or, when none does, the one with the smallest
// estimate. It returns the level and a line saying why. With a single
// level, or free unknown (< 0), there is nothing to choose and estimate
// is not called.
func chooseLevel(levels []filter.Level, free int64, estimate func() ([]pipeline.SizeEstimate, error)) (filter.Level, string) {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	if len(levels) == 1 {
		if free < 0 {
			return levels[0], fmt.Sprintf("level %d", levels[0])
		}
		return levels[0], fmt.Sprintf("level %d, %s free", levels[0], mib(free))
	}
	if free < 0 {
		return levels[0], fmt.Sprintf("level %d chosen: the free space is unknown", levels[0])
	}
	ests, err := estimate()
	if err != nil || len(ests) != len(levels) {
		return levels[0], fmt.Sprintf("level %d chosen: no size estimate (%v)", levels[0], err)
	}
	var skipped []string
	for _, e := range ests {
		if e.Bytes+headroom(e.Bytes) <= free {
			why := fmt.Sprintf("level %d chosen: ~%s expected, %s free", e.Level, mib(e.Bytes), mib(free))
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
	return small.Level, fmt.Sprintf("level %d chosen, the smallest, though no level fits in %s free (%s): the dump will be incomplete if it does not fit",
		small.Level, mib(free), strings.Join(skipped, ", "))
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
	level, why := chooseLevel(cfg.DumpLevel, free, func() ([]pipeline.SizeEstimate, error) {
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
		if errors.Is(err, unix.ENOSPC) {
			res.Reason = "the target is full: " + err.Error()
		}
	default:
		res.Status, res.Reason = StatusFailed, err.Error()
	}
	return res
}
