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

	"github.com/gokdump/gokdump/capture/dumpdir"
	"github.com/gokdump/gokdump/capture/dumpfile"
	"github.com/gokdump/gokdump/capture/kdump"
	"github.com/gokdump/gokdump/capture/printk"
)

func init() {
	register(&command{
		name:  "savecore",
		args:  "DEVICE DIR",
		short: "rebuild a dump written to a raw device (makedumpfile's flattened stream) as DIR/<date>/vmcore",
		setup: func(fs *flag.FlagSet) func([]string) error {
			clearDev := fs.Bool("clear", false, "after a complete save, erase the stream's header on DEVICE so the dump is not saved twice")
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
	head := make([]byte, 4096)
	if _, err := io.ReadFull(in, head); err != nil {
		return fmt.Errorf("%s: %w", device, err)
	}
	if !kdump.IsFlattened(head) {
		return fmt.Errorf("%s holds no flattened dump stream", device)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dir, err := dumpdir.Create(base, time.Now())
	if err != nil {
		return err
	}
	out, err := dumpdir.CreateFile(dir, dumpdir.VMCoreIncomplete)
	if err != nil {
		return err
	}
	uerr := kdump.Unflatten(bufio.NewReaderSize(in, 1<<20), out)
	if err := out.Sync(); err != nil && uerr == nil {
		uerr = err
	}
	out.Close()
	if uerr != nil {
		return fmt.Errorf("%s: the stream is cut short or damaged; what it held is in %s: %w",
			device, filepath.Join(dir, dumpdir.VMCoreIncomplete), uerr)
	}
	d, err := dumpfile.Open(out.Name())
	if err != nil {
		return fmt.Errorf("rebuilt %s does not open: %w", out.Name(), err)
	}
	complete := !d.Incomplete
	if err := writeDmesgFile(d, dir); err != nil {
		fmt.Fprintf(w, "warning: %s: %v\n", dumpdir.DmesgFile, err)
	}
	d.Close()
	if !complete {
		return fmt.Errorf("the capture did not finish: %s is flagged incomplete", out.Name())
	}
	reopen, err := os.OpenFile(out.Name(), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := dumpdir.Commit(reopen, dir, dumpdir.VMCore); err != nil {
		return err
	}
	fmt.Fprintf(w, "saved %s\n", filepath.Join(dir, dumpdir.VMCore))
	if clearDev {
		dev, err := os.OpenFile(device, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer dev.Close()
		if _, err := dev.WriteAt(make([]byte, 4096), 0); err != nil {
			return fmt.Errorf("clear %s: %w", device, err)
		}
		return dev.Sync()
	}
	return nil
}

// writeDmesgFile saves the dump's kernel log beside it.
func writeDmesgFile(d *dumpfile.Dump, dir string) error {
	mem, err := d.Memory()
	if err != nil {
		return err
	}
	l, err := printk.Read(mem)
	if err != nil {
		return err
	}
	f, err := dumpdir.CreateFile(dir, dumpdir.DmesgFile)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = errors.Join(l.WriteDmesg(bw), bw.Flush(), f.Sync())
	return errors.Join(err, f.Close())
}
