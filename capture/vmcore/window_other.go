//go:build !linux

package vmcore

import (
	"errors"
	"io"
	"os"
)

// windowReader is never made off Linux: files are read with pread.
type windowReader struct{}

type window struct{}

func newWindowReader(f *os.File, size, winSize int64) (*windowReader, error) {
	return nil, errors.New("vmcore: mmap windows need linux")
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	return 0, errors.New("vmcore: mmap windows need linux")
}

func (w *windowReader) Close() error                            { return nil }
func (w *windowReader) release(*window)                         {}
func (w *windowReader) viewable(int64) int64                    { return 0 }
func (w *windowReader) view(int64, int) ([]byte, *window, bool) { return nil, nil, false }

// holeReader is pread with holes skipped; off Linux files are read plainly.
type holeReader struct {
	io.ReaderAt
	io.Closer
}

func newHoleReader(*os.File, int64) *holeReader { return nil }

func isProcFile(string) bool { return false }
