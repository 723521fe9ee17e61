package pipeline

import (
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// chunkFilter applies the struct-page classes of the dump level to chunks
// of the dumpable bitmap.
type chunkFilter struct {
	mem   *kmem.Memory
	level filter.Level
	logf  func(string, ...any)
	c     *filter.Classifier
	next  uint64 // the pfn the classifier expects next
	excl  []byte
	stats *Stats
}

// newChunkFilter prepares filtering for the class bits of level (2, 4, 8,
// 16; hwpoison and offline pages always). It returns nil, with the reason
// in stats.Degraded, when the dump's struct pages cannot be found at all:
// every page is then kept.
func newChunkFilter(src *vmcore.File, level filter.Level, chunk uint64, st *Stats, logf func(string, ...any)) *chunkFilter {
	mem, err := kmem.New(src, src.VMCOREINFO, src.Machine)
	if err != nil {
		st.Degraded = append(st.Degraded, "no page filtering: "+err.Error())
		return nil
	}
	f := &chunkFilter{mem: mem, level: level &^ filter.ExcludeZero, logf: logf, excl: make([]byte, chunk/8), stats: st}
	if err := f.reset(); err != nil {
		st.Degraded = append(st.Degraded, "no page filtering: "+err.Error())
		return nil
	}
	st.Degraded = append(st.Degraded, f.c.Degraded()...)
	return f
}

func (f *chunkFilter) reset() error {
	c, err := filter.New(f.mem, f.mem.Info, filter.Options{Level: f.level, Logf: f.logf})
	if err != nil {
		return err
	}
	f.c, f.next = c, 0
	// The layout notes are worth reading once, not once per pass.
	f.logf = func(string, ...any) {}
	return nil
}

// exclude clears in dumpable the bits of pfns [start, start+n) that the
// filter drops, and sets in unread those of pages it kept unjudged (see
// filter.Classifier.ClassifyUnread). Windows must come in increasing
// order; a pass that starts over gets a fresh classifier, as runs carried
// across windows would otherwise leak into it. With count set the classes
// are added to stats.
func (f *chunkFilter) exclude(start, n uint64, dumpable, unread []byte, count bool) error {
	if start < f.next {
		if err := f.reset(); err != nil {
			return err
		}
	}
	f.next = start + n
	excl := f.excl[:(n+7)/8]
	clear(excl)
	var st filter.Stats
	if err := f.c.ClassifyUnread(start, int(n), excl, unread, &st); err != nil {
		return err
	}
	for i := range excl {
		dumpable[i] &^= excl[i]
	}
	if count {
		f.stats.Cache += st.Cache
		f.stats.CachePriv += st.CachePrivate
		f.stats.User += st.User
		f.stats.Free += st.Free
		f.stats.HWPoison += st.HWPoison
		f.stats.Offline += st.Offline
	}
	return nil
}
