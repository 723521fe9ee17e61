package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/s3dump"
)

func init() {
	register(&command{
		name:  "ls",
		args:  "s3://BUCKET[/PREFIX]",
		short: "list the crashes in an S3 bucket, newest first, from their meta.json objects only",
		long: `Lists the crashes saved by an s3 target under PREFIX: crash time (UTC),
host, kernel release, size of the vmcore object, status (saved, incomplete,
failed, or uploading for a capture that was cut off), the panic message and
the crash's URL, which gokdump fetch, info and dmesg take. Only the
meta.json objects are read, never a dump.

The server and keys are those of --config (s3_endpoint, s3_region,
s3_credentials, ca_file). --json prints a list of {url, key, meta: the
meta.json fields} objects, with "error" for a meta.json that does not read.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			asJSON := fs.Bool("json", false, "print JSON")
			var cf configFlag
			cf.define(fs, config.DefaultPath, "the config naming s3_endpoint, s3_credentials and ca_file")
			return func(args []string, s streams) error {
				if err := needArgs(args, "s3://BUCKET[/PREFIX]"); err != nil {
					return err
				}
				return runLs(cf, args[0], *asJSON, s.out)
			}
		},
	})
	register(&command{
		name:  "fetch",
		args:  "s3://BUCKET/PREFIX/HOST/TIME DIR",
		short: "download a crash from an S3 bucket into DIR (0700, files 0600), checking the vmcore's sha256",
		long: `Downloads meta.json, vmcore-dmesg.txt and vmcore of one crash (a URL
gokdump ls prints) into DIR, which is created 0700 (or must be empty), each
file 0600. The vmcore's composite SHA-256 (meta.json's sha256, the SHA-256
of its parts' digests) is checked while it arrives; a mismatch leaves
vmcore.bad and exits 1. The vmcore is a kdump-compressed file: crash, drgn,
makedumpfile and gokdump open it as it is.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var cf configFlag
			cf.define(fs, config.DefaultPath, "the config naming s3_endpoint, s3_credentials and ca_file")
			return func(args []string, s streams) error {
				if err := needArgs(args, "s3://BUCKET/PREFIX/HOST/TIME", "DIR"); err != nil {
					return err
				}
				return runFetch(cf, args[0], args[1], s)
			}
		},
	})
}

// s3Client is the client of the config's s3_endpoint, and the bucket and
// key of url.
func s3Client(cf configFlag, url string) (*s3dump.Client, config.Target, error) {
	t, err := config.ParseS3URL(url)
	if err != nil {
		return nil, t, err
	}
	cfg, err := cf.load()
	if err != nil {
		return nil, t, err
	}
	if cfg.S3Endpoint == "" {
		return nil, t, fmt.Errorf("%s names no s3_endpoint: the server of %s", cf.path, url)
	}
	c, err := s3dump.FromConfig(cfg, nil)
	return c, t, err
}

func runLs(cf configFlag, url string, asJSON bool, w io.Writer) error {
	c, t, err := s3Client(cf, url)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	list, err := c.List(ctx, t.Bucket, t.Dir)
	if err != nil {
		return err
	}
	if asJSON {
		type row struct {
			URL   string       `json:"url"`
			Key   string       `json:"key"`
			Meta  *s3dump.Meta `json:"meta,omitempty"`
			Error string       `json:"error,omitempty"`
		}
		rows := make([]row, 0, len(list))
		for _, cr := range list {
			r := row{URL: config.S3Prefix + t.Bucket + "/" + cr.Key, Key: cr.Key}
			if cr.Err != nil {
				r.Error = cr.Err.Error()
			} else {
				r.Meta = &cr.Meta
			}
			rows = append(rows, r)
		}
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CRASH TIME (UTC)\tHOST\tKERNEL\tSIZE\tSTATUS\tPANIC\tURL")
	for _, cr := range list {
		url := config.S3Prefix + t.Bucket + "/" + cr.Key
		if cr.Err != nil {
			fmt.Fprintf(tw, "?\t?\t?\t?\tunreadable\t%s\t%s\n", printk.Printable(cr.Err.Error()), url)
			continue
		}
		m := cr.Meta
		status := m.Status
		if m.Status == "saved" && !m.Complete {
			status = "incomplete"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.CrashTime.UTC().Format(time.DateTime), printk.Printable(m.Host), printk.Printable(m.Release),
			sizeOf(m.Size), printk.Printable(status), printk.Printable(m.Panic), url)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(w, "no crashes under %s\n", url)
	}
	return nil
}

func runFetch(cf configFlag, url, dir string, s streams) error {
	c, t, err := s3Client(cf, url)
	if err != nil {
		return err
	}
	if t.Dir == "" {
		return fmt.Errorf("%s names no crash: give s3://BUCKET/PREFIX/HOST/TIME, as gokdump ls prints it", url)
	}
	key := strings.TrimSuffix(t.Dir, "/"+s3dump.VMCoreObject)
	start := time.Now()
	m, err := c.Fetch(context.Background(), t.Bucket, key, dir, nil)
	if err != nil {
		return err
	}
	el := time.Since(start).Seconds()
	fmt.Fprintf(s.out, "fetched %s/%s: %s in %.1fs, sha256 %s verified; %s, %s, %s\n", dir, s3dump.VMCoreObject, sizeOf(m.Size), el,
		m.SHA256, printk.Printable(m.Host), printk.Printable(m.Release), printk.Printable(m.Status))
	return nil
}

// openS3Dump opens the vmcore object of a crash URL for ranged reads.
func openS3Dump(cf configFlag, url string) (*anydump.Dump, *s3dump.ReaderAt, error) {
	c, t, err := s3Client(cf, url)
	if err != nil {
		return nil, nil, err
	}
	if t.Dir == "" {
		return nil, nil, fmt.Errorf("%s names no crash: give s3://BUCKET/PREFIX/HOST/TIME, as gokdump ls prints it", url)
	}
	key := t.Dir
	if !strings.HasSuffix(key, "/"+s3dump.VMCoreObject) {
		key += "/" + s3dump.VMCoreObject
	}
	r, err := c.OpenReaderAt(context.Background(), t.Bucket, key)
	if errors.Is(err, s3dump.ErrNotFound) {
		return nil, nil, fmt.Errorf("%s: no vmcore object (gokdump ls tells its status): %w", url, err)
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := anydump.OpenReader(config.S3Prefix+t.Bucket+"/"+key, r, r.Size())
	return d, r, err
}

func reportRead(w io.Writer, r *s3dump.ReaderAt) {
	fmt.Fprintf(w, "gokdump: read %d bytes of %d in %d ranged GETs\n", r.Read.Load(), r.Size(), r.Requests.Load())
}

func runInfoS3(cf configFlag, url string, asJSON, verify bool, s streams) error {
	d, r, err := openS3Dump(cf, url)
	if err != nil {
		return err
	}
	defer d.Close()
	defer reportRead(s.err, r)
	return reportInfo(d, d.Path, asJSON, verify, s.out)
}

func runDmesgS3(cf configFlag, url string, s streams) error {
	d, r, err := openS3Dump(cf, url)
	if err != nil {
		return err
	}
	defer d.Close()
	defer reportRead(s.err, r)
	l, err := d.Log()
	if err != nil {
		return fmt.Errorf("%s: %w", d.Path, explainLog(err))
	}
	return writeLog(l, s.out, s.err)
}
