package pipeline

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// batchPages is how many consecutive pages one job carries through the
// workers: big enough to amortise channel operations, small enough that
// the jobs in flight stay a few MiB.
const batchPages = 64

// bitmapCacheBytes bounds the 2nd bitmap that pass 1 keeps for pass 2:
// 1 MiB covers 32 GiB of 4 KiB pages in the windows that hold memory.
// Past it, pass 2 runs the filter again, window by window; memory stays
// bounded whatever the size of the machine.
var bitmapCacheBytes uint64 = 1 << 20

// job is a batch of consecutive dumpable pages on its way from the planner
// through a worker, which reads and compresses them, to the writer.
type job struct {
	pfn    uint64
	n      int
	mapped bool // the pages may be viewed in the mapped vmcore

	view vmcore.View // held from the worker until the writer is done
	data []byte      // n pages: the view's bytes, or buf after a copy
	buf  []byte      // room to copy n pages into

	out  []byte    // compressed pages, back to back
	page []pageOut // per page: where its output is, or that it is zero
	bad  []error   // per page: read error (page missing)
	done chan struct{}
}

type pageOut struct {
	off, len int
	flags    uint32
	zero     bool
	raw      bool // store data[i] uncompressed
}

// saver runs one save.
type saver struct {
	src   *vmcore.File
	opts  Options
	ps    int
	plan  *plan
	filt  *chunkFilter
	stats *Stats
	// Missing memory: found from the headers in pass 1, and found
	// unreadable while reading pages.
	known, late   *vmcore.Missing
	zeroedMissing bool // a missing page had to be stored as zeros
	batch         int  // pages per job: batchPages, or fewer for a small dump
}

// pool is the workers and the jobs they share.
type pool struct {
	free   chan *job
	work   chan *job
	wg     sync.WaitGroup
	err    error        // a worker's compressor could not be made; set before the workers start
	panics atomic.Int64 // jobs whose processing panicked
}

func (s *saver) startPool() *pool {
	nw := s.opts.Workers
	p := &pool{free: make(chan *job, 2*nw+2)}
	p.work = make(chan *job, cap(p.free))
	for i := 0; i < cap(p.free); i++ {
		p.free <- &job{
			buf:  make([]byte, s.batch*s.ps),
			out:  make([]byte, 0, s.batch*(s.ps+s.ps/8+64)),
			page: make([]pageOut, s.batch),
			bad:  make([]error, s.batch),
			done: make(chan struct{}, 1),
		}
	}
	for i := 0; i < nw; i++ {
		// Made here, not in the worker: p.err is then written before any
		// goroutine starts and read by the writer loop without a race.
		cp, err := codec.NewCompressor(s.opts.Codec, s.ps)
		if err != nil {
			if p.err == nil {
				p.err = err
			}
			cp = nil
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.work {
				s.safeProcess(cp, j, p)
				j.done <- struct{}{}
			}
		}()
	}
	return p
}

// safeProcess is process, turning a panic (a bug of ours on strange
// data) into pages stored raw: the dump loses nothing, and the panic is
// reported once.
func (s *saver) safeProcess(cp *codec.Compressor, j *job, p *pool) {
	defer func() {
		if r := recover(); r != nil {
			for i := 0; i < j.n; i++ {
				if j.bad[i] == nil {
					j.page[i] = pageOut{raw: true}
				}
			}
			if p.panics.Add(1) == 1 {
				s.opts.Logf("compressing pfn %#x+%d panicked (%v); those pages are stored uncompressed", j.pfn, j.n, r)
			}
		}
	}()
	s.process(cp, j)
}

func (p *pool) stop() {
	close(p.work)
	p.wg.Wait()
}

