package vmtest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// arm64Image returns an arm64 Image of size bytes with its header magic
// and the kernel's banner at off.
func arm64Image(size, off int, banner string) []byte {
	b := make([]byte, size)
	copy(b[0x38:], arm64Magic)
	copy(b[off:], "Linux version "+banner+"\n\x00")
	return b
}

func TestIdentifyKernel(t *testing.T) {
	const banner = "6.12.118+deb12-cloud-arm64 (debian-kernel@lists.debian.org) (gcc 12) #1 SMP Debian 6.12.118-1"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(arm64Image(3<<20, 2<<20, banner))
	zw.Close()
	elfFile := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 1024)...)
	zboot := append([]byte("MZ\x00\x00zimg"), make([]byte, 1024)...)
	tests := []struct {
		name     string
		data     []byte
		arch     string
		release  string
		err      error
		errMatch string
	}{
		{"bzImage", fixture.BzImage("6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP"), "amd64", "6.1.0-57-cloud-amd64", nil, ""},
		{"arm64 Image", arm64Image(1<<16, 0x9000, banner), "arm64", "6.12.118+deb12-cloud-arm64", nil, ""},
		// The banner across the 1 MiB chunks the image is read in.
		{"arm64 banner across chunks", arm64Image(3<<20, 1<<20-20, banner), "arm64", "6.12.118+deb12-cloud-arm64", nil, ""},
		{"arm64 Image without banner", arm64Image(1<<16, 0, ""), "arm64", "", nil, ""},
		{"gzipped arm64 Image", gz.Bytes(), "arm64", "6.12.118+deb12-cloud-arm64", nil, ""},
		{"vmlinux", elfFile, "", "", ErrKernelImage, "--vmlinux"},
		{"zboot", zboot, "", "", ErrKernelImage, "zboot"},
		{"text", []byte("hello\n"), "", "", ErrKernelImage, "neither"},
		{"gzip of something else", func() []byte {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write(make([]byte, 4096))
			w.Close()
			return b.Bytes()
		}(), "", "", ErrKernelImage, "not an arm64 Image"},
		{"32-bit bzImage", func() []byte { b := fixture.BzImage("x"); b[0x236] = 0; return b }(), "", "", ErrKernelImage, "64-bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "image")
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			k, err := IdentifyKernel(p)
			if !errors.Is(err, tt.err) || (err != nil && !strings.Contains(err.Error(), tt.errMatch)) {
				t.Fatalf("err %v, want %v (%q)", err, tt.err, tt.errMatch)
			}
			if err == nil && (k.Arch != tt.arch || k.Release != tt.release) {
				t.Errorf("got %s %q, want %s %q", k.Arch, k.Release, tt.arch, tt.release)
			}
		})
	}
	if _, err := IdentifyKernel(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := IdentifyKernel(t.TempDir()); !errors.Is(err, ErrKernelImage) {
		t.Errorf("a directory: %v", err)
	}
}

// TestIdentifyDebianKernels: the release each of Debian's images says is
// the one its package installs it as.
func TestIdentifyDebianKernels(t *testing.T) {
	imgs, _ := filepath.Glob(filepath.Join(fixture.CacheDir(t), "kernels", "*", "root", "boot", "vmlinuz-*"))
	split, _ := filepath.Glob(filepath.Join(fixture.CacheDir(t), "kernels", "*", "root", "usr", "lib", "modules", "*", "vmlinuz"))
	imgs = append(imgs, split...)
	if len(imgs) == 0 {
		fixture.Missing(t, "no Debian kernel images in the cache")
	}
	for _, img := range imgs {
		rel := fixture.Release(img)
		t.Run(rel, func(t *testing.T) {
			k, err := IdentifyKernel(img)
			if err != nil {
				t.Fatal(err)
			}
			wantArch := rel[strings.LastIndexByte(rel, '-')+1:]
			if k.Release != rel || k.Arch != wantArch || !strings.Contains(k.Banner, "debian") {
				t.Errorf("%s: %+v", img, k)
			}
		})
	}
}
