package crashdir

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Base is an open base directory: the parent of the dump directories.
// Everything done through it is relative to its descriptor.
type Base struct {
	fd   int
	path string
}

// OpenBase opens the directory rel under root, creating missing components
// with mode 0700. root is trusted (the capture's mount point) and may be a
// symlink; below it the walk opens one component at a time with
// O_NOFOLLOW|O_DIRECTORY, so a symlink anywhere in rel is refused rather
// than followed, even one swapped in during the walk. rel may not climb
// out of root with "..".
func OpenBase(root, rel string) (*Base, error) {
	rel = filepath.Clean("/" + rel) // "/.." cleans to "/": nothing climbs out
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("crashdir: open %s: %w", root, err)
	}
	path := filepath.Clean(root)
	for _, part := range strings.Split(strings.TrimPrefix(rel, "/"), "/") {
		if part == "" {
			continue
		}
		path = filepath.Join(path, part)
		nfd, err := openDirAt(fd, part, path, true)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd = nfd
	}
	return &Base{fd: fd, path: path}, nil
}

// openDirAt opens directory name in dirfd without following a symlink,
// creating it (0700) first when create is set and it is missing.
func openDirAt(dirfd int, name, path string, create bool) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(dirfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("crashdir: mkdir %s: %w", path, err)
		}
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var st unix.Stat_t
			if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return -1, fmt.Errorf("crashdir: %s is a symlink; refusing to follow it", path)
			}
			return -1, fmt.Errorf("crashdir: %s is not a directory", path)
		}
		return -1, fmt.Errorf("crashdir: open %s: %w", path, err)
	}
	return fd, nil
}

// Path returns the base directory's path, for messages.
func (b *Base) Path() string { return b.path }

// Close closes the base directory.
func (b *Base) Close() error { return unix.Close(b.fd) }

// Create makes a new dump directory named for t (mode 0700). If that name
// is taken (two crashes in one second, a clock reset), a suffix -1, -2, …
// is added: an older dump is never reused. On a filesystem that refuses
// the name (FAT: no ':'), TimeLayoutFAT is used. A t that cannot name a
// directory (see Nameable) is replaced by the current time.
func (b *Base) Create(t time.Time) (*Dir, error) {
	name, path, err := b.reserve(t)
	if err != nil {
		return nil, err
	}
	fd, err := openDirAt(b.fd, name, path, false)
	if err != nil {
		return nil, err
	}
	// The umask may have taken bits away, never added them; still,
	// say what we mean. vfat refuses modes its mount options do not
	// give: best effort.
	_ = unix.Fchmod(fd, 0o700)
	if err := unix.Fsync(b.fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("crashdir: fsync %s: %w", b.path, err)
	}
	return &Dir{fd: fd, name: name, path: path}, nil
}

// reserve makes the empty directory (0700) that names a dump made at t,
// with the first free -N suffix, and returns its name and path.
func (b *Base) reserve(t time.Time) (name, path string, err error) {
	t = nameable(t)
	layout := TimeLayout
	for seq := 0; seq <= maxSeq; seq++ {
		name := nameIn(layout, t, seq)
		err := unix.Mkdirat(b.fd, name, 0o700)
		if errors.Is(err, unix.EINVAL) && layout == TimeLayout {
			layout, seq = TimeLayoutFAT, -1
			continue
		}
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		path := filepath.Join(b.path, name)
		if err != nil {
			return "", "", fmt.Errorf("crashdir: mkdir %s: %w", path, err)
		}
		return name, path, nil
	}
	return "", "", fmt.Errorf("crashdir: no free name for %s in %s", Name(t, 0), b.path)
}

// stagePrefix begins the names of the directories Stage makes: hidden,
// and never parsed as a dump directory's, so Scan and Prune pass them by.
const stagePrefix = ".staging-"

// Stage makes a hidden directory in b (0700) in which to assemble a dump
// whose crash time is not known yet (savecore learns it from the dump it
// rebuilds). Publish gives it its name; Discard removes it. One left
// behind by a run that was killed is named .staging-*.
func (b *Base) Stage() (*Dir, error) {
	for range 100 {
		name := stagePrefix + strconv.FormatUint(rand.Uint64(), 36)
		path := filepath.Join(b.path, name)
		err := unix.Mkdirat(b.fd, name, 0o700)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("crashdir: mkdir %s: %w", path, err)
		}
		fd, err := openDirAt(b.fd, name, path, false)
		if err != nil {
			return nil, err
		}
		_ = unix.Fchmod(fd, 0o700)
		return &Dir{fd: fd, name: name, path: path}, nil
	}
	return nil, fmt.Errorf("crashdir: no free staging name in %s", b.path)
}

