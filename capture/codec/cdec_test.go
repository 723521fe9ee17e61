package codec

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// cDecoder decodes pages with the C libraries the readers of dumps use:
// libzstd's ZSTD_decompress (crash, libkdumpfile, makedumpfile) and
// liblzo2's lzo1x_decompress_safe (makedumpfile, crash); it also
// compresses with lzo1x_1_compress, as makedumpfile -l does. The test
// binary stays free of cgo: a python3 process calls the libraries
// through ctypes, one request a page over a pipe, fast enough to fuzz
// with.
type cDecoder struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

const cDecoderScript = `
import ctypes, struct, sys
zstd = ctypes.CDLL("libzstd.so.1")
zstd.ZSTD_decompress.restype = ctypes.c_size_t
zstd.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]
lzo = ctypes.CDLL("liblzo2.so.2")
if lzo.__lzo_init_v2(lzo.lzo_version(), 2, 4, 8, 4, 8, 8, 8, 8, 48) != 0:
    sys.exit("lzo_init failed")
wrkmem = ctypes.create_string_buffer(1 << 20)
inp, out = sys.stdin.buffer, sys.stdout.buffer
out.write(b"ready\n"); out.flush()
while True:
    hdr = inp.read(9)
    if len(hdr) < 9:
        break
    kind, dlen, slen = struct.unpack("<BII", hdr)
    src = inp.read(slen)
    dst = ctypes.create_string_buffer(dlen)
    if kind == 1:
        n = zstd.ZSTD_decompress(dst, dlen, src, slen)
        st = -1 if zstd.ZSTD_isError(n) else 0
    elif kind == 3:
        outlen = ctypes.c_size_t(dlen)
        st = lzo.lzo1x_1_compress(src, ctypes.c_size_t(slen), dst, ctypes.byref(outlen), wrkmem)
        n = outlen.value
    else:
        outlen = ctypes.c_size_t(dlen)
        st = lzo.lzo1x_decompress_safe(src, ctypes.c_size_t(slen), dst, ctypes.byref(outlen), None)
        n = outlen.value
    if st != 0:
        n = 0
    out.write(struct.pack("<iI", st, n) + dst.raw[:n]); out.flush()
`

var (
	cDecOnce sync.Once
	cDec     *cDecoder
	cDecErr  error
)

// startCDecoder returns the shared C decoder, or an error saying why
// there is none.
func startCDecoder() (*cDecoder, error) {
	cDecOnce.Do(func() {
		py, err := exec.LookPath("python3")
		if err != nil {
			cDecErr = fmt.Errorf("python3 is missing: %w", err)
			return
		}
		keepFDsFromChildren()
		cmd := exec.Command(py, "-c", cDecoderScript)
		in, err := cmd.StdinPipe()
		if err != nil {
			cDecErr = err
			return
		}
		outp, err := cmd.StdoutPipe()
		if err != nil {
			cDecErr = err
			return
		}
		if err := cmd.Start(); err != nil {
			cDecErr = err
			return
		}
		d := &cDecoder{cmd: cmd, in: in, out: bufio.NewReader(outp)}
		if line, err := d.out.ReadString('\n'); err != nil || line != "ready\n" {
			cDecErr = fmt.Errorf("python3 with libzstd.so.1 and liblzo2.so.2 through ctypes did not start (%q, %v)", line, err)
			cmd.Process.Kill()
			cmd.Wait()
			return
		}
		cDec = d
	})
	return cDec, cDecErr
}

// needCDecoder returns the C decoder or ends the test as missing input.
func needCDecoder(t testing.TB) *cDecoder {
	t.Helper()
	d, err := startCDecoder()
	if err != nil {
		fixture.Missing(t, "no C decoder: %v (scripts/install-deps installs zstd, makedumpfile and python3)", err)
	}
	return d
}

// decode decodes src, a zstd frame (zstd true) or an LZO1X block, into
// at most size bytes, and returns them or the library's error.
func (d *cDecoder) decode(zstd bool, src []byte, size int) ([]byte, error) {
	kind := byte(2)
	if zstd {
		kind = 1
	}
	return d.call(kind, src, size)
}

// compressLZO returns liblzo2's lzo1x_1_compress of page, as makedumpfile
// -l calls it.
func (d *cDecoder) compressLZO(page []byte) ([]byte, error) {
	return d.call(3, page, len(page)+len(page)/16+64+3)
}

func (d *cDecoder) call(kind byte, src []byte, size int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hdr := make([]byte, 9, 9+len(src))
	hdr[0] = kind
	binary.LittleEndian.PutUint32(hdr[1:], uint32(size))
	binary.LittleEndian.PutUint32(hdr[5:], uint32(len(src)))
	if _, err := d.in.Write(append(hdr, src...)); err != nil {
		return nil, err
	}
	var resp [8]byte
	if _, err := io.ReadFull(d.out, resp[:]); err != nil {
		return nil, err
	}
	st, n := int32(binary.LittleEndian.Uint32(resp[:])), binary.LittleEndian.Uint32(resp[4:])
	out := make([]byte, n)
	if _, err := io.ReadFull(d.out, out); err != nil {
		return nil, err
	}
	if st != 0 {
		return nil, fmt.Errorf("C decoder: status %d", st)
	}
	return out, nil
}

// TestCDecoder checks the checker: it decodes what it should and refuses
// what it should.
func TestCDecoder(t *testing.T) {
	d := needCDecoder(t)
	page := zstdTestPages(pageSize)["structs"]
	f := newZstdPageEnc(pageSize).encode(page)
	if got, err := d.decode(true, f, pageSize); err != nil || string(got) != string(page) {
		t.Fatalf("zstd frame: %v", err)
	}
	if _, err := d.decode(true, f[:len(f)-1], pageSize); err == nil {
		t.Error("truncated zstd frame decoded")
	}
	for _, src := range readLZOGolden(t) {
		if got, err := d.decode(false, src, pageSize); err != nil || len(got) != pageSize {
			t.Fatalf("lzo golden page: %v", err)
		}
		if _, err := d.decode(false, src[:len(src)-1], pageSize); err == nil {
			t.Error("truncated lzo block decoded")
		}
	}
}
