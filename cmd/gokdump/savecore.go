package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/crashdir"
)

func init() {
	register(&command{
		name:  "savecore",
		args:  "DEVICE|STREAM DIR",
		short: "turn a flattened stream (a raw device target, save --flat, makedumpfile -F) back into DIR/<crash time>/vmcore",
		long: `DIR may be, or go through, a symbolic link (/var/crash often is one): the
path given is followed, and savecore says where it leads; links below it,
in the dump directories, are not.

The directory is named for the crash time the dump holds (VMCOREINFO
CRASHTIME). The kernel log comes from the device's log trailer when it is
of the same crash, else from the dump. Run again on the same device, it
finds the dump already saved and makes no second copy. A stream cut short
or missing records gives vmcore-incomplete, flagged incomplete.

exit codes: 0 saved (or saved before), complete; 1 failed; 2 the command
line is wrong; 3 saved, but incomplete (--clear then leaves DEVICE as it
is); 4 no flattened stream on DEVICE: nothing to recover`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			clearDev := fs.Bool("clear", false, "after a complete save, erase the stream's header and log trailer on DEVICE so the dump is not saved twice")
			return func(args []string, s streams) error {
				if err := needArgs(args, "DEVICE|STREAM", "DIR"); err != nil {
					return err
				}
				return runSavecore(args[0], args[1], *clearDev, s.out)
			}
		},
	})
}

// whyNow names a dump directory with no crash time to go by.
const whyNow = "now: neither the dump nor a log trailer gives a crash time"

// rebuilt is what savecore made of a flattened stream.
type rebuilt struct {
	file *os.File // vmcore-incomplete in the staging directory
	size int64
	// streamErr: the stream ended badly (cut short, damaged); openErr:
	// what it held is no dump that opens.
	streamErr, openErr error
	// crashTime is the dump's (zero when it holds none), timeFrom says
	// where it was read.
	crashTime time.Time
	timeFrom  string
	// flagged: the dump's writer flagged it incomplete; gaps: what the
	// stream's records left out ("" if nothing).
	flagged bool
	gaps    string
	dump    *anydump.Dump // open when openErr is nil
}

func (r *rebuilt) complete() bool {
	return r.streamErr == nil && r.openErr == nil && !r.flagged && r.gaps == ""
}

func runSavecore(device, base string, clearDev bool, w io.Writer) error {
	in, err := os.Open(device)
	if err != nil {
		return err
	}
	defer in.Close()
	// A block device stats as size 0: ask where its end is.
	size, err := in.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("%s: %w", device, err)
	}
	head := make([]byte, 4096)
	n, err := in.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", device, err)
	}
	head = head[:n]
	if !diskdump.IsFlattened(head) {
		found := describeData(in, size, head)
		if t, err := crashdir.ReadRawDmesg(in, size); err == nil {
			found += fmt.Sprintf("; a kernel log trailer of a crash at %s is at the end", time.Unix(t.CrashTime, 0).UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%w: no makedumpfile flattened stream at offset 0 of %s (found: %s)", errNoDump, device, found)
	}
	// The log the capture wrote to the end of the device before the dump:
	// it is there even when the dump was cut short.
	trailer, err := crashdir.ReadRawDmesg(in, size)
	if err != nil {
		trailer = nil
		if !errors.Is(err, crashdir.ErrNoRawDmesg) {
			fmt.Fprintf(w, "warning: %s: log trailer: %v\n", device, err)
		}
	}

	b, err := openDumpBase(base, w)
	if err != nil {
		return err
	}
	defer b.Close()
	stage, err := b.Stage()
	if err != nil {
		return err
	}
	defer stage.Close()
	r, err := rebuild(in, stage)
	if err != nil {
		b.Discard(stage)
		return err
	}
	defer r.file.Close()
	if r.dump != nil {
		defer r.dump.Close()
	}

	// Which log goes with the dump, and which time names it.
	useTrailer, note := matchTrailer(device, trailer, r)
	if note != "" {
		fmt.Fprintln(w, note)
	}
	when, why := r.crashTime, "the crash time in the dump ("+r.timeFrom+")"
	switch {
	case !when.IsZero():
	case useTrailer && trailer.CrashTime > 0 && crashdir.Nameable(time.Unix(trailer.CrashTime, 0)):
		when, why = time.Unix(trailer.CrashTime, 0), "the crash time in the log trailer"
	default:
		when, why = time.Now(), whyNow
	}

	if r.size == 0 && !useTrailer {
		b.Discard(stage)
		return fmt.Errorf("%s: the stream holds nothing: %w", device, r.streamErr)
	}
	if same := findSaved(b, when, r, why == whyNow); same != nil {
		b.Discard(stage)
		fmt.Fprintf(w, "%s: already saved as %s (same crash time, same %d bytes): nothing new saved\n", device, same.File, same.Size)
		if !r.complete() {
			return fmt.Errorf("%w: %s", errIncomplete, r.problem(device))
		}
		if clearDev {
			return clearDevice(device, size, useTrailer, w)
		}
		return nil
	}

	// The log first: it is worth having even when the dump is not.
	if useTrailer {
		if err := writeFile(stage, crashdir.DmesgFile, trailer.Text); err != nil {
			fmt.Fprintf(w, "warning: %s: %v\n", crashdir.DmesgFile, err)
		}
	} else if r.dump != nil {
		if err := writeDmesgFrom(r.dump, stage); err != nil {
			fmt.Fprintf(w, "warning: %s: %v\n", crashdir.DmesgFile, err)
		}
	}
	if r.size == 0 {
		r.file.Close()
		stage.Remove(crashdir.VMCoreIncomplete)
	}
	if err := b.Publish(stage, when); err != nil {
		r.file.Close()
		return fmt.Errorf("%w (what was rebuilt is in %s)", err, stage.Path())
	}
	fmt.Fprintf(w, "%s: named for %s\n", stage.Path(), why)
	if r.size == 0 {
		return fmt.Errorf("%s: the stream holds nothing (%w); the log is in %s", device, r.streamErr, stage.Path())
	}
	if !r.complete() {
		r.file.Close()
		saved := filepath.Join(stage.Path(), crashdir.VMCoreIncomplete)
		if clearDev {
			fmt.Fprintf(w, "--clear: %s left as it is: the dump is not complete\n", device)
		}
		if r.openErr != nil {
			return fmt.Errorf("%s; what it held is in %s", r.problem(device), saved)
		}
		return fmt.Errorf("%w: %s; saved as %s, flagged incomplete", errIncomplete, r.problem(device), saved)
	}
	if err := stage.Commit(r.file, crashdir.VMCore); err != nil {
		return err
	}
	fmt.Fprintf(w, "saved %s\n", filepath.Join(stage.Path(), crashdir.VMCore))
	if clearDev {
		return clearDevice(device, size, useTrailer, w)
	}
	return nil
}

// openDumpBase opens DIR, the base directory savecore puts dump
// directories in, creating what is missing of it (0700). The path typed on
// the command line is trusted: symbolic links on it are followed, as
// /var/crash often is one (to /var/lib/crash or a bigger disk), and where
// it leads is said. Below it nothing is followed: the dump directory and
// its files are reached with O_NOFOLLOW (crashdir).
func openDumpBase(dir string, w io.Writer) (*crashdir.Base, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// The part that exists is the trusted root; the rest is created.
	root, rel := abs, ""
	for {
		fi, err := os.Stat(root)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", root)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) || root == filepath.Dir(root) {
			return nil, err
		}
		rel = filepath.Join(filepath.Base(root), rel)
		root = filepath.Dir(root)
	}
	if real, err := filepath.EvalSymlinks(root); err == nil && real != root {
		fmt.Fprintf(w, "%s leads to %s (a symbolic link on the path given is followed): the dump goes there\n", root, real)
	}
	return crashdir.OpenBase(root, rel)
}

