package main

import (
	"bufio"
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
		args:  "DEVICE DIR",
		short: "rebuild a dump written to a raw device (makedumpfile's flattened stream) as DIR/<date>/vmcore",
		setup: func(fs *flag.FlagSet) func([]string) error {
			clearDev := fs.Bool("clear", false, "after a complete save, erase the stream's header and log trailer on DEVICE so the dump is not saved twice")
			return func(args []string) error {
				if len(args) != 2 {
					return errUsage
				}
				return runSavecore(args[0], args[1], *clearDev, os.Stdout)
			}
		},
	})
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
	if _, err := in.ReadAt(head, 0); err != nil {
		return fmt.Errorf("%s: %w", device, err)
	}
	if !diskdump.IsFlattened(head) {
		return fmt.Errorf("%s holds no flattened dump stream", device)
	}
	// The log the capture wrote to the end of the device before the dump:
	// it is there even when the dump was cut short.
	rawLog, logErr := crashdir.ReadRawDmesg(in, size)

	abs, err := filepath.Abs(base)
	if err != nil {
		return err
	}
	b, err := crashdir.OpenBase("/", abs)
	if err != nil {
		return err
	}
	defer b.Close()
	when := time.Now()
	if logErr == nil && rawLog.CrashTime > 0 {
		when = time.Unix(rawLog.CrashTime, 0)
	}
	dir, err := b.Create(when)
	if err != nil {
		return err
	}
	defer dir.Close()
	if logErr == nil {
		if err := writeFile(dir, crashdir.DmesgFile, rawLog.Text); err != nil {
			fmt.Fprintf(w, "warning: %s: %v\n", crashdir.DmesgFile, err)
		}
	}

	out, err := dir.CreateFile(crashdir.VMCoreIncomplete)
	if err != nil {
		return err
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return err
	}
	uerr := diskdump.Unflatten(bufio.NewReaderSize(in, 1<<20), out)
	if err := out.Sync(); err != nil && uerr == nil {
		uerr = err
	}
	if uerr != nil {
		out.Close()
		return fmt.Errorf("%s: the stream is cut short or damaged; what it held is in %s: %w",
			device, out.Name(), uerr)
	}
	d, err := anydump.Open(out.Name())
	if err != nil {
		out.Close()
		return fmt.Errorf("rebuilt %s does not open: %w", out.Name(), err)
	}
	complete := !d.Incomplete
	if logErr != nil {
		// No trailer (an older capture, a device too small for it): read
		// the log from the dump itself.
		if err := writeDmesgFrom(d, dir); err != nil {
			fmt.Fprintf(w, "warning: %s: %v\n", crashdir.DmesgFile, err)
		}
	}
	d.Close()
	if !complete {
		out.Close()
		return fmt.Errorf("the capture did not finish: %s is flagged incomplete", out.Name())
	}
	if err := dir.Commit(out, crashdir.VMCore); err != nil {
		return err
	}
	fmt.Fprintf(w, "saved %s\n", filepath.Join(dir.Path(), crashdir.VMCore))
	if !clearDev {
		return nil
	}
	dev, err := os.OpenFile(device, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer dev.Close()
	if _, err := dev.WriteAt(make([]byte, 4096), 0); err != nil {
		return fmt.Errorf("clear %s: %w", device, err)
	}
	if logErr == nil {
		if err := crashdir.ClearRawDmesg(dev, size); err != nil {
			return fmt.Errorf("clear %s: %w", device, err)
		}
	}
	return dev.Sync()
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