// runKdump writes src to out in the kdump-compressed format.
func (s *saver) runKdump(w *diskdump.Writer) error {
	bm := newBitmaps(s.opts.ChunkPages)
	how := "read with pread"
	if rs := s.src.PhysRanges(); len(rs) > 0 && s.src.Viewable(rs[len(rs)-1].Start) > 0 {
		how = "used in place through mmap windows"
	}
	workers := "1 worker"
	if s.opts.Workers != 1 {
		workers = fmt.Sprintf("%d workers", s.opts.Workers)
	}
	s.opts.Logf("%s, pages %s", workers, how)

	// Pass 1: bitmaps, over the windows that hold memory only: the rest
	// of the bitmaps stay holes, and time goes only where memory is,
	// however far apart a header puts it. Zero pages stay in the 2nd
	// bitmap: as makedumpfile writes them, they share one descriptor, so
	// that readers find zeros there rather than an excluded page, and no
	// page is read twice.
	t0 := time.Now()
	var total uint64
	var cache [][]byte // the 2nd bitmap, window by window, when it fits
	cacheOK := s.plan.bytes <= bitmapCacheBytes
	for _, win := range s.plan.wins {
		if err := s.window(win, bm, true); err != nil {
			return err
		}
		nb := (win.n + 7) / 8
		if err := w.SetBitmaps(win.start, bm.ram[:nb], bm.dumpable[:nb]); err != nil {
			return err
		}
		total += popcount(bm.dumpable[:nb])
		if cacheOK {
			cache = append(cache, append([]byte(nil), bm.dumpable[:nb]...))
		}
	}
	s.noteUnfiltered()
	s.stats.BitmapTime = time.Since(t0)
	if err := w.StartPages(); err != nil {
		return err
	}
	s.batch = int(min(batchPages, max(total, 1)))
	p := s.startPool()
	defer p.stop()

	// Pass 2: pages. The planner cuts the dumpable pages into jobs,
	// workers read and compress them, and this goroutine writes them in
	// order.
	order := make(chan *job, cap(p.free))
	stop := make(chan struct{})
	var planErr error
	go func() { // planner
		defer close(order)
		defer func() {
			if r := recover(); r != nil {
				planErr = fmt.Errorf("pipeline: planning pages panicked: %v", r)
			}
		}()
		planErr = s.planPages(p, cache, bm, order, stop)
	}()

	var written uint64
	var werr error
	for j := range order {
		<-j.done
		if werr == nil {
			werr = s.write(w, j)
			written += uint64(j.n)
			if s.opts.Progress != nil {
				s.opts.Progress(written, total)
			}
			if werr != nil {
				close(stop)
			}
		}
		j.view.Release()
		p.free <- j
	}
	if werr != nil {
		return werr
	}
	if p.err != nil {
		return p.err
	}
	return planErr
}

// window computes the bitmaps of window w: ram (memory), held (the
// source holds it), miss (it should and does not) and dumpable (held and
// not excluded by the filter's classes). With count set, it adds the
// window to the statistics (the missing pages are counted from the
// source's list, window or not).
func (s *saver) window(w window, b *bitmaps, count bool) error {
	nb := (w.n + 7) / 8
	s.plan.fill(w, b)
	copy(b.dumpable[:nb], b.held[:nb])
	if count {
		r, h, m := popcount(b.ram[:nb]), popcount(b.held[:nb]), popcount(b.miss[:nb])
		s.stats.PagesTotal += r
		s.stats.Absent += r - h - m
	}
	if s.filt == nil {
		return nil
	}
	unread := b.unread[:nb]
	if err := s.filt.exclude(w.start, w.n, b.dumpable[:nb], unread, count); err != nil {
		return err
	}
	if count && unfilteredClasses(s.opts.Level) {
		for i := range unread {
			unread[i] &= b.held[i]
		}
		s.stats.Unfiltered += popcount(unread)
	}
	return nil
}

// batches calls emit for the pfns whose bits are set in bm (bit i is pfn
// start+i, n bits), in runs of consecutive pfns of at most batchPages
// pages, each within one mmap window where the vmcore is mapped. It stops
// when emit returns false, and then returns false.
func (s *saver) batches(start, n uint64, bm []byte, emit func(pfn uint64, n int, mapped bool) bool) bool {
	ps := uint64(s.ps)
	var cur uint64
	k, limit, mapped := 0, 0, false
	for i := uint64(0); i < n; i++ {
		if i&7 == 0 && bm[i/8] == 0 {
			i += 7
			continue
		}
		if bm[i/8]&(1<<(i&7)) == 0 {
			continue
		}
		pfn := start + i
		if k > 0 && (k == limit || cur+uint64(k) != pfn) {
			if !emit(cur, k, mapped) {
				return false
			}
			k = 0
		}
		if k == 0 {
			// A batch the mapped file holds in one window is viewed
			// there, not copied: it must not run past the window.
			cur, limit = pfn, s.batch
			v := int(min(s.src.Viewable(pfn*ps)/ps, uint64(s.batch)))
			if mapped = v > 0; mapped {
				limit = v
			}
		}
		k++
	}
	return k == 0 || emit(cur, k, mapped)
}

