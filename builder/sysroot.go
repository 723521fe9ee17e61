package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	// ErrNoKernel means a tree holds no kernel of the release asked for
	// (neither its image nor its modules), or none at all.
	ErrNoKernel = errors.New("no kernel")
	// ErrSeveralKernels means an image tree holds more than one kernel and
	// none was chosen.
	ErrSeveralKernels = errors.New("several kernels in the image tree")
)

// SysrootInitPath is where an image tree carries the prebuilt capture init
// (what a gokdump package installs).
const SysrootInitPath = "/usr/lib/gokdump/init"

// maxSymlinks bounds the links one lookup follows, as the kernel's ELOOP
// does.
const maxSymlinks = 40

// A Sysroot is an image tree (debootstrap, dpkg -x, mkosi …) read as if it
// were "/": a symbolic link in it, absolute or relative, resolves inside
// it, and ".." stops at its top, as after chroot. So a tree whose /lib
// links to usr/lib reads its own /usr/lib, and a link to /etc/passwd or
// ../../../etc/passwd reads the tree's /etc/passwd, never the host's.
//
// On Linux the kernel resolves every path (openat2 with RESOLVE_IN_ROOT),
// which holds even against a tree changed while it is read. Without
// openat2 (Linux before 5.6, a seccomp filter, other systems) links are
// resolved one component at a time below an os.Root, which refuses to open
// anything outside the tree: os.Root alone would refuse every absolute
// link, and distribution trees have many.
type Sysroot struct {
	dir  string   // absolute and clean, for messages
	root *os.Root // the fallback, and HostPath's resolver
	// dirfd is an O_PATH descriptor of dir for openat2, or -1.
	dirfd int
	// noOpenat2 is set once openat2 turns out to be missing.
	noOpenat2 atomic.Bool
}

// OpenSysroot opens the image tree at dir. Close it when done.
func OpenSysroot(dir string) (*Sysroot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("builder: image tree %s: %w", dir, err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("builder: image tree: %w", err)
	}
	if fi, err := r.Stat("."); err != nil || !fi.IsDir() {
		r.Close()
		return nil, fmt.Errorf("builder: image tree %s: not a directory", abs)
	}
	s := &Sysroot{dir: abs, root: r, dirfd: -1}
	if err := s.openDirfd(); err != nil {
		r.Close()
		return nil, fmt.Errorf("builder: image tree: %w", err)
	}
	return s, nil
}

// Close releases the tree's descriptors.
func (s *Sysroot) Close() error {
	s.closeDirfd()
	return s.root.Close()
}

// Dir returns the tree's directory on the host.
func (s *Sysroot) Dir() string { return s.dir }

// display names the file name of the tree for messages.
func (s *Sysroot) display(name string) string {
	return filepath.Join(s.dir, filepath.FromSlash(path.Clean("/"+name)))
}

// Open opens the file or directory name of the tree for reading; name is a
// path in the tree, with or without a leading "/". A FIFO or device does
// not block the open (it is refused where a regular file is read).
func (s *Sysroot) Open(name string) (*os.File, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, &fs.PathError{Op: "open", Path: s.display(name), Err: syscall.EINVAL}
	}
	f, err := s.open(name)
	if errors.Is(err, fs.ErrNotExist) {
		// A link that led elsewhere in the tree than its target on this
		// machine: say so, or "no such file" for a file plainly there is
		// a riddle.
		if rel, rerr := s.resolve(name, true); rerr == nil && "/"+rel != path.Clean("/"+name) {
			return nil, fmt.Errorf("%w (its links lead to /%s in the image tree)", err, rel)
		}
	}
	return f, err
}

func (s *Sysroot) open(name string) (*os.File, error) {
	if !s.noOpenat2.Load() {
		f, err := s.openat2(name)
		if !errors.Is(err, errors.ErrUnsupported) {
			return f, err
		}
		s.noOpenat2.Store(true)
	}
	rel, err := s.resolve(name, false)
	if err != nil {
		return nil, err
	}
	f, err := s.root.OpenFile(rel, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		// Only a tree changed since resolve gets here.
		return nil, &fs.PathError{Op: "open", Path: s.display(name), Err: errors.Unwrap(err)}
	}
	return f, nil
}

// HostPath returns the host path of name with every link resolved inside
// the tree: a path with no link in it, to name the file to other programs
// (a gen_init_cpio list). Read through Open; a path is only as safe as
// the tree stays unchanged.
func (s *Sysroot) HostPath(name string) (string, error) {
	rel, err := s.resolve(name, false)
	if err != nil {
		return "", err
	}
	if _, err := s.root.Lstat(rel); err != nil {
		return "", &fs.PathError{Op: "lstat", Path: s.display(name), Err: errors.Unwrap(err)}
	}
	return filepath.Join(s.dir, filepath.FromSlash(rel)), nil
}

