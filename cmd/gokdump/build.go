package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/gokdump/gokdump/capture/config"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gokdump/gokdump/builder"
)

// defaultConfigPath is packed when --config is not given and it exists.
var defaultConfigPath = "/etc/gokdump.toml"

// buildValidateConfig checks the config before it is packed, so a typo is
// found now and not after a crash.
var buildValidateConfig = func(b []byte) error {
	c, err := config.Parse(b, "gokdump.toml")
	if err != nil {
		return err
	}
	return c.Validate()
}

// maxConfigSize bounds the config file read into the image.
const maxConfigSize = 1 << 20

type buildFlags struct {
	out        string
	init       string
	fromSource bool
	arch       string
	config     string
	noConfig   bool
	modulesDir string
	modules    multiFlag
	compress   string
	list       bool
}

func init() {
	register(&command{
		name:  "build",
		args:  "",
		short: "build the initramfs of the kdump capture kernel",
		setup: func(fs *flag.FlagSet) func([]string) error {
			var f buildFlags
			fs.StringVar(&f.out, "o", "", "write the image to `PATH` (- for standard output); required unless --list")
			fs.StringVar(&f.init, "init", "", "`PATH` of the capture init binary to pack as /init; default: gokdump-init beside gokdump,\n"+
				"../lib/gokdump/init, /usr/lib/gokdump/init, else compiled from a source checkout")
			fs.BoolVar(&f.fromSource, "from-source", false, "compile ./initramfs of the source checkout (needs Go) even if a prebuilt init is installed")
			fs.StringVar(&f.arch, "arch", "", "GOARCH of the capture kernel, for compiling and checking the init (default this machine's)")
			fs.StringVar(&f.config, "config", "", "`PATH` of the config file to pack as /etc/gokdump.toml (default "+defaultConfigPath+" if it exists)")
			fs.BoolVar(&f.noConfig, "no-config", false, "pack no config: the capture init uses its built-in defaults")
			fs.StringVar(&f.modulesDir, "kernel-modules", "", "the capture kernel's /lib/modules/KVER `DIR` (depmod run on it), to take --module from")
			fs.Var(&f.modules, "module", "kernel module `NAME` to pack with its dependencies and pre: soft dependencies\n"+
				"(repeatable or comma-separated; '-' and '_' alike; built-in ones are skipped)")
			fs.StringVar(&f.compress, "compress", builder.CompressZstd, "zstd, gzip or none; zstd needs a kernel built with CONFIG_RD_ZSTD\n"+
				"(gzip: CONFIG_RD_GZIP)")
			fs.BoolVar(&f.list, "list", false, "print the image's file list (gen_init_cpio format) instead of writing it")
			return func(args []string) error {
				if len(args) != 0 || (f.out == "" && !f.list) {
					return errUsage
				}
				return runBuild(context.Background(), &f, os.Stdout, fs.Output())
			}
		},
	})
}

func runBuild(ctx context.Context, f *buildFlags, stdout, stderr io.Writer) error {
	opts := builder.Options{
		Init:           f.init,
		FromSource:     f.fromSource,
		Arch:           f.arch,
		ModulesDir:     f.modulesDir,
		Modules:        f.modules,
		Compress:       f.compress,
		ValidateConfig: buildValidateConfig,
		Log: func(format string, args ...any) {
			fmt.Fprintf(stderr, "gokdump build: "+format+"\n", args...)
		},
	}
	if f.noConfig && f.config != "" {
		return errors.New("--config and --no-config are exclusive")
	}
	if !f.noConfig {
		path, explicit := f.config, f.config != ""
		if !explicit {
			path = defaultConfigPath
		}
		b, err := readConfig(path)
		switch {
		case err == nil:
			opts.Config, opts.ConfigSource = b, path
		case explicit || !errors.Is(err, os.ErrNotExist):
			return err
		}
	}

	p, err := builder.NewPlan(ctx, opts, !f.list)
	if err != nil {
		return err
	}
	defer p.Close()
	if f.list {
		if err := p.WriteList(stdout); err != nil {
			return err
		}
		printModules(stderr, p.Result())
		return nil
	}
	if f.out == "-" {
		if st, ok := stdout.(*os.File); ok {
			if fi, err := st.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return errors.New("not writing a binary image to a terminal; redirect standard output or use -o PATH")
			}
		}
		// Build whole before writing, so a failure leaves no partial image.
		var buf bytes.Buffer
		if _, err := p.WriteTo(&buf); err != nil {
			return err
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := writeAtomic(f.out, p); err != nil {
		return err
	}
	printSummary(stderr, f.out, p.Result())
	return nil
}

// readConfig reads the config file to pack.
func readConfig(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxConfigSize {
		return nil, fmt.Errorf("config %s: not a regular file of at most %d bytes", path, maxConfigSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}

// writeAtomic writes the image to a temporary file beside path and renames
// it into place, so a reader (or a kexec load) never sees half an image.
// The mode is 0600: the image holds the config.
func writeAtomic(path string, w io.WriterTo) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = w.WriteTo(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func printSummary(w io.Writer, out string, r *builder.Result) {
	if out == "-" {
		out = "standard output"
	}
	fmt.Fprintf(w, "gokdump build: wrote %s: %s %s (%s uncompressed, %d files)\n",
		out, ibytes(r.Size), r.Compress, ibytes(r.CPIOSize), len(r.Files))
	fmt.Fprintf(w, "  init: %s\n", r.Init)
	printModules(w, r)
}

func printModules(w io.Writer, r *builder.Result) {
	if len(r.Modules) > 0 {
		fmt.Fprintf(w, "  modules (load order): %s\n", strings.Join(r.Modules, " "))
	}
	if len(r.Builtin) > 0 {
		fmt.Fprintf(w, "  built in, skipped: %s\n", strings.Join(r.Builtin, " "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// ibytes formats a size in binary units, one decimal.
func ibytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
