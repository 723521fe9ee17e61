package s3dump

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/minio/minio-go/v7"
)

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

// Memory bounds of an Upload.
const (
	// headChunk is the unit part 1 is kept in: the bitmaps of a machine
	// with holes in its memory map stay holes here too.
	headChunk = 64 << 10
	// MaxHead bounds part 1 in memory: the header, bitmaps (2 bits per
	// page frame) and descriptors (24 bytes per dumped page) of a machine
	// far bigger than a capture kernel can dump anyway.
	MaxHead = 512 << 20
	// perPartTry bounds one try to send a part.
	perPartTry = 2 * time.Minute
)

// ErrNotSequential is returned by WriteAt for page data that does not
// follow the data already streamed: the kdump writer writes it in order,
// and an Upload cannot go back to a part it has sent.
var ErrNotSequential = errors.New("s3dump: write behind the part already sent")

// An Upload is a multipart upload that is written like a file, by the
// kdump writer (capture/diskdump). It streams page data as parts 2..N and
// keeps part 1 — everything before the page data, and page data up to
// MinPartSize — in memory until Finish, since the writer rewrites the
// header and writes descriptors there until it closes.
//
// It learns where page data starts from Preallocate: the kdump writer
// reserves the descriptor area, which ends where page data begins, before
// the first page (see diskdump.Preallocator).
//
// Memory: part 1 (max(data offset, 5 MiB), less its holes) and one part
// buffer (PartSize: 5 MiB up to 12.6 million dumped 4 KiB pages, 48 GiB;
// larger so that the most a dump can take fits in S3's 10000 parts).
type Upload struct {
	c        *Client
	bucket   string
	key      string
	id       string
	ctx      context.Context
	deadline time.Time
	note     func(format string, args ...any)

	head    map[int64][]byte // part 1 by headChunk
	headEnd int64            // end of part 1; -1 until Preallocate
	size    int64            // end of the furthest write

	partSize int64
	buf      []byte // data of the part being filled
	bufStart int64  // its offset in the object
	next     int    // its part number
	parts    []minio.CompletePart
	digests  [][sha256.Size]byte // of parts 2.. in order

	err      error
	finished bool
	// Retries counts the tries repeated after a failure.
	Retries int
}