// problem says why a rebuilt dump is not complete.
func (r *rebuilt) problem(device string) string {
	switch {
	case r.streamErr != nil:
		return fmt.Sprintf("the stream on %s is cut short or damaged: %v", device, r.streamErr)
	case r.openErr != nil:
		return fmt.Sprintf("the stream on %s holds no dump that opens: %v", device, r.openErr)
	case r.gaps != "":
		return fmt.Sprintf("the stream on %s is missing records: %s", device, r.gaps)
	}
	return fmt.Sprintf("the capture did not finish: the dump on %s is flagged incomplete", device)
}

// rebuild unflattens the stream on in into vmcore-incomplete in dir and
// looks at what it got: whether it opens, its crash time, whether the
// stream's records left anything out. Only a failure to write the file
// is an error; a bad stream is what rebuilt reports.
func rebuild(in *os.File, dir *crashdir.Dir) (*rebuilt, error) {
	out, err := dir.CreateFile(crashdir.VMCoreIncomplete)
	if err != nil {
		return nil, err
	}
	r := &rebuilt{file: out}
	var cov extents
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return nil, err
	}
	r.streamErr = diskdump.Unflatten(bufio.NewReaderSize(in, 1<<20), coverWriter{out, &cov})
	var werr *writeError
	if errors.As(r.streamErr, &werr) {
		out.Close()
		return nil, werr.err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return nil, err
	}
	fi, err := out.Stat()
	if err != nil {
		out.Close()
		return nil, err
	}
	r.size = fi.Size()
	if r.size == 0 {
		return r, nil
	}
	r.dump, r.openErr = anydump.Open(out.Name())
	if r.openErr != nil {
		return r, nil
	}
	r.flagged = r.dump.Incomplete
	r.crashTime, r.timeFrom = dumpCrashTime(r.dump)
	switch {
	case cov.overflow:
		r.gaps = "too many separate records to check"
	case r.dump.KdumpFile != nil:
		r.gaps, err = kdumpGaps(r.dump.KdumpFile, &cov)
	case r.dump.ELF != nil:
		r.gaps = elfGaps(r.dump.ELF, &cov)
	}
	if err != nil {
		r.gaps = err.Error()
	}
	if r.gaps == "" {
		// What the records covered must also read back as a dump: every
		// descriptor inside the file, no page data in a hole.
		if err := r.dump.Check(); err != nil {
			r.gaps = err.Error()
		}
	}
	if !r.complete() && !r.flagged {
		// Say so in the file itself, as the capture does for a dump it
		// could not finish: every reader then knows.
		if err := markIncomplete(r.dump, out); err != nil {
			return nil, err
		}
		r.flagged = true
	}
	return r, nil
}