// Publish renames d, made by Stage, to the name of a dump made at t, as
// Create would name it, and syncs b. d stays open under its new name.
func (b *Base) Publish(d *Dir, t time.Time) error {
	if !strings.HasPrefix(d.name, stagePrefix) {
		return fmt.Errorf("crashdir: %s is not a staging directory", d.path)
	}
	name, path, err := b.reserve(t)
	if err != nil {
		return err
	}
	// Onto the empty directory just made: rename(2) replaces an empty
	// directory atomically and refuses one that is not.
	if err := unix.Renameat(b.fd, d.name, b.fd, name); err != nil {
		_ = unix.Unlinkat(b.fd, name, unix.AT_REMOVEDIR)
		return fmt.Errorf("crashdir: rename %s to %s: %w", d.path, path, err)
	}
	d.name, d.path = name, path
	if err := unix.Fsync(b.fd); err != nil {
		return fmt.Errorf("crashdir: fsync %s: %w", b.path, err)
	}
	return nil
}

// Discard removes d, made by Stage and not published, with the files of
// ours in it, and closes it. It removes nothing else: a staging directory
// that holds anything more stays.
func (b *Base) Discard(d *Dir) error {
	if !strings.HasPrefix(d.name, stagePrefix) {
		return fmt.Errorf("crashdir: %s is not a staging directory", d.path)
	}
	d.Close()
	return b.remove(d.name)
}

// Scan lists the dump directories in b, oldest first: entries whose name
// parses as a dump directory's, that are directories (not symlinks) and
// that hold at least one of our files. A vmcore-incomplete that its
// writer holds locked is InProgress.
func (b *Base) Scan() ([]Dump, error) {
	names, err := readDirNames(b.fd)
	if err != nil {
		return nil, fmt.Errorf("crashdir: read %s: %w", b.path, err)
	}
	var out []Dump
	for _, name := range names {
		t, seq, ok := ParseName(name)
		if !ok {
			continue
		}
		path := filepath.Join(b.path, name)
		fd, err := openDirAt(b.fd, name, path, false)
		if err != nil {
			continue // a symlink, a file, or gone: not ours
		}
		d, ok := scanDir(fd, path)
		unix.Close(fd)
		if !ok {
			continue
		}
		d.Name, d.Time, d.Seq = name, t, seq
		out = append(out, d)
	}
	sortDumps(out)
	return out, nil
}

// scanDir reads one dump directory; ok is false when it holds none of our
// files.
func scanDir(fd int, path string) (d Dump, ok bool) {
	d.Dir = path
	names, err := readDirNames(fd)
	if err != nil {
		return d, false
	}
	var have [3]bool // vmcore, vmcore-incomplete, dmesg
	var size [2]int64
	for _, n := range names {
		var st unix.Stat_t
		if !ours(n) || unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			d.Foreign = append(d.Foreign, n)
			continue
		}
		switch n {
		case VMCore:
			have[0], size[0] = true, st.Size
		case VMCoreIncomplete:
			have[1], size[1] = true, st.Size
		case DmesgFile:
			have[2] = true
		}
	}
	d.Dmesg = have[2]
	switch {
	case have[0]:
		d.State, d.File, d.Size = Complete, filepath.Join(path, VMCore), size[0]
		if have[1] {
			// Not something we leave behind; keep it out of our hands.
			d.Foreign = append(d.Foreign, VMCoreIncomplete)
		}
	case have[1]:
		d.State, d.File, d.Size = Incomplete, filepath.Join(path, VMCoreIncomplete), size[1]
		if locked(fd, VMCoreIncomplete) {
			d.State = InProgress
		}
	case have[2]:
		d.State = NoDump
	default:
		return d, false
	}
	return d, true
}

