package collect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/sys/unix"
)

// ELF64 e_flags: its offset in the header, and bit 0, which marks a dump
// left incomplete (makedumpfile's convention, read by crash and us).
const (
	elf64FlagsOff  = 48
	elfIncomplete  = 1
	rawCopyChunk   = 1 << 20
	rawCopyPage    = 4096
	maxRawBadPages = 10 // unreadable pages named on the console
)

// rawCopy saves /proc/vmcore byte for byte when it cannot be parsed:
// nothing is filtered and nothing is lost. Pages of zeros are left as
// holes. While the copy runs, and if it cannot finish, its ELF header is
// flagged incomplete; pages that cannot be read are saved as zeros.
// truncate, for a file, sets its final size (trailing holes).
func rawCopy(env *Env, cfg *config.Config, vmcorePath string, out io.WriterAt, free int64, truncate func(int64) error) Result {
	logf := env.logf
	in, err := os.Open(vmcorePath)
	if err != nil {
		return Failedf("%v", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return Failedf("%v", err)
	}
	size := st.Size()
	logf("saving a raw copy of %s: %.1f MiB, %.1f MiB free", vmcorePath, float64(size)/(1<<20), float64(free)/(1<<20))
	res := Result{Format: "raw-copy", Level: 0}
	if cfg.MaxSize > 0 {
		// Holes take no room: only what is written counts.
		out = capWriter(out, int64(min(uint64(cfg.MaxSize), math.MaxInt64)))
	}
	prog := newProgress(env.Console, env.Clock.Now, rawCopyPage, cfg.Progress)
	defer prog.end()

	buf := make([]byte, rawCopyChunk)
	zero := make([]byte, rawCopyPage)
	var flags []byte // the header's e_flags as read, when it is ELF64
	bad := 0
	var written int64
	for off := int64(0); off < size; {
		n := int(min(int64(len(buf)), size-off))
		b := buf[:n]
		if m, err := in.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && m == n) {
			// Page by page, so one bad page costs one page.
			for p := 0; p < n; p += rawCopyPage {
				q := min(p+rawCopyPage, n)
				if _, err := in.ReadAt(b[p:q], off+int64(p)); err != nil && !errors.Is(err, io.EOF) {
					clear(b[p:q])
					if bad++; bad <= maxRawBadPages {
						logf("%s at %#x unreadable, saved as zeros: %v", vmcorePath, off+int64(p), err)
					}
				}
			}
		}
		if off == 0 && n >= 64 && bytes.HasPrefix(b, []byte("\x7fELF\x02")) {
			flags = bytes.Clone(b[elf64FlagsOff : elf64FlagsOff+4])
			setIncomplete(b[elf64FlagsOff:], b[5])
		}
		// A page of zeros is a hole, except the file's last page, so the
		// size comes out right without truncate.
		hole := func(p int) bool {
			q := min(p+rawCopyPage, n)
			return off+int64(q) < size && bytes.Equal(b[p:q], zero[:q-p])
		}
		for p := 0; p < n; {
			for p < n && hole(p) {
				p += rawCopyPage
			}
			q := p
			for q < n && !hole(q) {
				q += rawCopyPage
			}
			q = min(q, n)
			if q <= p {
				break
			}
			if _, err := out.WriteAt(b[p:q], off+int64(p)); err != nil {
				res.Status, res.Bytes = StatusIncomplete, written
				res.Reason = fmt.Sprintf("raw copy cut at %#x of %#x: %v", off+int64(p), size, err)
				if errors.Is(err, unix.ENOSPC) {
					res.Reason = "the target is full: " + res.Reason
				} else if errors.Is(err, ErrMaxSize) {
					res.Reason = fmt.Sprintf("the copy reached max_size (%s): %s", cfg.MaxSize, res.Reason)
				}
				return res
			}
			written = off + int64(q)
			p = q
		}
		off += int64(n)
		prog.update(uint64(off/rawCopyPage), uint64((size+rawCopyPage-1)/rawCopyPage))
	}
	if truncate != nil {
		if err := truncate(size); err != nil {
			res.Status, res.Reason = StatusIncomplete, fmt.Sprintf("set the size of the copy: %v", err)
			return res
		}
	}
	if flags != nil {
		// Whole: put back the header's own flags.
		if _, err := out.WriteAt(flags, elf64FlagsOff); err != nil {
			res.Status, res.Reason = StatusIncomplete, fmt.Sprintf("clear the incomplete flag: %v", err)
			return res
		}
	}
	if bad > 0 {
		logf("%d pages of %s could not be read and are saved as zeros", bad, vmcorePath)
	}
	res.Status, res.Bytes = StatusSaved, size
	return res
}

// setIncomplete sets the incomplete bit in 4 bytes of e_flags, in the
// byte order ei_data names.
func setIncomplete(b []byte, eiData byte) {
	if eiData == 2 {
		binary.BigEndian.PutUint32(b, binary.BigEndian.Uint32(b)|elfIncomplete)
		return
	}
	binary.LittleEndian.PutUint32(b, binary.LittleEndian.Uint32(b)|elfIncomplete)
}