// dumpCrashTime is the crash time a dump holds: VMCOREINFO's CRASHTIME,
// else the kdump header's timestamp; zero when neither is there or makes a
// directory name.
func dumpCrashTime(d *anydump.Dump) (time.Time, string) {
	if d.VMCOREINFO != nil {
		if t, ok := d.VMCOREINFO.CrashTime(); ok && t > 0 && crashdir.Nameable(time.Unix(t, 0)) {
			return time.Unix(t, 0), "VMCOREINFO CRASHTIME"
		}
	}
	if d.KdumpFile != nil {
		if t := d.KdumpFile.Header.Timestamp; !t.IsZero() && crashdir.Nameable(t) {
			return t, "the kdump header's timestamp"
		}
	}
	return time.Time{}, ""
}

// matchTrailer decides whether the log trailer is the dump's: a trailer
// from another crash (an older one the capture could not replace, or a
// later one whose dump never reached the device) is left alone. note says
// what was decided, "" when there is nothing to say.
func matchTrailer(device string, trailer *crashdir.RawDmesg, r *rebuilt) (use bool, note string) {
	if trailer == nil {
		return false, ""
	}
	tt := time.Unix(trailer.CrashTime, 0).UTC()
	switch {
	case r.crashTime.IsZero() || trailer.CrashTime <= 0:
		return true, fmt.Sprintf("%s: the log trailer is used as the dump's, unchecked: no crash time to compare", device)
	case r.crashTime.Unix() == trailer.CrashTime:
		return true, ""
	case trailer.CrashTime < r.crashTime.Unix():
		return false, fmt.Sprintf("%s: the log trailer is of an older crash (%s) than the dump (%s): ignored, the log is read from the dump",
			device, tt.Format(time.RFC3339), r.crashTime.UTC().Format(time.RFC3339))
	}
	return false, fmt.Sprintf("%s: the log trailer is of a later crash (%s) than the dump (%s), whose dump is not on the device: "+
		"left there, the log is read from the dump", device, tt.Format(time.RFC3339), r.crashTime.UTC().Format(time.RFC3339))
}

// findSaved returns the dump directory in b that already holds what r
// rebuilt: named for the same second (any, when anyTime: a dump with no
// crash time was named for when it was saved), with a dump file of the
// same state, size and bytes.
func findSaved(b *crashdir.Base, when time.Time, r *rebuilt, anyTime bool) *crashdir.Dump {
	if r.size == 0 {
		return nil
	}
	ds, err := b.Scan()
	if err != nil {
		return nil
	}
	want := crashdir.Incomplete
	if r.complete() {
		want = crashdir.Complete
	}
	for i := range ds {
		d := &ds[i]
		if (!anyTime && d.Time.Unix() != when.Unix()) || d.State != want || d.Size != r.size {
			continue
		}
		if same, err := sameContents(d.File, r.file); err == nil && same {
			return d
		}
	}
	return nil
}

// sameContents compares the file at path with f, byte for byte.
func sameContents(path string, f *os.File) (bool, error) {
	g, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer g.Close()
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(a)) {
		n, errA := f.ReadAt(a, off)
		m, errB := g.ReadAt(b, off)
		if n != m || !bytes.Equal(a[:n], b[:m]) {
			return false, nil
		}
		if errA != nil || errB != nil {
			if errors.Is(errA, io.EOF) && errors.Is(errB, io.EOF) {
				return true, nil
			}
			return false, errors.Join(errA, errB)
		}
	}
}

// clearDevice erases the stream's header on device, so the dump is not
// saved twice, and the log trailer when it was the dump's.
func clearDevice(device string, size int64, trailerToo bool, w io.Writer) error {
	dev, err := os.OpenFile(device, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer dev.Close()
	if _, err := dev.WriteAt(make([]byte, 4096), 0); err != nil {
		return fmt.Errorf("clear %s: %w", device, err)
	}
	if trailerToo {
		if err := crashdir.ClearRawDmesg(dev, size); err != nil {
			return fmt.Errorf("clear %s: %w", device, err)
		}
	}
	if err := dev.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(w, "cleared %s\n", device)
	return nil
}

// writeFile writes a small file into a dump directory, synced.
func writeFile(dir *crashdir.Dir, name string, data []byte) error {
	f, err := dir.CreateFile(name)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Sync(), f.Close())
}

// writeDmesgFrom saves a dump's kernel log beside it.
func writeDmesgFrom(d *anydump.Dump, dir *crashdir.Dir) error {
	l, err := d.Log()
	if err != nil {
		return err
	}
	f, err := dir.CreateFile(crashdir.DmesgFile)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = errors.Join(l.WriteDmesg(bw), bw.Flush(), f.Sync())
	return errors.Join(err, f.Close())
}
