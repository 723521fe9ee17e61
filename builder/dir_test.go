package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"
)

func TestWriteDir(t *testing.T) {
	opts := baseOptions(t)
	opts.Compress = CompressNone
	archive, _ := build(t, opts)
	p, err := NewPlan(context.Background(), opts, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := filepath.Join(t.TempDir(), "tree")
	skipped, err := p.WriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	recs := readRecords(t, archive)
	for _, r := range recs {
		if r.Name == cpio.Trailer {
			continue
		}
		host := filepath.Join(dir, r.Name)
		var st unix.Stat_t
		if err := unix.Lstat(host, &st); err != nil {
			if r.Mode&cpio.S_IFMT == cpio.S_IFCHR && !root {
				continue
			}
			t.Errorf("%s: %v", r.Name, err)
			continue
		}
		if uint64(st.Mode) != r.Mode {
			t.Errorf("%s: mode %o, want %o", r.Name, st.Mode, r.Mode)
		}
		switch r.Mode & cpio.S_IFMT {
		case cpio.S_IFREG:
			want := make([]byte, r.FileSize)
			if _, err := r.ReadAt(want, 0); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(host); !bytes.Equal(got, want) {
				t.Errorf("%s: content differs (%d bytes, want %d)", r.Name, len(got), len(want))
			}
		case cpio.S_IFCHR:
			if unix.Major(st.Rdev) != uint32(r.Rmajor) || unix.Minor(st.Rdev) != uint32(r.Rminor) {
				t.Errorf("%s: device %d:%d, want %d:%d", r.Name, unix.Major(st.Rdev), unix.Minor(st.Rdev), r.Rmajor, r.Rminor)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) == 0 {
		t.Fatal("empty tree")
	}
	if root != (len(skipped) == 0) || (!root && strings.Join(skipped, " ") != "/dev/console") {
		t.Errorf("skipped %q as uid %d", skipped, os.Geteuid())
	}

	// The list names every file from the tree and keeps the node.
	var list bytes.Buffer
	if err := p.WriteDirList(&list, dir); err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, l := range strings.Split(strings.TrimSpace(list.String()), "\n") {
		f := strings.Fields(l)
		if f[0] != "file" {
			continue
		}
		files++
		if src := f[2]; src != filepath.Join(dir, strings.TrimPrefix(f[1], "/")) {
			t.Errorf("list: %s comes from %s, not from the tree", f[1], src)
		}
	}
	if files == 0 || !strings.Contains(list.String(), "nod /dev/console 0600 0 0 c 5 1\n") {
		t.Errorf("list:\n%s", list.String())
	}

	if _, err := p.WriteDir(dir); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("second write into the tree: %v", err)
	}
	nodir := filepath.Join(t.TempDir(), "file")
	writeFile(t, nodir, "x")
	if _, err := p.WriteDir(nodir); err == nil {
		t.Error("writing a tree over a file succeeded")
	}
}

// TestWriteListWith: every file line of the list names a file that exists
// and holds what the archive holds; the generated ones are written into
// the directory given, nothing else is.
func TestWriteListWith(t *testing.T) {
	opts := baseOptions(t)
	opts.Compress = CompressNone
	opts.ModulesDir = filepath.Join("testdata", "6.1.0-test-amd64")
	opts.Modules = []string{"virtio_blk", "ext4"}
	opts.Extra = []File{{Path: "/etc/gokdump/net.json", Data: []byte(`{"interfaces":[]}`), Mode: 0o644}}
	archive, _ := build(t, opts)
	p, err := NewPlan(context.Background(), opts, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	gen := filepath.Join(t.TempDir(), "generated")
	var list bytes.Buffer
	wrote, err := p.WriteListWith(&list, gen)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, r := range readRecords(t, archive) {
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			b := make([]byte, r.FileSize)
			r.ReadAt(b, 0)
			want["/"+r.Name] = b
		}
	}
	files := 0
	for _, l := range strings.Split(strings.TrimSpace(list.String()), "\n") {
		f := strings.Fields(l)
		if f[0] != "file" {
			continue
		}
		files++
		got, err := os.ReadFile(f[2])
		if err != nil || !bytes.Equal(got, want[f[1]]) {
			t.Errorf("%s: source %s: %v, or not what the archive holds", f[1], f[2], err)
		}
		if strings.HasPrefix(f[2], gen) != slices.Contains(wrote, f[1]) {
			t.Errorf("%s from %s; written into %s: %q", f[1], f[2], gen, wrote)
		}
	}
	if files != len(want) || !slices.Contains(wrote, ModuleListPath) || !slices.Contains(wrote, "/etc/gokdump/net.json") {
		t.Errorf("%d files listed, the archive has %d; wrote %q:\n%s", files, len(want), wrote, list.String())
	}
	if _, err := p.WriteListWith(io.Discard, gen); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("a second time into the same directory: %v", err)
	}
}
