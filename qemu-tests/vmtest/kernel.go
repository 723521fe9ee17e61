package vmtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gokdump/gokdump/internal/kexec"
)

// KernelInfo is what vmtest knows of the kernel under test.
type KernelInfo struct {
	Path string `json:"path"`
	Arch string `json:"arch"` // GOARCH: amd64, arm64
	// Release is the kernel's release (uname -r), as its image says it,
	// or as the booted kernel reported it when the image does not.
	Release string `json:"release"`
	// Banner is the image's version string ("6.1.0-57-cloud-amd64
	// (debian-kernel@…) #1 SMP …"), "" when it has none.
	Banner  string `json:"banner,omitempty"`
	Modules string `json:"modules,omitempty"`
	VMLinux string `json:"vmlinux,omitempty"`
	// Config is the configuration checked; "" when none was at hand.
	Config string `json:"config,omitempty"`
}

// ErrKernelImage means --kernel is not a boot image vmtest can use.
var ErrKernelImage = errors.New("not a kernel boot image")

// maxImage bounds a kernel image read whole (an arm64 Image is read to
// find its version string): Debian's are 10-40 MiB.
const maxImage = 256 << 20

// arm64 Image header: "ARM\x64" at 0x38 (Documentation/arch/arm64/booting.rst).
var arm64Magic = []byte("ARM\x64")

// IdentifyKernel reads what a boot image is: an x86 bzImage (its setup
// header gives the version string), or an arm64 Image, raw or gzipped
// (its version string is the "Linux version" banner in it).
func IdentifyKernel(path string) (KernelInfo, error) {
	k := KernelInfo{Path: path}
	f, err := os.Open(path)
	if err != nil {
		return k, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return k, err
	}
	if !fi.Mode().IsRegular() {
		return k, fmt.Errorf("%s: %w: not a regular file", path, ErrKernelImage)
	}
	var head [0x240]byte
	n, _ := f.ReadAt(head[:], 0)
	h := head[:n]
	switch {
	case len(h) >= 0x206 && string(h[0x202:0x206]) == "HdrS":
		bz, err := kexec.ParseBzImage(f, fi.Size())
		if err != nil {
			return k, fmt.Errorf("%s: %w: %w", path, ErrKernelImage, err)
		}
		k.Arch, k.Banner = "amd64", bz.Version
		k.Release = firstField(bz.Version)
		return k, nil
	case len(h) >= 0x3c && bytes.Equal(h[0x38:0x3c], arm64Magic):
		k.Arch = "arm64"
		k.Banner, err = findBanner(io.LimitReader(f, maxImage))
		k.Release = firstField(k.Banner)
		return k, err
	case len(h) >= 2 && h[0] == 0x1f && h[1] == 0x8b:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return k, fmt.Errorf("%s: %w: gzip: %w", path, ErrKernelImage, err)
		}
		var zh [0x40]byte
		if _, err := io.ReadFull(zr, zh[:]); err != nil || !bytes.Equal(zh[0x38:0x3c], arm64Magic) {
			return k, fmt.Errorf("%s: %w: gzip data that is not an arm64 Image", path, ErrKernelImage)
		}
		k.Arch = "arm64"
		k.Banner, err = findBanner(io.LimitReader(zr, maxImage))
		k.Release = firstField(k.Banner)
		return k, err
	case len(h) >= 4 && string(h[:4]) == elf.ELFMAG:
		return k, fmt.Errorf("%s: %w: an ELF file (a vmlinux?): --kernel takes the boot image (bzImage, vmlinuz, Image); a vmlinux goes to --vmlinux", path, ErrKernelImage)
	case len(h) >= 8 && string(h[:2]) == "MZ" && string(h[4:8]) == "zimg":
		return k, fmt.Errorf("%s: %w: an EFI zboot image, which QEMU's -kernel and kexec_file_load do not take here: pass arch/arm64/boot/Image", path, ErrKernelImage)
	}
	return k, fmt.Errorf("%s: %w: neither an x86 bzImage nor an arm64 Image", path, ErrKernelImage)
}

// findBanner returns the kernel's version string after "Linux version ",
// "" when there is none.
func findBanner(r io.Reader) (string, error) {
	key := []byte("Linux version ")
	const maxBanner = 256
	buf := make([]byte, 1<<20)
	var carry []byte // the end of the previous chunk: a banner across two
	for {
		n, err := io.ReadFull(r, buf)
		data := append(carry, buf[:n]...)
		if i := bytes.Index(data, key); i >= 0 {
			rest := data[i+len(key):]
			if end := bytes.IndexAny(rest, "\x00\n"); end > 0 {
				return printable(rest[:end]), nil
			}
			if err == nil && len(rest) < maxBanner {
				carry = append([]byte(nil), data[i:]...)
				continue
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", nil
			}
			return "", err
		}
		keep := min(len(data), len(key)-1)
		carry = append([]byte(nil), data[len(data)-keep:]...)
	}
}

// printable keeps the banner to what it should be: text.
func printable(b []byte) string {
	if len(b) > 256 {
		b = b[:256]
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			return string(b[:i])
		}
	}
	return string(b)
}

func firstField(s string) string {
	if i := bytes.IndexByte([]byte(s), ' '); i >= 0 {
		return s[:i]
	}
	return s
}