// planPages cuts the pages of pass 2 into jobs, in pfn order: those of
// the bitmaps pass 1 kept or, past the cache, of the bitmaps computed
// again (the same windows in the same order: the same bits).
func (s *saver) planPages(p *pool, cache [][]byte, b *bitmaps, order chan<- *job, stop <-chan struct{}) error {
	for c, win := range s.plan.wins {
		bm := b.dumpable
		if c < len(cache) {
			bm = cache[c]
		} else if err := s.window(win, b, false); err != nil {
			return err
		}
		ok := s.batches(win.start, win.n, bm, func(pfn uint64, k int, mapped bool) bool {
			var j *job
			select {
			case j = <-p.free:
			case <-stop:
				return false
			}
			j.pfn, j.n, j.mapped = pfn, k, mapped
			select {
			case order <- j:
			case <-stop:
				return false
			}
			p.work <- j
			return true
		})
		if !ok {
			return nil
		}
	}
	return nil
}

// load makes j.data the job's pages: a view of the mapped vmcore when it
// can be had, else a copy, with unreadable pages marked in j.bad and left
// zero. It reports whether j.data is a view.
func (s *saver) load(j *job, tryView bool) bool {
	clear(j.bad[:j.n])
	if tryView && j.mapped {
		if v, ok := s.src.ViewPhys(j.pfn*uint64(s.ps), j.n*s.ps); ok {
			j.view, j.data = v, v.Bytes()
			return true
		}
	}
	j.data = j.buf[:j.n*s.ps]
	readPages(s.src, j.pfn, j.n, j.data, s.ps, func(i int, err error) { j.bad[i] = err })
	return false
}

// guard runs f, which reads a view of the mapped vmcore, and reports false
// if touching it faulted (a failing read of /proc/vmcore).
func guard(f func()) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, isFault := r.(interface{ Addr() uintptr }); !isFault {
				panic(r)
			}
			ok = false
		}
	}()
	f()
	return true
}

// process reads j's pages and compresses them. Mapped pages are used
// where they are; should touching them fault, the job is read again by
// copying, which marks the pages that cannot be read.
func (s *saver) process(cp *codec.Compressor, j *job) {
	if s.load(j, true) {
		if guard(func() { s.compress(cp, j) }) {
			return
		}
		j.view.Release()
		s.load(j, false)
	}
	s.compress(cp, j)
}

// compress fills j.out and j.page from j.data. cp is nil when no
// compressor could be made; pages are then stored raw.
func (s *saver) compress(cp *codec.Compressor, j *job) {
	j.out = j.out[:0]
	excludeZero := s.opts.Level&filter.ExcludeZero != 0
	for i := 0; i < j.n; i++ {
		pg := j.data[i*s.ps : (i+1)*s.ps]
		po := &j.page[i]
		*po = pageOut{}
		if j.bad[i] != nil || (excludeZero && isZero(pg)) {
			po.zero = true
			continue
		}
		if cp != nil {
			start := len(j.out)
			out, ok := cp.Compress(j.out[start:start], pg)
			if ok {
				// out is j.out's own storage when it had room (the usual
				// case); append then copies nothing new.
				j.out = append(j.out[:start], out...)
				po.off, po.len, po.flags = start, len(out), cp.Flag()
				continue
			}
		}
		po.raw = true
	}
}

// write hands a job's pages to the kdump writer in order.
func (s *saver) write(w *diskdump.Writer, j *job) error {
	for i := 0; i < j.n; i++ {
		pfn := j.pfn + uint64(i)
		po := j.page[i]
		s.stats.BytesIn += int64(s.ps)
		var err error
		switch {
		case j.bad[i] != nil:
			s.stats.BytesIn -= int64(s.ps)
			s.missingPage(pfn, j.bad[i])
			var excluded bool
			if excluded, err = w.ExcludePage(pfn); err == nil && !excluded {
				s.stats.Stored++
				if !s.zeroedMissing {
					s.zeroedMissing = true
					s.opts.Logf("the output cannot be read back: missing pages are stored as zero pages (the dump's list of missing memory names them)")
				}
			}
		case po.zero:
			s.stats.Zero++
			s.stats.Stored++
			err = w.WriteZeroPage(pfn)
		case po.raw:
			s.stats.PagesKept++
			s.stats.Stored++
			err = w.WritePage(pfn, j.data[i*s.ps:(i+1)*s.ps], 0)
		default:
			s.stats.PagesKept++
			s.stats.Stored++
			err = w.WritePage(pfn, j.out[po.off:po.off+po.len], po.flags)
		}
		if err != nil {
			return fmt.Errorf("pipeline: write pfn %#x: %w", pfn, err)
		}
	}
	return nil
}
