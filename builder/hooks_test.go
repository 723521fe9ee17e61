package builder

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// TestBuildHooks: a static hook is packed at its path, 0700, byte for
// byte; anything the capture kernel could not run is refused at build
// time with ErrBadHook, naming the file and what to do.
func TestBuildHooks(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	static := write("static", fakeELF(t, elf.EM_X86_64, false, []byte("hook body")))
	other := write("other", fakeELF(t, elf.EM_X86_64, false, []byte("second hook")))
	dynamic := write("dynamic", fakeELF(t, elf.EM_X86_64, true, []byte("needs libc")))
	arm := write("arm", fakeELF(t, elf.EM_AARCH64, false, []byte("wrong arch")))
	script := write("script", []byte("#!/bin/sh\necho hi\n"))
	junk := write("junk", []byte("hello"))

	t.Run("packed", func(t *testing.T) {
		opts := baseOptions(t)
		opts.Compress = CompressNone
		opts.Hooks = []string{static, other}
		archive, res := build(t, opts)
		if !slices.Equal(res.Hooks, opts.Hooks) {
			t.Errorf("Result.Hooks = %q, want %q", res.Hooks, opts.Hooks)
		}
		byName := map[string]cpio.Record{}
		for _, r := range readRecords(t, archive) {
			byName["/"+r.Name] = r
		}
		for _, h := range opts.Hooks {
			r, ok := byName[h]
			if !ok {
				t.Fatalf("%s not in the image", h)
			}
			if r.Mode != cpio.S_IFREG|HookMode {
				t.Errorf("%s: mode %#o, want %#o", h, r.Mode, cpio.S_IFREG|HookMode)
			}
			got, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			want, _ := os.ReadFile(h)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: content differs", h)
			}
			if d := byName[filepath.Dir(h)]; d.Mode != cpio.S_IFDIR|0o755 {
				t.Errorf("%s: parent mode %#o", h, d.Mode)
			}
		}
	})

	for _, tt := range []struct {
		name  string
		hooks []string
		arch  string
		want  string
	}{
		{"dynamic", []string{static, dynamic}, "amd64", dynamic + ": not a usable hook: dynamically linked"},
		{"wrong arch", []string{arm}, "amd64", "built for EM_AARCH64, want EM_X86_64"},
		{"script", []string{script}, "amd64", "a script; the capture image has no shell"},
		{"not ELF", []string{junk}, "amd64", "not an ELF executable"},
		{"relative", []string{"hooks/pre"}, "amd64", "not a clean absolute path"},
		{"missing", []string{filepath.Join(dir, "absent")}, "amd64", "absent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions(t)
			opts.Arch = tt.arch
			opts.Hooks = tt.hooks
			_, err := Build(t.Context(), io.Discard, opts)
			if err == nil {
				t.Fatal("built")
			}
			if tt.name != "missing" && !errors.Is(err, ErrBadHook) {
				t.Errorf("error %v is not ErrBadHook", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}
