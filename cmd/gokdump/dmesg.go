package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/internal/config"
)

func init() {
	register(&command{
		name:  "dmesg",
		args:  "DUMP | DIR | s3://BUCKET/PREFIX/HOST/TIME",
		short: "print the crashed kernel's log from a dump (ELF or kdump-compressed), as makedumpfile --dump-dmesg does",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var cf configFlag
			cf.define(fs, config.DefaultPath, "the config naming s3_endpoint, s3_credentials and ca_file, for an s3:// dump")
			return func(args []string, s streams) error {
				if err := needArgs(args, "DUMP | DIR"); err != nil {
					return err
				}
				if strings.HasPrefix(args[0], config.S3Prefix) {
					return runDmesgS3(cf, args[0], s)
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
	return writeLog(l, stdout, stderr)
}

// writeLog prints a dump's log as dmesg does.
func writeLog(l *printk.Log, stdout, stderr io.Writer) error {
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
