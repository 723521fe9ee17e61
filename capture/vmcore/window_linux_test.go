package vmcore

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestHoleReader compares reads through holeReader with plain pread on a
// sparse file: data, holes, reads across both and past the end.
func TestHoleReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sparse")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	const size = 8<<20 + 100
	rng := rand.New(rand.NewSource(3))
	data := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	for _, d := range []struct {
		off int64
		n   int
	}{{0, 5000}, {1<<20 + 123, 1 << 20}, {3 << 20, 4096}, {size - 100, 100}} {
		if _, err := fh.WriteAt(data(d.n), d.off); err != nil {
			t.Fatal(err)
		}
	}
	h := newHoleReader(fh, size)
	if h == nil {
		t.Skip("the filesystem does not answer SEEK_DATA")
	}
	if e, err := h.extentAt(5 << 19); err != nil || !e.hole {
		// Filesystems may allocate more than was written, but not half
		// a MiB past a write.
		t.Errorf("extent at 2.5 MiB: %+v, %v; want a hole", e, err)
	}
	check := func(off int64, n int) {
		a, b := make([]byte, n), make([]byte, n)
		for i := range a {
			a[i] = 0xaa // a hole must be written as zeros, not skipped
		}
		na, erra := h.ReadAt(a, off)
		nb, errb := fh.ReadAt(b, off)
		if na != nb || (erra == nil) != (errb == nil) || !bytes.Equal(a[:na], b[:nb]) {
			t.Fatalf("ReadAt(%d, %#x): holeReader %d, %v; pread %d, %v", n, off, na, erra, nb, errb)
		}
		if nb < n && erra != io.EOF {
			t.Fatalf("ReadAt(%d, %#x) short without io.EOF: %v", n, off, erra)
		}
	}
	check(0, size)
	check(size-50, 100)
	check(size, 1)
	for i := 0; i < 300; i++ {
		n := 1 + rng.Intn(64<<10)
		if i%20 == 0 {
			n = 1 + rng.Intn(3<<20)
		}
		check(rng.Int63n(size), n)
	}
	// Concurrent readers share the extent cache.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed))
			a, b := make([]byte, 70000), make([]byte, 70000)
			for i := 0; i < 200; i++ {
				off, n := r.Int63n(size), 1+r.Intn(len(a))
				na, _ := h.ReadAt(a[:n], off)
				nb, _ := fh.ReadAt(b[:n], off)
				if na != nb || !bytes.Equal(a[:na], b[:nb]) {
					t.Errorf("concurrent ReadAt(%d, %#x) differs", n, off)
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
}

// TestWindowViews: views and reads from many goroutines through small
// windows return the file's bytes; a view stays valid while other reads
// map and unmap windows; idle windows are unmapped down to keepWindows.
func TestWindowViews(t *testing.T) {
	const size = 64*4096 + 1000
	b := make([]byte, size)
	rand.New(rand.NewSource(4)).Read(b)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWindowReader(fh, size, 3*4096)
	if err != nil {
		t.Skipf("cannot map: %v", err)
	}
	defer w.Close()

	held, win, ok := w.view(4096+10, 100)
	if !ok || !bytes.Equal(held, b[4096+10:4096+110]) {
		t.Fatal("view of the first window")
	}
	if _, _, ok := w.view(3*4096-10, 20); ok {
		t.Error("a view across a window boundary was lent")
	}
	if got := w.viewable(3*4096 - 10); got != 10 {
		t.Errorf("viewable at 10 bytes before a window's end: %d", got)
	}
	if got := w.viewable(size - 5); got != 5 {
		t.Errorf("viewable 5 bytes before the end: %d", got)
	}
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed))
			p := make([]byte, 5*4096)
			for i := 0; i < 400; i++ {
				off := r.Int63n(size)
				if i%2 == 0 {
					n := int(min(w.viewable(off), int64(1+r.Intn(3*4096))))
					v, vw, ok := w.view(off, n)
					if !ok {
						t.Errorf("view(%#x, %d) refused", off, n)
						return
					}
					if !bytes.Equal(v, b[off:off+int64(n)]) {
						t.Errorf("view(%#x, %d): wrong bytes", off, n)
					}
					w.release(vw)
					continue
				}
				n := 1 + r.Intn(len(p))
				got, err := w.ReadAt(p[:n], off)
				want := min(n, size-int(off))
				if got != want || (want < n) != (err == io.EOF) || !bytes.Equal(p[:got], b[off:off+int64(got)]) {
					t.Errorf("ReadAt(%d, %#x) = %d, %v; want %d", n, off, got, err, want)
				}
			}
		}(int64(g))
	}
	wg.Wait()
	if !bytes.Equal(held, b[4096+10:4096+110]) {
		t.Error("a held view changed while other windows came and went")
	}
	w.release(win)
	w.mu.Lock()
	n := len(w.wins)
	for _, x := range w.wins {
		if x.refs != 0 {
			t.Errorf("window at %#x still has %d references", x.off, x.refs)
		}
	}
	w.mu.Unlock()
	if n > keepWindows {
		t.Errorf("%d windows mapped after every view was released, want ≤ %d", n, keepWindows)
	}
}

func TestWindowReaderSmallWindows(t *testing.T) {
	// A window of a few pages forces remapping on almost every read.
	data := make([]byte, 0x25000+123)
	rand.New(rand.NewSource(1)).Read(data)
	path := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWindowReader(fh, int64(len(data)), 3*4096)
	if err != nil {
		t.Skipf("cannot map: %v", err)
	}
	defer w.Close()
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 500; i++ {
		off := rng.Int63n(int64(len(data)))
		n := 1 + rng.Intn(5*4096)
		p := make([]byte, n)
		got, err := w.ReadAt(p, off)
		want := min(n, len(data)-int(off))
		if got != want || (want < n) != (err == io.EOF) || (want == n && err != nil) {
			t.Fatalf("ReadAt(%d, %#x) = %d, %v; want %d", n, off, got, err, want)
		}
		if !bytes.Equal(p[:got], data[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d, %#x): wrong bytes", n, off)
		}
	}
	if _, err := w.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	if n, err := w.ReadAt(make([]byte, 1), int64(len(data))); n != 0 || err != io.EOF {
		t.Errorf("read at EOF: %d, %v", n, err)
	}
}
