package s3dump

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// Get reads a whole object of at most limit bytes.
func (c *Client) Get(ctx context.Context, bucket, key string, limit int64) ([]byte, error) {
	obj, _, _, err := c.core.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, c.wrap("get "+key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if err != nil {
		return nil, c.wrap("get "+key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("s3dump: %s is larger than %d bytes", key, limit)
	}
	return b, nil
}

// PendingUploads counts the multipart uploads under prefix that were
// neither completed nor aborted.
func (c *Client) PendingUploads(ctx context.Context, bucket, prefix string) (int, error) {
	r, err := c.core.ListMultipartUploads(ctx, bucket, prefix, "", "", "", 1000)
	if err != nil {
		return 0, c.wrap("list uploads", err)
	}
	return len(r.Uploads), nil
}

// A Crash is one meta.json found by List.
type Crash struct {
	Key  string // prefix/host/stamp
	Meta Meta
	Err  error // meta.json could not be read or parsed
}

// maxList bounds the crashes List reads.
const maxList = 100000

// List finds the meta.json objects under prefix and reads them, newest
// crash first. It reads nothing else.
func (c *Client) List(ctx context.Context, bucket, prefix string) ([]Crash, error) {
	lp := strings.Trim(prefix, "/")
	if lp != "" {
		lp += "/"
	}
	var keys []string
	for o := range c.core.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: lp, Recursive: true}) {
		if o.Err != nil {
			return nil, c.wrap("list "+bucket+"/"+lp, o.Err)
		}
		if path.Base(o.Key) == MetaObject && o.Size <= maxMeta {
			keys = append(keys, o.Key)
		}
		if len(keys) > maxList {
			return nil, fmt.Errorf("s3dump: more than %d crashes under %s/%s", maxList, bucket, lp)
		}
	}
	out := make([]Crash, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i].Key = path.Dir(k)
			b, err := c.Get(ctx, bucket, k, maxMeta)
			if err == nil {
				out[i].Meta, err = ParseMeta(b)
			}
			out[i].Err = err
		}()
	}
	wg.Wait()
	slices.SortStableFunc(out, func(a, b Crash) int {
		if c := b.Meta.CrashTime.Compare(a.Meta.CrashTime); c != 0 {
			return c
		}
		return strings.Compare(b.Key, a.Key)
	})
	return out, nil
}

// ErrChecksum is returned by Fetch for a vmcore whose bytes do not match
// meta.json's checksum.
var ErrChecksum = errors.New("s3dump: checksum mismatch")

// Fetch downloads the crash at key (prefix/host/stamp) into dir, created
// 0700 (it must not exist, or be empty), files 0600: meta.json,
// vmcore-dmesg.txt when there is one, and vmcore, whose composite SHA-256
// is checked against meta.json's as it arrives. A vmcore that does not
// match is renamed vmcore.bad and Fetch fails with ErrChecksum.
func (c *Client) Fetch(ctx context.Context, bucket, key, dir string, progress func(done, total int64)) (Meta, error) {
	mb, err := c.Get(ctx, bucket, key+"/"+MetaObject, maxMeta)
	if err != nil {
		return Meta{}, err
	}
	m, err := ParseMeta(mb)
	if err != nil {
		return Meta{}, fmt.Errorf("%s/%s: %w", key, MetaObject, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return m, err
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return m, err
	} else if len(ents) > 0 {
		return m, fmt.Errorf("s3dump: %s is not empty", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return m, err
	}
	if err := writeFile(filepath.Join(dir, MetaObject), mb); err != nil {
		return m, err
	}
	if db, err := c.Get(ctx, bucket, key+"/"+DmesgObject, 64<<20); err == nil {
		if err := writeFile(filepath.Join(dir, DmesgObject), db); err != nil {
			return m, err
		}
	} else if !errors.Is(err, ErrNotFound) {
		return m, err
	}
	if m.SHA256 == "" {
		return m, fmt.Errorf("s3dump: %s: meta.json has no checksum: the vmcore was not uploaded whole (status %s: %s)", key, m.Status, m.Reason)
	}
	if _, err := m.checkLayout(); err != nil {
		return m, err
	}
	obj, _, _, err := c.core.GetObject(ctx, bucket, key+"/"+VMCoreObject, minio.GetObjectOptions{})
	if err != nil {
		return m, c.wrap("get "+key+"/"+VMCoreObject, err)
	}
	defer obj.Close()
	name := filepath.Join(dir, VMCoreObject)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return m, err
	}
	sum := newPartSum(m)
	w := io.MultiWriter(f, sum)
	var done int64
	buf := make([]byte, 1<<20)
	for {
		n, rerr := obj.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				f.Close()
				return m, err
			}
			done += int64(n)
			if done > m.Size {
				break
			}
			if progress != nil {
				progress(done, m.Size)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return m, c.wrap("get "+key+"/"+VMCoreObject, rerr)
		}
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return m, err
	}
	got := sum.final()
	if done != m.Size || got != m.SHA256 {
		os.Rename(name, name+".bad")
		return m, fmt.Errorf("%w: %s/%s: %d bytes with checksum %s, meta.json says %d bytes, %s", ErrChecksum, key, VMCoreObject, done, got, m.Size, m.SHA256)
	}
	return m, nil
}

func writeFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Sync(), f.Close())
}

// partSum hashes a stream part by part at Meta's boundaries.
type partSum struct {
	m       Meta
	cur     hash.Hash
	left    int64 // bytes left in the current part
	digests [][sha256.Size]byte
}

func newPartSum(m Meta) *partSum {
	return &partSum{m: m, cur: sha256.New(), left: m.HeadSize}
}

func (s *partSum) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.left == 0 {
			s.close()
			s.cur, s.left = sha256.New(), s.m.PartSize
			if s.left <= 0 {
				s.left = math.MaxInt64 // bytes past a one-part object: the sum will not match
			}
		}
		k := int(min(int64(len(p)), s.left))
		s.cur.Write(p[:k])
		p, s.left = p[k:], s.left-int64(k)
	}
	return n, nil
}

func (s *partSum) close() {
	var d [sha256.Size]byte
	copy(d[:], s.cur.Sum(nil))
	s.digests = append(s.digests, d)
}

func (s *partSum) final() string {
	s.close()
	return Composite(s.digests)
}

// A ReaderAt reads an object through ranged GETs, in blocks it keeps a
// few of: what gokdump info and dmesg need of a dump (its header, notes,
// a few page tables and the log's pages) is a small part of it.
type ReaderAt struct {
	c      *Client
	bucket string
	key    string
	size   int64
	ctx    context.Context

	mu    sync.Mutex
	cache map[int64][]byte
	order []int64 // blocks, least recently used first
	// Read counts the bytes fetched from the server; Requests the GETs.
	Read     atomic.Int64
	Requests atomic.Int64
}

// Block size and count of a ReaderAt's cache: 64 KiB blocks, 4 MiB in all.
const (
	raBlock  = 64 << 10
	raBlocks = 64
)

// OpenReaderAt stats key and returns a reader of it.
func (c *Client) OpenReaderAt(ctx context.Context, bucket, key string) (*ReaderAt, error) {
	st, err := c.core.Client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, c.wrap("stat "+key, err)
	}
	return &ReaderAt{c: c, bucket: bucket, key: key, size: st.Size, ctx: ctx, cache: map[int64][]byte{}}, nil
}

// Size is the object's size.
func (r *ReaderAt) Size() int64 { return r.size }

// ReadAt reads len(p) bytes at off.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("s3dump: read at negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		if off >= r.size {
			return n, io.EOF
		}
		b, err := r.block(off / raBlock)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], b[off%raBlock:])
		if k == 0 {
			return n, io.EOF
		}
		n += k
		off += int64(k)
	}
	return n, nil
}

func (r *ReaderAt) block(i int64) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.cache[i]; ok {
		if j := slices.Index(r.order, i); j >= 0 {
			r.order = append(slices.Delete(r.order, j, j+1), i)
		}
		return b, nil
	}
	start := i * raBlock
	end := min(start+raBlock, r.size) - 1
	var b []byte
	err := Retry(r.ctx, time.Now().Add(time.Minute), 30*time.Second, nil, func(ctx context.Context) error {
		opts := minio.GetObjectOptions{}
		if err := opts.SetRange(start, end); err != nil {
			return err
		}
		obj, _, _, err := r.c.core.GetObject(ctx, r.bucket, r.key, opts)
		if err != nil {
			return r.c.wrap(fmt.Sprintf("get %s bytes %d-%d", r.key, start, end), err)
		}
		defer obj.Close()
		r.Requests.Add(1)
		b, err = io.ReadAll(io.LimitReader(obj, end-start+1))
		r.Read.Add(int64(len(b)))
		return r.c.wrap(fmt.Sprintf("get %s bytes %d-%d", r.key, start, end), err)
	})
	if err != nil {
		return nil, err
	}
	if len(r.order) >= raBlocks {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	r.cache[i], r.order = b, append(r.order, i)
	return b, nil
}
