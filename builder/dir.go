package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// ErrNotEmpty means the directory to write an image tree into already
// holds something.
var ErrNotEmpty = errors.New("directory not empty")

// WriteDir writes the image as a directory tree at dir, which must be
// missing or empty: what CONFIG_INITRAMFS_SOURCE=DIR packs (as root), or a
// tree to copy into another image. Modes are the image's; owners are the
// caller's. Device nodes need privilege (CAP_MKNOD): those that cannot be
// made are skipped and returned, and the image's WriteDirList covers them.
func (p *Plan) WriteDir(dir string) (skipped []string, err error) {
	if p.im.entries[InitPath].data == nil {
		return nil, fmt.Errorf("builder: %w: the plan was made without compiling the init", ErrNoInit)
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("builder: %w", err)
	case len(ents) > 0:
		return nil, fmt.Errorf("builder: %s: %w", dir, ErrNotEmpty)
	}
	for _, e := range p.im.sorted() {
		host := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(e.name, "/")))
		perm := os.FileMode(e.mode & 0o777)
		switch e.mode & cpio.S_IFMT {
		case cpio.S_IFDIR:
			if err := os.Mkdir(host, 0o700); err != nil {
				return nil, fmt.Errorf("builder: %w", err)
			}
			// Chmod after the fact: Mkdir's mode goes through the umask.
			defer func() {
				if cerr := os.Chmod(host, perm); cerr != nil && err == nil {
					err = fmt.Errorf("builder: %w", cerr)
				}
			}()
		case cpio.S_IFREG:
			if err := writeFileMode(host, e.data, perm); err != nil {
				return nil, err
			}
		case cpio.S_IFCHR:
			if err := mknodChar(host, uint32(perm), uint32(e.rmajor), uint32(e.rminor)); err != nil {
				if errors.Is(err, os.ErrPermission) || errors.Is(err, errors.ErrUnsupported) {
					skipped = append(skipped, e.name)
					continue
				}
				return nil, fmt.Errorf("builder: mknod %s: %w", host, err)
			}
		}
	}
	return skipped, nil
}

func writeFileMode(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("builder: write %s: %w", name, err)
	}
	return nil
}

// WriteDirList writes the image's gen_init_cpio file list with every file
// taken from the tree WriteDir wrote at dir. Owners are 0 whatever they are
// in the tree and device nodes are listed whether or not the tree has
// them, so CONFIG_INITRAMFS_SOURCE=LIST gives the same image without
// privilege.
func (p *Plan) WriteDirList(w io.Writer, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	im := &image{entries: make(map[string]entry, len(p.im.entries))}
	for n, e := range p.im.entries {
		if e.mode&cpio.S_IFMT == cpio.S_IFREG {
			e.src = filepath.Join(abs, filepath.FromSlash(strings.TrimPrefix(n, "/")))
		}
		im.entries[n] = e
	}
	return im.writeList(w)
}

// WriteListWith writes the image's gen_init_cpio file list, as WriteList,
// usable as it stands: the files that have no source file of their own
// (the module list, the network record, extra files, a compiled init), or
// whose source no longer holds what was read and checked (a config edited
// since), are first written into dir at their path in the image and listed
// from there. dir must be missing or empty. It returns the in-image paths
// of the files it wrote.
func (p *Plan) WriteListWith(w io.Writer, dir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	var gen []entry
	im := &image{entries: make(map[string]entry, len(p.im.entries))}
	for n, e := range p.im.entries {
		if e.mode&cpio.S_IFMT == cpio.S_IFREG && e.src != "" && !strings.HasPrefix(e.src, "<") {
			// gen_init_cpio reads relative paths from where it runs.
			if a, err := filepath.Abs(e.src); err == nil {
				e.src = a
			}
		}
		im.entries[n] = e
	}
	for _, e := range im.sorted() {
		if e.mode&cpio.S_IFMT == cpio.S_IFREG && !sameFile(e.src, e.data) {
			if e.data == nil {
				return nil, fmt.Errorf("builder: %w: the plan was made without compiling the init", ErrNoInit)
			}
			gen = append(gen, e)
		}
	}
	// The list first: a path it cannot hold fails before anything is
	// written.
	for _, e := range gen {
		e.src = filepath.Join(abs, filepath.FromSlash(strings.TrimPrefix(e.name, "/")))
		im.entries[e.name] = e
	}
	var list strings.Builder
	if err := im.writeList(&list); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("builder: %w", err)
	case len(ents) > 0:
		return nil, fmt.Errorf("builder: %s: %w", dir, ErrNotEmpty)
	}
	var wrote []string
	for _, e := range gen {
		host := im.entries[e.name].src
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
		if err := writeFileMode(host, e.data, os.FileMode(e.mode&0o777)); err != nil {
			return nil, err
		}
		wrote = append(wrote, e.name)
	}
	_, err = io.WriteString(w, list.String())
	return wrote, err
}

// sameFile reports whether the file at path holds data.
func sameFile(path string, data []byte) bool {
	if !filepath.IsAbs(path) {
		return false // a placeholder such as <generated>
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != int64(len(data)) {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && bytes.Equal(b, data)
}