// NewUpload starts a multipart upload of key, retrying until deadline.
// note hears of retries.
func (c *Client) NewUpload(ctx context.Context, bucket, key string, deadline time.Time, note func(string, ...any)) (*Upload, error) {
	if note == nil {
		note = func(string, ...any) {}
	}
	u := &Upload{c: c, bucket: bucket, key: key, ctx: ctx, deadline: deadline, note: note,
		head: map[int64][]byte{}, headEnd: -1, partSize: MinPartSize, next: 2}
	err := u.retry("start the upload of "+key, func(ctx context.Context) error {
		id, err := c.core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		u.id = id
		return c.wrap("start the upload of "+key, err)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (u *Upload) retry(what string, try func(ctx context.Context) error) error {
	return Retry(u.ctx, u.deadline, perPartTry, func(n int, err error, wait time.Duration) {
		u.Retries++
		u.note("%s: try %d: %v; again in %v", what, n, err, wait)
	}, try)
}

// Preallocate is the kdump writer reserving its descriptor area
// [off, off+size): page data starts at its end. Part 1 reaches at least
// there, and the part size is chosen so that the largest dump those
// descriptors can describe (every page stored raw) fits in S3's 10000
// parts.
func (u *Upload) Preallocate(off, size int64) error {
	if u.headEnd >= 0 {
		return nil
	}
	dataOff := off + size
	if dataOff > MaxHead {
		return fmt.Errorf("s3dump: the header, bitmaps and descriptors take %d bytes, more than the %d part 1 may hold in memory", dataOff, MaxHead)
	}
	u.headEnd = max(dataOff, MinPartSize)
	pages := size/24 + 2 // a descriptor is 24 bytes
	worst := pages * u.blockSize()
	if ps := (worst + maxParts - 200) / (maxParts - 100); ps > u.partSize {
		u.partSize = min((ps+(1<<20)-1)&^(1<<20-1), 1<<30)
	}
	return nil
}

// offBlockSize is where disk_dump_header holds block_size (the page
// size), little-endian as the kdump writer writes it.
const offBlockSize = 428

// blockSize is the page size the kdump header written so far gives, or
// 64 KiB (the largest of any architecture) without one.
func (u *Upload) blockSize() int64 {
	if chunk := u.head[0]; chunk != nil && string(chunk[:8]) == "KDUMP   " {
		bs := int64(binary.LittleEndian.Uint32(chunk[offBlockSize:]))
		if bs >= 1<<10 && bs <= 1<<18 && bs&(bs-1) == 0 {
			return bs
		}
	}
	return 64 << 10
}

// PartSize is the size of the parts after the first.
func (u *Upload) PartSize() int64 { return u.partSize }

// WriteAt stores p at off: in part 1, or streamed into the part being
// filled, which is sent once full.
func (u *Upload) WriteAt(p []byte, off int64) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if u.finished {
		return 0, errors.New("s3dump: write after Finish")
	}
	if off < 0 {
		return 0, fmt.Errorf("s3dump: write at negative offset %d", off)
	}
	n := 0
	if u.headEnd < 0 || off < u.headEnd {
		k := len(p)
		if u.headEnd >= 0 {
			k = int(min(int64(k), u.headEnd-off))
		}
		if err := u.writeHead(p[:k], off); err != nil {
			return 0, err
		}
		n, p, off = k, p[k:], off+int64(k)
	}
	if len(p) > 0 {
		if err := u.stream(p, off); err != nil {
			return n, err
		}
		n += len(p)
	}
	return n, nil
}

func (u *Upload) writeHead(p []byte, off int64) error {
	if off+int64(len(p)) > MaxHead {
		return fmt.Errorf("s3dump: write at %#x: part 1 may hold %d bytes in memory", off, MaxHead)
	}
	u.size = max(u.size, off+int64(len(p)))
	for len(p) > 0 {
		c := off / headChunk * headChunk
		chunk := u.head[c]
		if chunk == nil {
			chunk = make([]byte, headChunk)
			u.head[c] = chunk
		}
		k := copy(chunk[off-c:], p)
		p, off = p[k:], off+int64(k)
	}
	return nil
}

// stream appends page data at off, which must follow what came before
// (or fall in the part being filled).
func (u *Upload) stream(p []byte, off int64) error {
	if u.buf == nil {
		u.buf = make([]byte, 0, u.partSize)
		u.bufStart = u.headEnd
	}
	if off < u.bufStart || off > u.bufStart+int64(len(u.buf)) {
		return fmt.Errorf("%w: %d bytes at %#x, the part being filled is at %#x+%d", ErrNotSequential, len(p), off, u.bufStart, len(u.buf))
	}
	for len(p) > 0 {
		i := int(off - u.bufStart)
		if i == cap(u.buf) {
			if err := u.sendBuf(); err != nil {
				return err
			}
			i = 0
		}
		end := min(i+len(p), cap(u.buf))
		u.buf = u.buf[:max(len(u.buf), end)]
		k := copy(u.buf[i:end], p)
		p, off = p[k:], off+int64(k)
		u.size = max(u.size, off)
	}
	return nil
}

// sendBuf sends the part being filled and starts the next.
func (u *Upload) sendBuf() error {
	if len(u.buf) == 0 {
		return nil
	}
	if u.next > maxParts {
		u.err = fmt.Errorf("s3dump: %s: more than %d parts", u.key, maxParts)
		return u.err
	}
	if err := u.sendPart(u.next, u.buf); err != nil {
		u.err = err
		return err
	}
	u.bufStart += int64(len(u.buf))
	u.buf = u.buf[:0]
	u.next++
	return nil
}

func (u *Upload) sendPart(n int, data []byte) error {
	if err := u.put(n, func() io.ReadSeeker { return bytes.NewReader(data) }, int64(len(data))); err != nil {
		return err
	}
	u.digests = append(u.digests, sha256.Sum256(data))
	return nil
}

// put sends part n, size bytes that open() reads, trying again until the
// deadline.
func (u *Upload) put(n int, open func() io.ReadSeeker, size int64) error {
	what := fmt.Sprintf("put %s part %d", u.key, n)
	var part minio.ObjectPart
	err := u.retry(what, func(ctx context.Context) error {
		var err error
		part, err = u.c.core.PutObjectPart(ctx, u.bucket, u.key, u.id, n, open(), size, minio.PutObjectPartOptions{})
		return u.c.wrap(what, err)
	})
	if err != nil {
		return err
	}
	u.parts = append(u.parts, minio.CompletePart{PartNumber: n, ETag: part.ETag})
	return nil
}

// headReader reads part 1, its first n bytes, from the kept chunks
// (zeros in the holes) without gathering them in one buffer: at the end
// of a capture that would be 5 MiB more.
type headReader struct {
	head map[int64][]byte
	n    int64
	off  int64
}

func (r *headReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	c := r.off / headChunk * headChunk
	end := min(c+headChunk, r.n)
	k := int(min(int64(len(p)), end-r.off))
	if chunk := r.head[c]; chunk != nil {
		copy(p[:k], chunk[r.off-c:])
	} else {
		clear(p[:k])
	}
	r.off += int64(k)
	return k, nil
}

func (r *headReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += r.off
	case io.SeekEnd:
		off += r.n
	}
	if off < 0 {
		return 0, errors.New("s3dump: seek before the start of part 1")
	}
	r.off = off
	return off, nil
}

// Result describes a finished upload, for meta.json.
type Result struct {
	Size     int64
	HeadSize int64
	PartSize int64
	Parts    int
	SHA256   string
}

// Finish sends the last data part, then part 1, and completes the upload.
// On an error the upload is left for Abort.
func (u *Upload) Finish() (Result, error) {
	if u.err != nil {
		return Result{}, u.err
	}
	if u.finished {
		return Result{}, errors.New("s3dump: Finish called twice")
	}
	u.finished = true
	if err := u.sendBuf(); err != nil {
		return Result{}, err
	}
	u.buf = nil // before part 1 goes: the capture kernel's memory is tight
	headSize := u.size
	if u.headEnd >= 0 {
		headSize = min(u.headEnd, u.size)
	}
	open := func() io.ReadSeeker { return &headReader{head: u.head, n: headSize} }
	h := sha256.New()
	io.Copy(h, open()) // reading the chunks does not fail
	var headSum [sha256.Size]byte
	copy(headSum[:], h.Sum(nil))
	if err := u.put(1, open, headSize); err != nil {
		u.err = err
		return Result{}, err
	}
	u.head = nil
	slices.SortFunc(u.parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	what := "complete the upload of " + u.key
	err := u.retry(what, func(ctx context.Context) error {
		_, err := u.c.core.CompleteMultipartUpload(ctx, u.bucket, u.key, u.id, u.parts, minio.PutObjectOptions{})
		return u.c.wrap(what, err)
	})
	if err != nil {
		u.err = err
		return Result{}, err
	}
	digests := append([][sha256.Size]byte{headSum}, u.digests...)
	return Result{Size: u.size, HeadSize: headSize, PartSize: u.partSize, Parts: len(digests), SHA256: Composite(digests)}, nil
}

// Abort ends the upload without an object: the server drops the parts
// sent. It tries for up to timeout, even past the upload's deadline:
// orphan parts cost storage until a lifecycle rule removes them.
func (u *Upload) Abort(timeout time.Duration) error {
	if u.err == nil {
		u.err = errors.New("s3dump: upload aborted")
	}
	u.buf, u.head = nil, nil
	what := "abort the upload of " + u.key
	return Retry(context.Background(), time.Now().Add(timeout), timeout/2, nil, func(ctx context.Context) error {
		err := u.c.wrap(what, u.c.core.AbortMultipartUpload(ctx, u.bucket, u.key, u.id))
		if errors.Is(err, ErrNotFound) || (err != nil && errorCode(err) == "NoSuchUpload") {
			return nil // already gone
		}
		return err
	})
}

func errorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Put stores a small object, retrying until deadline.
func (c *Client) Put(ctx context.Context, bucket, key string, data []byte, contentType string, deadline time.Time, note func(string, ...any)) error {
	what := "put " + key
	return Retry(ctx, deadline, perPartTry, func(n int, err error, wait time.Duration) {
		if note != nil {
			note("%s: try %d: %v; again in %v", what, n, err, wait)
		}
	}, func(ctx context.Context) error {
		_, err := c.core.Client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: contentType, DisableMultipart: true})
		return c.wrap(what, err)
	})
}

// Exists reports whether key exists.
func (c *Client) Exists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := c.core.Client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	err = c.wrap("stat "+key, err)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return false, err
}

var _ io.WriterAt = (*Upload)(nil)

// MakeBucket creates a bucket (for tests and first-time set-up).
func (c *Client) MakeBucket(ctx context.Context, bucket string) error {
	return c.wrap("make bucket "+bucket, c.core.Client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}))
}

// Err is the error that stopped the upload, nil while it can go on.
func (u *Upload) Err() error { return u.err }

// HeadBytes is the memory part 1 holds now.
func (u *Upload) HeadBytes() int64 { return int64(len(u.head)) * headChunk }

// Any reports whether any object's key starts with prefix. It is a GET
// (a list) rather than a HEAD, so that a refusal comes with S3's error
// code.
func (c *Client) Any(ctx context.Context, bucket, prefix string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the lister after the first object
	o, ok := <-c.core.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, MaxKeys: 1})
	if !ok {
		return false, nil
	}
	if o.Err != nil {
		return false, c.wrap("list "+bucket+"/"+prefix, o.Err)
	}
	return true, nil
}
