package collect

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"golang.org/x/sys/unix"
)

// rawSlack is kept back from the dump's pages on a raw device so that, when
// they do not fit, the kdump writer can still close the stream: descriptors
// of the pages written, the header flagged incomplete, the end record.
const rawSlack = 1 << 20

// captureRaw writes the dump onto a device with no filesystem: the kernel
// log first, at the end of the device (see internal/crashdir), then the dump
// from offset 0 as makedumpfile's flattened stream, which `gokdump
// savecore` or `makedumpfile -R` turns back into a file.
func captureRaw(env *Env, cfg *config.Config, t config.Target, dev *blockdev.Device, src *source) Result {
	logf := env.logf
	logf("target %s is %s, written raw", t, dev.Path)
	// O_EXCL on a block device: refused while it is mounted or in use.
	f, err := env.OpenDevice(dev.Path)
	if err != nil {
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || env.ReadOnly(dev) {
			return Failedf("target %s (%s) is read-only: %v", t, dev.Path, err)
		}
		return Failedf("open %s: %v", dev.Path, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil || size <= 0 {
		return Failedf("size of %s: %d bytes (%v)", dev.Path, size, err)
	}
	limit := size
	if src.dmesg == nil {
		// No log this time: an older one at the end of the device must
		// not pass for this crash's.
		if err := crashdir.ClearRawDmesg(f, size); err != nil {
			logf("%v", err)
		}
	} else {
		at, err := crashdir.WriteRawDmesg(f, size, src.dmesg, src.crashTime.Unix())
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			logf("kernel log at the end of %s: %v", dev.Path, err)
		} else {
			limit = at
			logf("kernel log (%d bytes) saved at the end of %s, from offset %#x", len(src.dmesg), dev.Path, at)
		}
	}
	bw := bufio.NewWriterSize(io.NewOffsetWriter(f, 0), 1<<20)
	fw := diskdump.NewFlattenWriter(bw)
	g := &streamGuard{fw: fw, soft: limit - rawSlack, hard: limit - 16}
	var res Result
	switch {
	case src.f == nil:
		res = rawCopy(env, cfg, src.path, g, g.soft, nil)
	default:
		format := cfg.Format
		if format != config.FormatKdump {
			logf("format %q on a raw device: writing kdump, the only format the flattened stream carries", format)
		}
		res = saveDump(env, cfg, src, g, g.soft-4096, config.FormatKdump, func() {
			if err := errors.Join(bw.Flush(), f.Sync()); err != nil {
				logf("sync %s: %v", dev.Path, err)
			}
		})
		res.Format = "kdump-flattened"
	}
	// The end record, then everything out and synced: a stream that ends
	// properly unflattens even when the dump in it is incomplete.
	err = errors.Join(fw.Close(), bw.Flush(), f.Sync())
	if err != nil && res.Status == StatusSaved {
		res.Status, res.Reason = StatusIncomplete, fmt.Sprintf("finish the stream on %s: %v", dev.Path, err)
	}
	res.Path = config.RawPrefix + dev.Path
	res.Bytes = fw.Bytes
	// No directory beside the dump: no kexec-dmesg.log.
	afterTarget(env, cfg, src, &t, &res, place{})
	return res
}

// streamGuard keeps a flattened stream below the kernel log at the end
// of the device. A record that would cross the soft limit is refused
// whole (never cut, which would leave the stream unreadable) with ENOSPC;
// from then on records may use the slack up to the hard limit, so the
// writer can finish the stream as an incomplete dump.
type streamGuard struct {
	fw         *diskdump.FlattenWriter
	soft, hard int64
	full       bool
}

func (g *streamGuard) WriteAt(p []byte, off int64) (int, error) {
	pos := g.fw.Bytes
	if pos == 0 {
		pos = 4096 // the stream header, written before the first record
	}
	lim := g.soft
	if g.full {
		lim = g.hard
	}
	if pos+16+int64(len(p)) > lim {
		g.full = true
		return 0, fmt.Errorf("raw device: stream at %d bytes, limit %d: %w", pos, lim, unix.ENOSPC)
	}
	return g.fw.WriteAt(p, off)
}
