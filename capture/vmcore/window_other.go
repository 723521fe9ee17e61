//go:build !linux

package vmcore

import (
	"errors"
	"io"
	"os"
)

type windowReader struct {
	io.ReaderAt
	io.Closer
}

func newWindowReader(f *os.File, size, winSize int64) (*windowReader, error) {
	return nil, errors.New("vmcore: mmap windows need linux")
}
