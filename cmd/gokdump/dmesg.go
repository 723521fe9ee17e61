package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/printk"
)

func init() {
	register(&command{
		name:  "dmesg",
		args:  "DUMP | DIR",
		short: "print the crashed kernel's log from a dump (ELF or kdump-compressed), as makedumpfile --dump-dmesg does",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			return func(args []string, s streams) error {
				if err := needArgs(args, "DUMP | DIR"); err != nil {
					return err
				}
				return runDmesg(args[0], s.out, s.err)
			}
		},
	})
}

// readLog opens a dump and reads its kernel log. A log of which not one
// record reads is an error: dmesg then exits 1.
func readLog(path string) (*anydump.Dump, *printk.Log, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		if file := dumpFileIn(path); file != "" {
			path = file
		}
	}
	d, err := anydump.Open(path)
	if err != nil {
		return nil, nil, explainOpen(path, err)
	}
	l, err := d.Log()
	if err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, explainLog(err))
	}
	return d, l, nil
}

func runDmesg(path string, stdout, stderr io.Writer) error {
	d, l, err := readLog(path)
	if err != nil {
		return err
	}
	defer d.Close()
	w := bufio.NewWriter(stdout)
	if err := l.WriteDmesg(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if l.Skipped > 0 {
		fmt.Fprintf(stderr, "gokdump dmesg: %d damaged records skipped\n", l.Skipped)
	}
	if l.Dropped > 0 {
		fmt.Fprintf(stderr, "gokdump dmesg: the %d oldest records not read: the log is larger than the reader holds (%d MiB)\n",
			l.Dropped, printk.MaxLogMemory>>20)
	}
	return nil
}
