package collect

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rndAddEntropy is RNDADDENTROPY, _IOW('R', 0x03, int[2]).
const rndAddEntropy = 0x40085203

// Seeding samples: seedChunks pieces of seedChunk bytes spread over the
// vmcore, after its first seedHead bytes (ELF headers and the notes:
// the registers of every CPU at the crash).
const (
	seedHead   = 1 << 20
	seedChunks = 256
	seedChunk  = 16 << 10
)

// rngReady reports whether getrandom(2) would return without blocking.
func rngReady() bool {
	var b [1]byte
	_, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK)
	return !errors.Is(err, unix.EAGAIN)
}

// seedRNG makes sure the kernel's random number generator is ready
// before anything needs it (DHCP transaction ids, SSH key exchange): a
// capture kernel without RDRAND or a hardware RNG may otherwise block
// getrandom(2) for minutes, and the capture with it. When it is not
// ready, it is seeded with a SHA-512 of the crashed kernel's memory —
// samples spread over all of it, and the notes with every CPU's
// registers — which holds that kernel's own RNG state and its data,
// nothing an outsider can predict, plus the time and the insecure pool.
func seedRNG(logf func(string, ...any), vmcore string) {
	if rngReady() {
		return
	}
	t := time.Now()
	h := sha512.New()
	fmt.Fprintf(h, "gokdump %d", t.UnixNano())
	var insecure [64]byte
	if n, err := unix.Getrandom(insecure[:], unix.GRND_INSECURE); err == nil {
		h.Write(insecure[:n])
	}
	read := 0
	if f, err := os.Open(vmcore); err == nil {
		buf := make([]byte, seedHead)
		n, _ := io.ReadFull(f, buf)
		h.Write(buf[:n])
		read += n
		if st, err := f.Stat(); err == nil && st.Size() > seedHead {
			step := (st.Size() - seedHead) / seedChunks
			for i := int64(0); i < seedChunks; i++ {
				n, _ := f.ReadAt(buf[:seedChunk], seedHead+i*step)
				h.Write(buf[:n])
				read += n
			}
		}
		f.Close()
	}
	sum := h.Sum(nil)
	if err := addEntropy(sum, 256); err != nil {
		logf("random: the kernel's RNG is not ready and could not be seeded: %v; DHCP and SSH may wait for it", err)
		return
	}
	logf("random: the kernel's RNG was not ready (no RDRAND nor hardware RNG?); seeded from %.1f MiB of the crashed kernel's memory in %.2fs (ready: %v)",
		float64(read)/(1<<20), time.Since(t).Seconds(), rngReady())
}

// addEntropy credits bits of entropy for b to the kernel's pool.
func addEntropy(b []byte, bits int) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(b))
	binary.NativeEndian.PutUint32(info[0:], uint32(bits))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(b)))
	copy(info[8:], b)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndAddEntropy, uintptr(unsafe.Pointer(&info[0])))
	if errno != 0 {
		return fmt.Errorf("RNDADDENTROPY: %w", errno)
	}
	return nil
}
