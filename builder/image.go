package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/u-root/u-root/pkg/cpio"
)

// ErrBadEntry means an image entry cannot be written: a bad or duplicate
// path, or content too large for a newc header.
var ErrBadEntry = errors.New("bad image entry")

// maxEntrySize is the largest file newc can describe (its sizes are 32-bit).
const maxEntrySize = 1<<32 - 1

// An entry is one file, directory or device node of the image.
type entry struct {
	name   string // absolute path in the image
	mode   uint64 // type and permission bits, as in st_mode
	data   []byte // regular file contents
	src    string // where the contents came from, for the file list
	rmajor uint64 // device number of a node
	rminor uint64
}

func dirEntry(name string, perm uint64) entry {
	return entry{name: name, mode: cpio.S_IFDIR | perm}
}

func fileEntry(name string, perm uint64, data []byte, src string) entry {
	return entry{name: name, mode: cpio.S_IFREG | perm, data: data, src: src}
}

func charDevEntry(name string, perm, major, minor uint64) entry {
	return entry{name: name, mode: cpio.S_IFCHR | perm, rmajor: major, rminor: minor}
}

// An image is the set of entries of an initramfs, written in sorted order.
type image struct {
	entries map[string]entry
}

func newImage() *image { return &image{entries: map[string]entry{}} }

// add adds e, and 0755 directories for any of its parents not yet added:
// the kernel does not create missing parents when it unpacks.
func (im *image) add(e entry) error {
	if !path.IsAbs(e.name) || path.Clean(e.name) != e.name || e.name == "/" {
		return fmt.Errorf("builder: %w: path %q is not clean and absolute", ErrBadEntry, e.name)
	}
	if len(e.data) > maxEntrySize {
		return fmt.Errorf("builder: %w: %s is %d bytes, more than newc can hold", ErrBadEntry, e.name, len(e.data))
	}
	if old, dup := im.entries[e.name]; dup && !(isDir(old) && isDir(e)) {
		return fmt.Errorf("builder: %w: %s added twice", ErrBadEntry, e.name)
	}
	for d := path.Dir(e.name); d != "/"; d = path.Dir(d) {
		p, ok := im.entries[d]
		if !ok {
			im.entries[d] = dirEntry(d, 0o755)
			continue
		}
		if !isDir(p) {
			return fmt.Errorf("builder: %w: %s is inside %s, which is not a directory", ErrBadEntry, e.name, d)
		}
	}
	// A directory added again (or first created as a parent) takes the
	// mode given last.
	im.entries[e.name] = e
	return nil
}

func isDir(e entry) bool { return e.mode&cpio.S_IFMT == cpio.S_IFDIR }

// sorted returns the entries in path order. A parent's path is a prefix of
// its children's, so it sorts before them, as the kernel needs.
func (im *image) sorted() []entry {
	names := make([]string, 0, len(im.entries))
	for n := range im.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	es := make([]entry, len(names))
	for i, n := range names {
		es[i] = im.entries[n]
	}
	return es
}

// writeCPIO writes the image as a newc archive. Everything a host file
// would leak in is fixed: inode numbers count up in path order, link
// counts are 2 for directories and 1 otherwise (no entry looks like a hard
// link to the kernel), times, owners and the device of the archive are 0.
func (im *image) writeCPIO(w io.Writer) error {
	cw := cpio.Newc.Writer(w)
	for i, e := range im.sorted() {
		nlink := uint64(1)
		if e.mode&cpio.S_IFMT == cpio.S_IFDIR {
			nlink = 2
		}
		rec := cpio.Record{Info: cpio.Info{
			Ino:    uint64(i + 1),
			Mode:   e.mode,
			NLink:  nlink,
			Rmajor: e.rmajor,
			Rminor: e.rminor,
			Name:   strings.TrimPrefix(e.name, "/"),
		}}
		if e.mode&cpio.S_IFMT == cpio.S_IFREG {
			rec.ReaderAt = bytes.NewReader(e.data)
			rec.FileSize = uint64(len(e.data))
		}
		if err := cw.WriteRecord(rec); err != nil {
			return fmt.Errorf("builder: write %s: %w", e.name, err)
		}
	}
	// gen_init_cpio's trailer: all zero but a link count of 1.
	trailer := cpio.Record{Info: cpio.Info{Name: cpio.Trailer, NLink: 1}}
	if err := cw.WriteRecord(trailer); err != nil {
		return fmt.Errorf("builder: write trailer: %w", err)
	}
	return nil
}

// ErrListName means a path cannot be written in a gen_init_cpio list.
var ErrListName = errors.New("path cannot be named in a gen_init_cpio list")

// maxListPath is gen_init_cpio's limit on a path (PATH_MAX, with the NUL).
const maxListPath = 4095

// checkListName refuses what gen_init_cpio would misread: it splits its
// lines on white space (with no quoting or escape), cuts fields at
// PATH_MAX, and expands ${VAR} in a file's source path. A source in angle
// brackets is a placeholder (the init still to be compiled), not a path.
func checkListName(p string, source bool) error {
	if source && strings.HasPrefix(p, "<") && strings.HasSuffix(p, ">") {
		return nil
	}
	switch {
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("builder: %w: %q has white space or control characters, which the list format cannot quote"+
			" (build the archive itself, or move the files to a path without them)", ErrListName, p)
	case source && strings.Contains(p, "${"):
		return fmt.Errorf("builder: %w: %q has \"${\", which gen_init_cpio expands as a variable", ErrListName, p)
	case len(p) > maxListPath:
		return fmt.Errorf("builder: %w: %.40q… is longer than %d bytes", ErrListName, p, maxListPath)
	}
	return nil
}

// writeList writes the image as a gen_init_cpio file list (the format of
// the kernel's usr/gen_init_cpio and CONFIG_INITRAMFS_SOURCE). A path the
// format cannot hold is an error wrapping ErrListName, and nothing is
// written.
func (im *image) writeList(w io.Writer) error {
	var b strings.Builder
	for _, e := range im.sorted() {
		if err := checkListName(e.name, false); err != nil {
			return err
		}
		if e.mode&cpio.S_IFMT == cpio.S_IFREG {
			if err := checkListName(e.src, true); err != nil {
				return fmt.Errorf("%w (the source of %s)", err, e.name)
			}
		}
		perm := e.mode & 0o7777
		switch e.mode & cpio.S_IFMT {
		case cpio.S_IFDIR:
			fmt.Fprintf(&b, "dir %s %04o 0 0\n", e.name, perm)
		case cpio.S_IFCHR:
			fmt.Fprintf(&b, "nod %s %04o 0 0 c %d %d\n", e.name, perm, e.rmajor, e.rminor)
		case cpio.S_IFREG:
			fmt.Fprintf(&b, "file %s %s %04o 0 0\n", e.name, e.src, perm)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
