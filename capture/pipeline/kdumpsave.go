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
// 1 MiB covers 32 GiB of 4 KiB pages. Past it, pass 2 runs the filter
// again, chunk by chunk; memory stays bounded whatever the size of the
// machine.
var bitmapCacheBytes = 1 << 20

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
	bad  []error   // per page: read error (page written as zero)
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
	pm    *pageMap
	filt  *chunkFilter
	stats *Stats
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
			buf:  make([]byte, batchPages*s.ps),
			out:  make([]byte, 0, batchPages*(s.ps+s.ps/8+64)),
			page: make([]pageOut, batchPages),
			bad:  make([]error, batchPages),
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
	ram := make([]byte, s.opts.ChunkPages/8)
	held := make([]byte, len(ram))
	dumpable := make([]byte, len(ram))
	maxPFN := s.stats.MaxPFN
	p := s.startPool()
	defer p.stop()
	how := "read with pread"
	if rs := s.src.PhysRanges(); len(rs) > 0 && s.src.Viewable(rs[len(rs)-1].Start) > 0 {
		how = "used in place through mmap windows"
	}
	workers := "1 worker"
	if s.opts.Workers != 1 {
		workers = fmt.Sprintf("%d workers", s.opts.Workers)
	}
	s.opts.Logf("%s, pages %s", workers, how)

	// Pass 1: bitmaps. Zero pages stay in the 2nd bitmap: as makedumpfile
	// writes them, they share one descriptor, so that readers find zeros
	// there rather than an excluded page, and no page is read twice.
	t0 := time.Now()
	var total uint64
	var cache [][]byte // the 2nd bitmap, chunk by chunk, while it fits
	cacheOK := maxPFN/8 <= uint64(bitmapCacheBytes)
	for start := uint64(0); start < maxPFN; start += s.opts.ChunkPages {
		n := min(s.opts.ChunkPages, maxPFN-start)
		if s.pm.empty(start, n) {
			// No memory here: the bitmaps stay holes, and time goes only
			// where memory is, however far apart a header puts it.
			if cacheOK {
				cache = append(cache, nil)
			}
			continue
		}
		if err := s.chunk(start, n, ram, held, dumpable, true); err != nil {
			return err
		}
		nb := (n + 7) / 8
		if err := w.SetBitmaps(start, ram[:nb], dumpable[:nb]); err != nil {
			return err
		}
		total += popcount(dumpable[:nb])
		if cacheOK {
			cache = append(cache, append([]byte(nil), dumpable[:nb]...))
		}
	}
	s.stats.BitmapTime = time.Since(t0)
	if err := w.StartPages(); err != nil {
		return err
	}

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
		planErr = s.plan(p, cache, ram, held, dumpable, order, stop)
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

// chunk computes the bitmaps of pfns [start, start+n): ram (memory),
// held (the source holds it) and dumpable (held and not excluded by the
// filter's classes). With count set, it adds the chunk to the statistics.
func (s *saver) chunk(start, n uint64, ram, held, dumpable []byte, count bool) error {
	s.pm.fill(start, n, ram, held)
	copy(dumpable, held)
	if count {
		r, h := popcount(ram), popcount(held)
		s.stats.PagesTotal += r
		s.stats.Absent += r - h
	}
	if s.filt != nil {
		if err := s.filt.exclude(start, n, dumpable, count); err != nil {
			return err
		}
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
			cur, limit = pfn, batchPages
			v := int(min(s.src.Viewable(pfn*ps)/ps, batchPages))
			if mapped = v > 0; mapped {
				limit = v
			}
		}
		k++
	}
	return k == 0 || emit(cur, k, mapped)
}

// plan cuts the pages of pass 2 into jobs, in pfn order: those of the
// bitmaps pass 1 kept or, past the cache, of the bitmaps computed again.
func (s *saver) plan(p *pool, cache [][]byte, ram, held, dumpable []byte, order chan<- *job, stop <-chan struct{}) error {
	maxPFN := s.stats.MaxPFN
	for c, start := 0, uint64(0); start < maxPFN; c, start = c+1, start+s.opts.ChunkPages {
		n := min(s.opts.ChunkPages, maxPFN-start)
		if s.pm.empty(start, n) {
			continue
		}
		bm := dumpable
		if c < len(cache) {
			bm = cache[c]
		} else if err := s.chunk(start, n, ram, held, dumpable, false); err != nil {
			return err
		}
		ok := s.batches(start, n, bm, func(pfn uint64, k int, mapped bool) bool {
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
			s.stats.Unreadable++
			if s.stats.Unreadable <= 10 {
				s.opts.Logf("pfn %#x unreadable, saved as a zero page: %v", pfn, j.bad[i])
			}
			err = w.WriteZeroPage(pfn)
		case po.zero:
			s.stats.Zero++
			err = w.WriteZeroPage(pfn)
		case po.raw:
			s.stats.PagesKept++
			err = w.WritePage(pfn, j.data[i*s.ps:(i+1)*s.ps], 0)
		default:
			s.stats.PagesKept++
			err = w.WritePage(pfn, j.out[po.off:po.off+po.len], po.flags)
		}
		if err != nil {
			return fmt.Errorf("pipeline: write pfn %#x: %w", pfn, err)
		}
	}
	return nil
}