// resolve returns name as a path below the root with every link resolved
// inside the tree, component by component, as RESOLVE_IN_ROOT does. The
// last component may be missing; with partial, any may be, and the rest
// of the path is taken as it stands from the first that is.
func (s *Sysroot) resolve(name string, partial bool) (string, error) {
	fail := func(err error) (string, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", &fs.PathError{Op: "open", Path: s.display(name), Err: err}
	}
	var resolved []string // components below the root, none of them a link
	todo := splitPath(name)
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		rel := path.Join(path.Join(resolved...), c)
		fi, err := s.root.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) && (len(todo) == 0 || partial) {
			resolved = append(append(resolved, c), todo...)
			break
		}
		if err != nil {
			return fail(err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if links++; links > maxSymlinks {
			return fail(syscall.ELOOP)
		}
		target, err := s.root.Readlink(rel)
		if err != nil {
			return fail(err)
		}
		if path.IsAbs(target) {
			resolved = resolved[:0]
		}
		todo = append(splitPath(target), todo...)
	}
	if len(resolved) == 0 {
		return ".", nil
	}
	return path.Join(resolved...), nil
}

func splitPath(p string) []string {
	var out []string
	for c := range strings.SplitSeq(filepath.ToSlash(p), "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// ReadFile reads the regular file name of the tree, refusing one larger
// than limit bytes.
func (s *Sysroot) ReadFile(name string, limit int64) ([]byte, error) {
	return readFileFS(s.FS("/"), strings.TrimLeft(path.Clean("/"+name), "/"), limit, ErrBadEntry)
}

// FS returns the tree below its directory dir as an fs.FS, for fs.WalkDir,
// fs.ReadFile and FindKernel.
func (s *Sysroot) FS(dir string) fs.FS {
	return sysrootFS{s: s, dir: path.Clean("/" + dir)}
}

type sysrootFS struct {
	s   *Sysroot
	dir string // in the tree, absolute
}

func (f sysrootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	file, err := f.s.Open(path.Join(f.dir, name))
	if err != nil {
		return nil, err // a *os.File's nil would be a non-nil fs.File
	}
	return file, nil
}

// hostDir is a host directory as an fs.FS whose errors name host paths
// (os.DirFS's name the relative path alone).
type hostDir string

func (d hostDir) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := os.OpenFile(filepath.Join(string(d), filepath.FromSlash(name)), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// readFileFS reads the regular file name of fsys, refusing one larger
// than limit bytes or not regular with an error wrapping bad.
func readFileFS(fsys fs.FS, name string, limit int64, bad error) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("builder: %s: %w: not a regular file (%v)", fileName(f, name), bad, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("builder: read %s: %w", fileName(f, name), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("builder: %w: %s is larger than %d bytes", bad, fileName(f, name), limit)
	}
	return b, nil
}

// fileName names an open file for messages: an *os.File knows the path
// it was opened by.
func fileName(f fs.File, name string) string {
	if o, ok := f.(*os.File); ok {
		return o.Name()
	}
	return name
}

// statFS is fs.Stat of fsys, following links (inside a Sysroot's tree).
func statFS(fsys fs.FS, name string) (fs.FileInfo, error) {
	return fs.Stat(fsys, strings.TrimLeft(path.Clean("/"+name), "/"))
}

// Kernel finds the kernel release kver in the tree (FindKernel); with kver
// empty, the tree must hold exactly one kernel, else the error
// (ErrSeveralKernels) lists them.
func (s *Sysroot) Kernel(kver string) (*Kernel, error) {
	fsys := s.FS("/")
	if kver == "" {
		found := TreeKernels(fsys)
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("builder: %w in the image tree %s: looked for %s and for modules in %s", ErrNoKernel, s.dir,
				strings.Join(KernelImagePaths("KVER"), ", "), strings.Join(ModulesDirPaths("KVER"), ", "))
		case 1:
			kver = found[0]
		default:
			return nil, fmt.Errorf("builder: %w: %s; choose one with --kver", ErrSeveralKernels, strings.Join(found, ", "))
		}
	}
	k, err := FindKernel(fsys, kver)
	if err != nil {
		return nil, err
	}
	if err := k.Missing(); err != nil {
		return nil, fmt.Errorf("%w in the image tree %s, which has: %s", err, s.dir, orNone(TreeKernels(fsys)))
	}
	return k, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// TreeKernels lists the kernel releases of a tree read as "/": those with
// a /boot/vmlinuz-KVER, or a modules directory holding an index file or
// the kernel image, sorted.
func TreeKernels(fsys fs.FS) []string {
	var rels []string
	add := func(kver string) {
		if kver != "" && !slices.Contains(rels, kver) {
			if k, err := FindKernel(fsys, kver); err == nil && k.Found() {
				rels = append(rels, kver)
			}
		}
	}
	if ents, err := fs.ReadDir(fsys, "boot"); err == nil {
		for _, e := range ents {
			if kver, ok := strings.CutPrefix(e.Name(), "vmlinuz-"); ok {
				add(kver)
			}
		}
	}
	for _, mr := range moduleRoots {
		ents, err := fs.ReadDir(fsys, strings.TrimPrefix(mr, "/"))
		if err != nil {
			continue
		}
		for _, e := range ents {
			add(e.Name())
		}
	}
	slices.Sort(rels)
	return rels
}
