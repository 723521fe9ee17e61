package builder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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
