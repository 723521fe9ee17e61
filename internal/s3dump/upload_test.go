package s3dump_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/s3dump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// memFile is an io.WriterAt in memory: the file a disk target would get.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// tee writes to the upload and to the memory file alike, and passes the
// reservation on to the upload, as the pipeline does.
type tee struct {
	u *s3dump.Upload
	m *memFile
}

func (t tee) WriteAt(p []byte, off int64) (int, error) {
	t.m.WriteAt(p, off)
	return t.u.WriteAt(p, off)
}

func (t tee) Preallocate(off, size int64) error { return t.u.Preallocate(off, size) }

// writeKdump writes a kdump file of pages random pages (incompressible,
// stored raw) and a zero page every 7th pfn through out.
func writeKdump(t *testing.T, w interface {
	io.WriterAt
	diskdump.Preallocator
}, pages int, seed uint64) {
	t.Helper()
	hdr := diskdump.Header{Sysname: "Linux", Nodename: "node1", Release: "6.12.0-test", Version: "#1", Machine: "x86_64",
		Domainname: "(none)", BlockSize: 4096, MaxMapnr: uint64(pages + 64), NrCPUs: 1, DumpLevel: 1, Timestamp: time.Unix(1700000000, 0)}
	dw, err := diskdump.NewWriter(w, hdr)
	if err != nil {
		t.Fatal(err)
	}
	bm := make([]byte, (pages+7)/8)
	for i := 0; i < pages; i++ {
		bm[i/8] |= 1 << (i % 8)
	}
	if err := dw.SetBitmaps(0, bm, bm); err != nil {
		t.Fatal(err)
	}
	if err := dw.StartPages(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, seed))
	page := make([]byte, 4096)
	for pfn := 0; pfn < pages; pfn++ {
		if pfn%7 == 0 {
			err = dw.WriteZeroPage(uint64(pfn))
		} else {
			for i := range page {
				page[i] = byte(r.Uint32())
			}
			err = dw.WritePage(uint64(pfn), page, 0)
		}
		if err != nil {
			t.Fatalf("pfn %d: %v", pfn, err)
		}
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUploadKdump: a kdump file written through an Upload arrives whole,
// byte for byte the file a disk would hold, with part 1 sent last; the
// checksum in its Result is S3's composite one; Fetch and the ReaderAt
// read it back.
func TestUploadKdump(t *testing.T) {
	for _, pages := range []int{100, 3000} { // one part; part 1 + two data parts
		t.Run(itoa(pages)+"pages", func(t *testing.T) {
			srv := harness.VersityFor(t, "dumps")
			c, err := srv.Client()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			key := "fleet/node1/2026-12-05-01:02:03/vmcore"
			u, err := c.NewUpload(ctx, "dumps", key, time.Now().Add(time.Minute), t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			mem := &memFile{}
			writeKdump(t, tee{u, mem}, pages, uint64(pages))
			res, err := u.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if res.Size != int64(len(mem.b)) {
				t.Fatalf("uploaded %d bytes, the file is %d", res.Size, len(mem.b))
			}
			got, err := c.Get(ctx, "dumps", key, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, mem.b) {
				t.Fatalf("the object (%d bytes) differs from the file (%d bytes)", len(got), len(mem.b))
			}
			wantParts := 1
			if len(mem.b) > s3dump.MinPartSize {
				wantParts = 1 + int((int64(len(mem.b))-s3dump.MinPartSize+res.PartSize-1)/res.PartSize)
			}
			if res.Parts != wantParts || (wantParts > 1 && res.HeadSize != s3dump.MinPartSize) {
				t.Errorf("parts %d (part 1: %d bytes), want %d", res.Parts, res.HeadSize, wantParts)
			}
			// The composite checksum, from the file and the boundaries.
			var ds [][sha256.Size]byte
			ds = append(ds, sha256.Sum256(mem.b[:res.HeadSize]))
			for off := res.HeadSize; off < int64(len(mem.b)); off += res.PartSize {
				ds = append(ds, sha256.Sum256(mem.b[off:min(off+res.PartSize, int64(len(mem.b)))]))
			}
			if s3dump.Composite(ds) != res.SHA256 {
				t.Errorf("checksum %s, want %s", res.SHA256, s3dump.Composite(ds))
			}
			if n, err := c.PendingUploads(ctx, "dumps", "fleet/"); err != nil || n != 0 {
				t.Errorf("%d uploads left pending (%v)", n, err)
			}
			// The object is a kdump file our reader opens, through ranged GETs.
			ra, err := c.OpenReaderAt(ctx, "dumps", key)
			if err != nil {
				t.Fatal(err)
			}
			f, err := diskdump.Open(ra, ra.Size())
			if err != nil {
				t.Fatal(err)
			}
			pg := make([]byte, 4096)
			if _, err := f.ReadPhys(pg, uint64(pages-1)*4096); err != nil {
				t.Fatal(err)
			}
			off := int64(len(mem.b)) // the last page is the file's last 4096 bytes
			if !bytes.Equal(pg, mem.b[off-4096:off]) && (pages-1)%7 != 0 {
				t.Errorf("the last page read through the ReaderAt differs")
			}
			t.Logf("%d-byte object: %d parts, part 1 %d bytes, parts of %d; ReaderAt read %d bytes in %d GETs",
				res.Size, res.Parts, res.HeadSize, res.PartSize, ra.Read.Load(), ra.Requests.Load())
			if pages == 3000 && ra.Read.Load() > 1<<20 {
				t.Errorf("ReaderAt read %d bytes to open the dump and read one page", ra.Read.Load())
			}

			// Fetch checks the checksum.
			m := s3dump.Meta{Version: 1, Host: "node1", Size: res.Size, SHA256: res.SHA256, HeadSize: res.HeadSize,
				PartSize: res.PartSize, Parts: res.Parts, Complete: true, Status: "saved"}
			crash := "fleet/node1/2026-12-05-01:02:03"
			if err := c.Put(ctx, "dumps", crash+"/meta.json", m.Marshal(), "application/json", time.Now().Add(time.Minute), nil); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "got")
			if _, err := c.Fetch(ctx, "dumps", crash, dir, nil); err != nil {
				t.Fatal(err)
			}
			fb, err := os.ReadFile(filepath.Join(dir, "vmcore"))
			if err != nil || !bytes.Equal(fb, mem.b) {
				t.Errorf("fetched vmcore differs (%v)", err)
			}
			for _, p := range []string{dir, filepath.Join(dir, "vmcore"), filepath.Join(dir, "meta.json")} {
				if st, err := os.Stat(p); err != nil || (st.IsDir() && st.Mode().Perm() != 0o700) || (!st.IsDir() && st.Mode().Perm() != 0o600) {
					t.Errorf("%s: %v %v", p, st.Mode(), err)
				}
			}
			// A wrong checksum is caught.
			m.SHA256 = strings.Repeat("0", 64) + "-" + itoa(res.Parts)
			if err := c.Put(ctx, "dumps", crash+"/meta.json", m.Marshal(), "application/json", time.Now().Add(time.Minute), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Fetch(ctx, "dumps", crash, filepath.Join(t.TempDir(), "bad"), nil); !errors.Is(err, s3dump.ErrChecksum) {
				t.Errorf("Fetch of a vmcore with a wrong checksum: %v", err)
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestUploadAbort: an upload that cannot finish is aborted, and the server
// keeps none of its parts.
func TestUploadAbort(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := c.NewUpload(ctx, "dumps", "a/vmcore", time.Now().Add(time.Minute), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Preallocate(8192, 4096); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xa5}, 11<<20) // part 1 in memory, part 2 sent
	if _, err := u.WriteAt(data, 8192+4096); err != nil {
		t.Fatal(err)
	}
	if n, err := c.PendingUploads(ctx, "dumps", "a/"); err != nil || n != 1 {
		t.Fatalf("%d uploads pending before Abort (%v)", n, err)
	}
	if err := u.Abort(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := c.PendingUploads(ctx, "dumps", "a/"); err != nil || n != 0 {
		t.Errorf("%d uploads pending after Abort (%v)", n, err)
	}
	if ok, err := c.Exists(ctx, "dumps", "a/vmcore"); ok || err != nil {
		t.Errorf("the aborted object exists: %v %v", ok, err)
	}
	if _, err := u.WriteAt([]byte{1}, 0); err == nil {
		t.Error("WriteAt after Abort succeeded")
	}
	// Data that does not follow what was streamed is refused.
	u2, err := c.NewUpload(ctx, "dumps", "b/vmcore", time.Now().Add(time.Minute), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Abort(10 * time.Second)
	u2.Preallocate(4096, 4096)
	if _, err := u2.WriteAt([]byte{1}, s3dump.MinPartSize+100); !errors.Is(err, s3dump.ErrNotSequential) {
		t.Errorf("a write past the stream: %v", err)
	}
}

// TestWrongSecret: refused credentials fail at once, naming the endpoint
// and S3's error code, and are not retried.
func TestWrongSecret(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	c, err := s3dump.New(s3dump.Options{Endpoint: srv.Endpoint(), Creds: srv.Credentials(true), CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Put(context.Background(), "dumps", "x", []byte("x"), "text/plain", time.Now().Add(time.Minute), func(f string, a ...any) {
		t.Errorf("retried: "+f, a...)
	})
	if !errors.Is(err, s3dump.ErrAuth) || !s3dump.Permanent(err) {
		t.Fatalf("wrong secret: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, srv.Addr()) || !strings.Contains(msg, "SignatureDoesNotMatch") {
		t.Errorf("the error does not name the endpoint and the code: %s", msg)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestUntrustedCert: a server whose certificate no trusted CA signed is
// refused, for good.
func TestUntrustedCert(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	other := harness.VersityFor(t, "")
	c, err := s3dump.New(s3dump.Options{Endpoint: srv.Endpoint(), Creds: srv.Credentials(false), CAPEM: other.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Put(context.Background(), "dumps", "x", []byte("x"), "text/plain", time.Now().Add(time.Minute), nil)
	if err == nil || !s3dump.Permanent(err) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v (permanent %v)", err, s3dump.Permanent(err))
	}
}

// TestEndpointDown: a server that is not there is retried with backoff
// until the deadline, then fails.
func TestEndpointDown(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	srv.Stop()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tries := 0
	err = c.Put(context.Background(), "dumps", "x", []byte("x"), "text/plain", time.Now().Add(5*time.Second), func(string, ...any) { tries++ })
	d := time.Since(start)
	if err == nil || s3dump.Permanent(err) || tries < 1 {
		t.Errorf("endpoint down: %v, permanent %v, %d retries", err, s3dump.Permanent(err), tries)
	}
	if d > 8*time.Second {
		t.Errorf("gave up after %v, past the 5 s deadline", d)
	}
}

// TestRetryPart: a part whose server went away comes back and is sent
// again; the object is whole.
func TestRetryPart(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := c.NewUpload(ctx, "dumps", "r/vmcore", time.Now().Add(2*time.Minute), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	u.Preallocate(4096, 4096)
	head := bytes.Repeat([]byte{1}, 8192)
	u.WriteAt(head, 0)
	first := bytes.Repeat([]byte{2}, s3dump.MinPartSize-8192)
	u.WriteAt(first, 8192)
	srv.Stop()
	go func() {
		time.Sleep(2 * time.Second)
		if err := srv.Restart(); err != nil {
			t.Error(err)
		}
	}()
	data := bytes.Repeat([]byte{3}, s3dump.MinPartSize+100) // fills part 2: sent while the server is down
	if _, err := u.WriteAt(data, s3dump.MinPartSize); err != nil {
		t.Fatal(err)
	}
	res, err := u.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if u.Retries == 0 {
		t.Error("no try was repeated")
	}
	got, err := c.Get(ctx, "dumps", "r/vmcore", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(head, first...), data...)
	if !bytes.Equal(got, want) || res.Size != int64(len(want)) || res.Parts != 3 {
		t.Errorf("object of %d bytes in %d parts, want %d bytes in 3", len(got), res.Parts, len(want))
	}
}

// TestPartSize: parts stay 5 MiB until the most the dump's pages can take
// (every page raw, at the header's page size) no longer fits in 9900 of
// them.
func TestPartSize(t *testing.T) {
	for _, tt := range []struct {
		bs    uint32 // 0: no kdump header
		pages int64
		want  int64
	}{
		{4096, 1 << 20, s3dump.MinPartSize},
		{4096, 13 << 20, 6 << 20},
		{4096, 20 << 20, 9 << 20},
		{65536, 1 << 20, 7 << 20},
		{0, 1 << 20, 7 << 20},
	} {
		u := s3dump.NewTestUpload()
		if tt.bs != 0 {
			hdr := make([]byte, 432)
			copy(hdr, "KDUMP   ")
			binary.LittleEndian.PutUint32(hdr[428:], tt.bs)
			u.WriteAt(hdr, 0)
		}
		if err := u.Preallocate(1<<20, tt.pages*24); err != nil {
			t.Fatal(err)
		}
		if got := u.PartSize(); got != tt.want {
			t.Errorf("block size %d, %d pages: parts of %d MiB, want %d MiB", tt.bs, tt.pages, got>>20, tt.want>>20)
		}
	}
	// Descriptors past what part 1 may hold in memory: refused before
	// the first page, so the capture goes on to the fallback target.
	if err := s3dump.NewTestUpload().Preallocate(1<<20, s3dump.MaxHead); err == nil || !strings.Contains(err.Error(), "part 1 may hold") {
		t.Errorf("descriptors of %d bytes: %v", s3dump.MaxHead, err)
	}
}
