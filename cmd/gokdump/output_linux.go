package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// An outFile is the file a command writes for the output path OUT: a
// temporary file beside it (O_EXCL, 0600) that takes OUT's name only
// once it is whole, so that a failed run leaves an existing OUT as it was
// and never an empty or partial file under its name.
type outFile struct {
	*os.File        // the temporary file
	path     string // OUT
	replace  bool   // OUT may be replaced (-f)
}

// checkOutput refuses an output path that cannot be written without
// losing something, before any input is opened: an existing OUT unless
// replace, an OUT that is a symbolic link or not a regular file, and an
// OUT that is one of the inputs or on the way to one (the same file
// through a hard or symbolic link, or a directory entry an input's path
// goes through). The refusals about inputs are usage errors.
func checkOutput(out string, replace bool, inputs ...string) error {
	ofi, err := os.Lstat(out)
	if errors.Is(err, os.ErrNotExist) {
		return checkOutDir(out)
	}
	if err != nil {
		return err
	}
	for _, in := range inputs {
		if err := notOnPath(out, ofi, in); err != nil {
			return err
		}
	}
	switch {
	case ofi.Mode()&os.ModeSymlink != 0:
		to, _ := os.Readlink(out)
		return fmt.Errorf("%s is a symbolic link to %s: not written through; name the file itself, or remove the link", out, to)
	case !ofi.Mode().IsRegular():
		return fmt.Errorf("%s exists and is not a regular file", out)
	case !replace:
		return fmt.Errorf("%s exists (-f replaces it once the new file is complete)", out)
	}
	return checkOutDir(out)
}

// notOnPath refuses an out (ofi its Lstat) that is the input in, or any
// directory entry on in's path.
func notOnPath(out string, ofi os.FileInfo, in string) error {
	if ifi, err := os.Stat(in); err == nil {
		if sfi, err := os.Stat(out); err == nil && os.SameFile(sfi, ifi) {
			return usagef("%s is the input %s (the same file): choose another output", out, in)
		}
	}
	abs, err := filepath.Abs(in)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		if pfi, err := os.Lstat(p); err == nil && os.SameFile(pfi, ofi) {
			if p == abs {
				return usagef("%s is the input %s: choose another output", out, in)
			}
			return usagef("%s is %s, on the way to the input %s: choose another output", out, p, in)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkOutDir checks that OUT's directory exists, so that a typo there is
// found before the input is read.
func checkOutDir(out string) error {
	dir := filepath.Dir(out)
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// createOutput creates the temporary file for OUT. Call checkOutput
// first, and commit or discard after.
func createOutput(out string, replace bool) (*outFile, error) {
	// CreateTemp opens with O_EXCL and mode 0600: a dump holds whatever
	// the kernel held, keys included.
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, err
	}
	return &outFile{File: f, path: out, replace: replace}, nil
}

// commit syncs the file and gives it OUT's name: over an existing OUT only
// when replace was asked for.
func (o *outFile) commit() error {
	return o.commitAs(o.path, o.replace)
}

// commitAs syncs the file and renames it to name, over an existing file
// only when replace is set. The file is closed in every case; on failure
// it stays under its temporary name, which the error gives.
func (o *outFile) commitAs(name string, replace bool) error {
	err := errors.Join(o.Sync(), o.Close())
	if err == nil {
		err = rename(o.Name(), name, replace)
	}
	if err != nil {
		return fmt.Errorf("%s kept as %s: %w", name, o.Name(), err)
	}
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		_ = d.Sync() // the rename is durable with it; best effort
		d.Close()
	}
	return nil
}

// discard removes the temporary file.
func (o *outFile) discard() {
	o.Close()
	os.Remove(o.Name())
}

// rename renames from to to, over an existing to only when replace is set.
func rename(from, to string, replace bool) error {
	if replace {
		return os.Rename(from, to)
	}
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_NOREPLACE here: a hard link fails on an existing
		// name as the rename should.
		if err = os.Link(from, to); err == nil {
			return os.Remove(from)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
