package dump

import (
	"fmt"
	"sync"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/kdump"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// batchPages is how many consecutive pages one job carries through the
// workers: big enough to amortise channel operations, small enough that
// the jobs in flight stay a few MiB.
const batchPages = 64

// job is a batch of consecutive dumpable pages on its way from the reader
// through a worker to the writer.
type job struct {
	pfn  uint64
	n    int
	data []byte    // n pages as read
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

// runKdump writes src to out in the kdump-compressed format.
func (s *saver) runKdump(w *kdump.Writer) error {
	ram := make([]byte, s.opts.ChunkPages/8)
	held := make([]byte, len(ram))
	dumpable := make([]byte, len(ram))
	maxPFN := s.stats.MaxPFN

	// Pass 1: bitmaps. Zero pages stay in the second bitmap (they share one
	// descriptor), so the page list is known before any page is read.
	var total uint64
	for start := uint64(0); start < maxPFN; start += s.opts.ChunkPages {
		n := min(s.opts.ChunkPages, maxPFN-start)
		if err := s.chunk(start, n, ram, held, dumpable, true); err != nil {
			return err
		}
		nb := (n + 7) / 8
		if err := w.SetBitmaps(start, ram[:nb], dumpable[:nb]); err != nil {
			return err
		}
		total += popcount(dumpable[:nb])
	}
	if err := w.StartPages(); err != nil {
		return err
	}

	// Pass 2: pages. A reader fills jobs, workers compress them, and this
	// goroutine writes them in order.
	nw := s.opts.Workers
	free := make(chan *job, 2*nw+2)
	for i := 0; i < cap(free); i++ {
		free <- &job{
			data: make([]byte, batchPages*s.ps),
			out:  make([]byte, 0, batchPages*(s.ps+s.ps/8+64)),
			page: make([]pageOut, batchPages),
			bad:  make([]error, batchPages),
			done: make(chan struct{}, 1),
		}
	}
	work := make(chan *job, cap(free))
	order := make(chan *job, cap(free))
	stop := make(chan struct{})
	var readErr error

	go func() { // reader
		defer close(work)
		defer close(order)
		readErr = s.produce(ram, held, dumpable, free, work, order, stop)
	}()
	var wg sync.WaitGroup
	var workerErr error
	var once sync.Once
	for i := 0; i < nw; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, err := codec.NewCompressor(s.opts.Codec, s.ps)
			if err != nil {
				once.Do(func() { workerErr = err })
				cp = nil
			}
			for j := range work {
				s.compress(cp, j)
				j.done <- struct{}{}
			}
		}()
	}

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
		free <- j
	}
	wg.Wait()
	if werr != nil {
		return werr
	}
	if workerErr != nil {
		return workerErr
	}
	return readErr
}

// chunk computes the bitmaps of pfns [start, start+n): ram (memory),
// held (the source holds it) and dumpable (held and not excluded by the
// filter). With count set, it adds the chunk to the statistics.
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

// produce reads dumpable pages into jobs, in pfn order.
func (s *saver) produce(ram, held, dumpable []byte, free chan *job, work, order chan<- *job, stop <-chan struct{}) error {
	maxPFN := s.stats.MaxPFN
	var j *job
	flush := func() bool {
		if j == nil || j.n == 0 {
			return true
		}
		readPages(s.src, j.pfn, j.n, j.data, s.ps, func(i int, err error) { j.bad[i] = err })
		select {
		case order <- j:
		case <-stop:
			return false
		}
		work <- j
		j = nil
		return true
	}
	for start := uint64(0); start < maxPFN; start += s.opts.ChunkPages {
		n := min(s.opts.ChunkPages, maxPFN-start)
		// Recompute rather than keep: the bitmaps of a large machine do
		// not fit the capture kernel's memory, and filtering is cheap.
		if err := s.chunk(start, n, ram, held, dumpable, false); err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if dumpable[i/8] == 0 && i&7 == 0 {
				i += 7
				continue
			}
			if dumpable[i/8]&(1<<(i&7)) == 0 {
				continue
			}
			pfn := start + i
			if j != nil && (j.n == batchPages || j.pfn+uint64(j.n) != pfn) {
				if !flush() {
					return nil
				}
			}
			if j == nil {
				select {
				case j = <-free:
				case <-stop:
					return nil
				}
				j.pfn, j.n = pfn, 0
				clear(j.bad)
			}
			j.n++
		}
	}
	flush()
	return nil
}

// compress fills j.out and j.page. cp is nil when no compressor could be
// made; pages are then stored raw.
func (s *saver) compress(cp *codec.Compressor, j *job) {
	j.out = j.out[:0]
	excludeZero := s.opts.Level&LevelZero != 0
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
func (s *saver) write(w *kdump.Writer, j *job) error {
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
			return fmt.Errorf("dump: write pfn %#x: %w", pfn, err)
		}
	}
	return nil
}