// locked reports whether another open file holds a lock on name in fd.
func locked(fd int, name string) bool {
	f, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(f)
	err = unix.Flock(f, unix.LOCK_SH|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}

func readDirNames(fd int) ([]string, error) {
	// A duplicate descriptor: os.File.Close closes what it is given.
	// Close-on-exec, as every descriptor of the capture.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	return f.Readdirnames(-1)
}

// Prune removes the oldest dump directories of b until at most keep of
// ours remain, and returns what it removed; keep 0 removes nothing. It
// removes only what Scan calls a dump with no foreign entries, never one
// in progress, and inside it only our own file names, so it cannot reach
// anything outside b nor anything we did not write. A failure to remove
// one directory does not stop the others.
func (b *Base) Prune(keep int) ([]Dump, error) {
	ds, err := b.Scan()
	if err != nil {
		return nil, err
	}
	var removed []Dump
	var errs []error
	for _, d := range toPrune(ds, keep) {
		if err := b.remove(d.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, d)
	}
	if len(removed) > 0 {
		if err := unix.Fsync(b.fd); err != nil {
			errs = append(errs, fmt.Errorf("crashdir: fsync %s: %w", b.path, err))
		}
	}
	return removed, errors.Join(errs...)
}

func (b *Base) remove(name string) error {
	path := filepath.Join(b.path, name)
	fd, err := openDirAt(b.fd, name, path, false)
	if err != nil {
		return err
	}
	for _, n := range []string{VMCore, VMCoreIncomplete, DmesgFile, KexecDmesgFile} {
		if err := unix.Unlinkat(fd, n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			unix.Close(fd)
			return fmt.Errorf("crashdir: remove %s/%s: %w", path, n, err)
		}
	}
	unix.Close(fd)
	// Fails if anything else appeared meanwhile: then it stays.
	if err := unix.Unlinkat(b.fd, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("crashdir: remove %s: %w", path, err)
	}
	return nil
}

// Scan lists the dump directories under the base directory path, oldest
// first (see Base.Scan). A missing base directory holds no dumps.
func Scan(base string) ([]Dump, error) {
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crashdir: open %s: %w", base, err)
	}
	b := &Base{fd: fd, path: filepath.Clean(base)}
	defer b.Close()
	return b.Scan()
}

// Dir is an open dump directory.
type Dir struct {
	fd   int
	name string
	path string
}

// Name returns the directory's name in its base directory.
func (d *Dir) Name() string { return d.name }

// Path returns the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// Close closes the directory; closing it again does nothing.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Sync fsyncs the directory so that new entries and renames are durable.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return fmt.Errorf("crashdir: fsync %s: %w", d.path, err)
	}
	return nil
}

// CreateFile creates name in d for reading and writing: 0600, exclusive,
// no symlink followed. The file is locked (flock) until closed, so that
// Scan reports a dump being written as InProgress.
func (d *Dir) CreateFile(name string) (*os.File, error) {
	if strings.ContainsRune(name, '/') || name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("crashdir: bad file name %q", name)
	}
	path := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("crashdir: create %s: %w", path, err)
	}
	// Not every filesystem locks; the lock only informs Scan.
	_ = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	return os.NewFile(uintptr(fd), path), nil
}

// Commit makes f, created in d by CreateFile, durable under the name
// final: it syncs f, renames it (never over an existing file), syncs d
// and closes f. final exists only with all its data on disk; f stays
// locked until it has its final name.
func (d *Dir) Commit(f *os.File, final string) error {
	name := filepath.Base(f.Name())
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("crashdir: fsync %s: %w", f.Name(), err)
	}
	err := unix.Renameat2(d.fd, name, d.fd, final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_NOREPLACE: the directory is new
		// and ours, so a plain rename replaces nothing.
		var st unix.Stat_t
		if unix.Fstatat(d.fd, final, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			err = unix.EEXIST
		} else {
			err = unix.Renameat(d.fd, name, d.fd, final)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("crashdir: rename %s to %s: %w", f.Name(), final, err)
	}
	if err := d.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("crashdir: close %s: %w", f.Name(), err)
	}
	return nil
}

// Create makes base (0700, parents as needed, no symlink followed
// anywhere on the way from /) and a new dump directory in it named for t,
// and returns its path. The capture uses OpenBase and Base.Create, which
// keep descriptors instead of paths.
func Create(base string, t time.Time) (string, error) {
	if !filepath.IsAbs(base) {
		abs, err := filepath.Abs(base)
		if err != nil {
			return "", fmt.Errorf("crashdir: %w", err)
		}
		base = abs
	}
	b, err := OpenBase("/", base)
	if err != nil {
		return "", err
	}
	defer b.Close()
	d, err := b.Create(t)
	if err != nil {
		return "", err
	}
	d.Close()
	return d.path, nil
}

// Remove removes the file name from d (a file the capture created and
// gave up on).
func (d *Dir) Remove(name string) error {
	if !ours(name) {
		return fmt.Errorf("crashdir: %q is not a dump file name", name)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return fmt.Errorf("crashdir: remove %s: %w", filepath.Join(d.path, name), err)
	}
	return nil
}
