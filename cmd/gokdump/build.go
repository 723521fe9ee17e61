package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/internal/netup"
)

// What the build command reads from the running system; tests point them
// at fakes.
var (
	// defaultConfigPath is packed when --config is not given and it exists.
	defaultConfigPath = "/etc/gokdump.toml"
	// kernelRoot is where this machine's kernels are looked for
	// (builder.FindKernel: /boot, /lib/modules, /usr/lib/modules).
	kernelRoot = "/"
	// buildSys is where host-only mode finds the target and its drivers.
	buildSys = blockdev.Sys{}
	// buildRelease is uname -r.
	buildRelease = loadKernelRelease
)

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

// Output formats of gokdump build.
const (
	formatInitrd = "initrd" // a compressed archive to load as an initrd
	formatCPIO   = "cpio"   // an uncompressed archive (CONFIG_INITRAMFS_SOURCE)
	formatDir    = "dir"    // a directory tree
)

// Driver modes: which kernel modules go into the image.
const (
	driversAuto     = "auto"
	driversHostOnly = "hostonly"
	driversGeneric  = "generic"
	driversNone     = "none"
)

type buildFlags struct {
	out         string
	init        string
	fromSource  bool
	arch        string
	config      string
	noConfig    bool
	modulesDir  string
	modules     multiFlag
	compress    string
	compressSet bool
	list        bool
	sysroot     string
	kver        string
	format      string
	drivers     string
	noHostOnly  bool
	force       bool
}

func init() {
	register(&command{
		name:  "build",
		args:  "",
		short: "build the initramfs of the kdump capture kernel",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var f buildFlags
			fs.StringVar(&f.out, "o", "", "write the image to `PATH` (- for standard output); required unless --list")
			fs.StringVar(&f.init, "init", "", "`PATH` of the capture init binary to pack as /init; default: gokdump-init beside gokdump,\n"+
				"../lib/gokdump/init, /usr/lib/gokdump/init (each then ARCH/ there: bin/arm64/gokdump-init,\n"+
				"/usr/lib/gokdump/arm64/init), else compiled from a source checkout (with --sysroot: DIR"+builder.SysrootInitPath+" only)")
			fs.BoolVar(&f.fromSource, "from-source", false, "compile ./initramfs of the source checkout (needs Go) even if a prebuilt init is installed")
			fs.StringVar(&f.arch, "arch", "", "GOARCH of the capture kernel (amd64, arm64): the init's and the modules' machine, and the\n"+
				"generic drivers (default this machine's; another needs --kernel-modules or --sysroot for modules)")
			fs.StringVar(&f.config, "config", "", "`PATH` of the config file to pack as /etc/gokdump.toml (default "+defaultConfigPath+" if it exists;\n"+
				"with --sysroot, DIR/etc/gokdump.toml)")
			fs.BoolVar(&f.noConfig, "no-config", false, "pack no config: the capture init uses its built-in defaults")
			fs.StringVar(&f.modulesDir, "kernel-modules", "", "the capture kernel's /lib/modules/KVER `DIR` (default /lib/modules/$(uname -r) or\n"+
				"/usr/lib/modules/$(uname -r), or KVER's with --kver, if it exists)")
			fs.StringVar(&f.kver, "kver", "", "the capture kernel's release `KVER`: which /lib/modules/KVER to take (of the host, of\n"+
				"--sysroot when it has several, or of --kernel-modules DIR when DIR holds KVER/)")
			fs.StringVar(&f.sysroot, "sysroot", "", "build for the image tree at `DIR` (debootstrap, dpkg -x, mkosi …): modules, config and init\n"+
				"come from DIR, never from this machine; runs unprivileged")
			fs.StringVar(&f.drivers, "drivers", driversAuto, "which kernel modules go in, by `MODE`: hostonly (the drivers this machine's dump target needs,\n"+
				"found in sysfs), generic (a broad set of disk and filesystem drivers), none (only --module\n"+
				"and the config's modules), or auto: hostonly when the config names a target and the\n"+
				"modules are the running kernel's, else generic when there is a modules tree, else none")
			fs.BoolVar(&f.noHostOnly, "no-hostonly", false, "same as --drivers generic")
			fs.Var(&f.modules, "module", "kernel module `NAME` to pack as well, with its dependencies and pre: soft dependencies\n"+
				"(repeatable or comma-separated; '-' and '_' alike; built-in ones are skipped)")
			fs.StringVar(&f.compress, "compress", builder.CompressZstd, "zstd, gzip or none; zstd needs a kernel built with CONFIG_RD_ZSTD\n"+
				"(gzip: CONFIG_RD_GZIP)")
			fs.StringVar(&f.format, "format", formatInitrd, "initrd (an archive compressed per --compress, for kexec or a boot loader), cpio (an\n"+
				"uncompressed newc archive, for CONFIG_INITRAMFS_SOURCE) or dir (a directory tree at -o, and a\n"+
				"gen_init_cpio list of it in PATH.list)")
			fs.BoolVar(&f.list, "list", false, "print the image's file list (gen_init_cpio format) instead of writing it; the files that\n"+
				"are not on disk as they are packed (generated, or a compiled init) are written to the directory\n"+
				"-o names, or to a new one in $TMPDIR, and listed from there")
			fs.BoolVar(&f.force, "force", false, "replace an existing image (or, with --format dir, an image tree gokdump wrote); without\n"+
				"it an existing -o is an error")
			fs.BoolVar(&f.force, "f", false, "same as --force")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				var empty []string
				fs.Visit(func(fl *flag.Flag) {
					if fl.Value.String() == "" && slices.Contains([]string{"o", "sysroot", "config", "init", "kernel-modules", "kver", "arch"}, fl.Name) {
						empty = append(empty, "--"+fl.Name)
					}
				})
				if len(empty) > 0 {
					return usagef("%s given empty (an unset variable?): give a value, or leave the flag out", strings.Join(empty, ", "))
				}
				if f.out == "" && !f.list {
					return usagef("-o PATH is required: where to write the image (- for standard output); or --list for its file list")
				}
				if f.list && f.out == "-" {
					return usagef("--list prints the list to standard output; -o names the directory for the files it generates")
				}
				fs.Visit(func(fl *flag.Flag) { f.compressSet = f.compressSet || fl.Name == "compress" })
				return runBuild(context.Background(), &f, s.out, fs.Output())
			}
		},
	})
}

func runBuild(ctx context.Context, f *buildFlags, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "gokdump build: "+format+"\n", args...)
	}
	if err := checkBuildFlags(f); err != nil {
		return err
	}
	opts := builder.Options{
		Init:           f.init,
		FromSource:     f.fromSource,
		Arch:           f.arch,
		Compress:       f.compress,
		ValidateConfig: buildValidateConfig,
		Log:            logf,
	}
	if f.format == formatCPIO {
		opts.Compress = builder.CompressNone
	}
	if err := buildInputs(f, &opts, logf); err != nil {
		return err
	}
	if opts.Sysroot != nil {
		defer opts.Sysroot.Close()
	}
	var cfg *config.Config
	if opts.Config != nil {
		// Checked here, where the file's name is known, so that every
		// error names it and its line.
		c, err := config.Parse(opts.Config, opts.ConfigSource)
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			return explain(err, "%s is not a valid configuration: the capture would start with it", opts.ConfigSource)
		}
		cfg = c
	}
	if err := chooseModules(f, cfg, &opts, stderr); err != nil {
		return err
	}
	read := hostRead
	if opts.Sysroot != nil {
		read = func(p string) ([]byte, error) { return opts.Sysroot.ReadFile(p, 1<<20) }
	}
	holdsKey, err := netFiles(cfg, &opts, read, stderr)
	if err != nil {
		return err
	}
	holdsS3Key, err := s3Files(cfg, &opts, read, stderr)
	if err != nil {
		return err
	}
	holdsKey = holdsKey || holdsS3Key
	if holdsS3Key && opts.Init == "" && !opts.FromSource {
		// The installed gokdump-init leaves the S3 client out; its
		// sibling has it.
		arch := opts.Arch
		if arch == "" {
			arch = runtime.GOARCH
		}
		var p string
		if opts.Sysroot != nil {
			if hp, err := opts.Sysroot.HostPath("/usr/lib/gokdump/init-s3"); err == nil && builder.CheckInit(hp, arch) == nil {
				p = hp
			}
		} else {
			exe := opts.Executable
			if exe == "" {
				exe, _ = os.Executable()
			}
			p = findS3Init(exe, arch)
		}
		if p != "" {
			opts.Init = p
			logf("s3: the capture init with the S3 client: %s", p)
		}
	}
	warnNoTarget(stderr, cfg, opts.ConfigSource)
	if cfg != nil {
		opts.Hooks = cfg.HookPaths()
	}

	p, err := builder.NewPlan(ctx, opts, true)
	if err != nil {
		return err
	}
	defer p.Close()
	if holdsS3Key {
		if err := initHasS3(p.Result().Init.Path); err != nil {
			return err
		}
	}
	if f.list {
		return writeList(f, p, stdout, stderr)
	}
	switch {
	case f.format == formatDir:
		return writeDirImage(f.out, p, f.force, stderr)
	case f.out == "-":
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
	default:
		if err := writeAtomic(f.out, p); err != nil {
			return err
		}
	}
	if holdsKey && f.out != "-" {
		warnKeyDir(f.out, stderr)
	}
	printSummary(stderr, f.out, p.Result())
	return nil
}

// checkBuildFlags refuses combinations that make no sense, before anything
// is read.
func checkBuildFlags(f *buildFlags) error {
	if f.drivers == "" {
		f.drivers = driversAuto
	}
	if f.format == "" {
		f.format = formatInitrd
	}
	switch {
	case f.noConfig && f.config != "":
		return errors.New("--config and --no-config are exclusive")
	case f.sysroot != "" && f.modulesDir != "":
		return errors.New("--sysroot takes the modules from DIR/lib/modules or DIR/usr/lib/modules: use --kver to choose, not --kernel-modules")
	case f.kver != "" && f.modulesDir != "":
		// Both may be given when they agree: DIR is KVER's modules
		// directory, or the directory holding it (an unpacked tree's
		// lib/modules).
		if dir, ok := kverModulesDir(f.modulesDir, f.kver); ok {
			f.modulesDir = dir
		} else {
			return fmt.Errorf("--kver %s and --kernel-modules %s both say where the modules are and disagree"+
				" (%s is neither named %s nor holds %s/): give one", f.kver, f.modulesDir, f.modulesDir, f.kver, f.kver)
		}
	}
	if f.noHostOnly {
		if f.drivers != driversAuto && f.drivers != driversGeneric {
			return fmt.Errorf("--no-hostonly and --drivers %s contradict each other", f.drivers)
		}
		f.drivers = driversGeneric
	}
	switch f.drivers {
	case driversAuto, driversHostOnly, driversGeneric, driversNone:
	default:
		return fmt.Errorf("--drivers %q: want %s, %s, %s or %s", f.drivers, driversAuto, driversHostOnly, driversGeneric, driversNone)
	}
	if f.drivers == driversHostOnly && f.sysroot != "" {
		return errors.New("--drivers hostonly reads this machine's devices, which --sysroot never uses")
	}
	if a := targetArch(f); f.drivers == driversHostOnly && a != runtime.GOARCH {
		return fmt.Errorf("--drivers hostonly reads this machine's devices and drivers (%s); a capture kernel for --arch %s"+
			" runs on another machine: use --drivers generic, or --drivers none with --module NAME", runtime.GOARCH, a)
	}
	switch f.format {
	case formatInitrd:
	case formatCPIO:
		if f.compressSet && f.compress != builder.CompressNone {
			return fmt.Errorf("--format cpio is an uncompressed archive; --compress %s applies to --format initrd", f.compress)
		}
	case formatDir:
		if f.out == "-" && !f.list {
			return errors.New("--format dir needs -o DIR")
		}
	default:
		return fmt.Errorf("--format %q: want %s, %s or %s", f.format, formatInitrd, formatCPIO, formatDir)
	}
	switch {
	case f.list || f.out == "-":
	case f.format == formatDir:
		if err := checkTree(f.out, f.force); err != nil {
			return err
		}
		if err := checkOutput(strings.TrimRight(f.out, "/")+".list", f.force); err != nil {
			return err
		}
	default:
		return checkOutput(f.out, f.force)
	}
	return nil
}

// targetArch is the GOARCH the image is built for: --arch, else this
// machine's.
func targetArch(f *buildFlags) string {
	if f.arch != "" {
		return f.arch
	}
	return runtime.GOARCH
}

// kverModulesDir returns KVER's modules directory when dir is it (named
// KVER) or holds it (dir/KVER), and whether it is either.
func kverModulesDir(dir, kver string) (string, bool) {
	if filepath.Base(filepath.Clean(dir)) == kver {
		return dir, true
	}
	if fi, err := os.Stat(filepath.Join(dir, kver)); err == nil && fi.IsDir() {
		return filepath.Join(dir, kver), true
	}
	return "", false
}

// checkTree refuses a --format dir output that holds something, unless
// --force and it is an image tree gokdump wrote (its /init and etc/ are
// there, and its list beside it): nothing else is ever removed.
func checkTree(dir string, force bool) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return checkOutDir(strings.TrimRight(dir, "/"))
	case err != nil:
		return err
	case len(ents) == 0:
		return nil
	case !force:
		return fmt.Errorf("%s is not empty (--force replaces an image tree gokdump wrote)", dir)
	case !isImageTree(dir):
		return fmt.Errorf("%s is not empty and is no image tree gokdump wrote (no init, etc/ and %s.list): not replaced",
			dir, strings.TrimRight(dir, "/"))
	}
	return nil
}

func isImageTree(dir string) bool {
	fi, err1 := os.Lstat(filepath.Join(dir, strings.TrimPrefix(builder.InitPath, "/")))
	di, err2 := os.Lstat(filepath.Join(dir, "etc"))
	li, err3 := os.Lstat(strings.TrimRight(dir, "/") + ".list")
	return err1 == nil && err2 == nil && err3 == nil && fi.Mode().IsRegular() && di.IsDir() && li.Mode().IsRegular()
}

// buildInputs finds the config, the init and the modules tree: in the
// image tree for --sysroot, else on this machine.
func buildInputs(f *buildFlags, opts *builder.Options, logf func(string, ...any)) error {
	if f.sysroot != "" {
		return sysrootInputs(f, opts, logf)
	}
	switch {
	case f.modulesDir != "":
		opts.ModulesDir = f.modulesDir
	case f.kver != "":
		k, err := hostKernel(f.kver)
		if err != nil {
			return fmt.Errorf("--kver: %w", err)
		}
		if opts.ModulesDir, err = k.ModulesPath(); err != nil {
			return fmt.Errorf("--kver %s: %w", f.kver, err)
		}
	case targetArch(f) != runtime.GOARCH:
		// The running kernel's modules are this machine's architecture,
		// never the capture kernel's: chooseModules says so.
	default:
		if rel, err := buildRelease(); err == nil {
			if k, err := hostKernel(rel); err == nil {
				opts.ModulesDir = k.Modules
			}
		}
	}
	if !f.noConfig {
		path, explicit := f.config, f.config != ""
		if !explicit {
			path = defaultConfigPath
		}
		return packConfig(opts, path, explicit)
	}
	return nil
}

// sysrootInputs opens the image tree and finds its kernel, init and
// config; every file is read through the tree (builder.Sysroot), so
// nothing of this machine's gets in but what a flag names.
func sysrootInputs(f *buildFlags, opts *builder.Options, logf func(string, ...any)) (err error) {
	sr, err := builder.OpenSysroot(f.sysroot)
	if err != nil {
		return fmt.Errorf("--sysroot %s: %w", f.sysroot, err)
	}
	defer func() {
		if err != nil {
			sr.Close()
		}
	}()
	k, err := sr.Kernel(f.kver)
	if err != nil {
		return err
	}
	logf("kernel %s of the image tree: image %s, modules %s; gokdump load there reads the capture image from %s",
		k.Release, orNone(k.Image), orNone(k.Modules), k.Initrd)
	if err := sysrootArch(f, opts, sr, k.Image, logf); err != nil {
		return err
	}
	opts.Sysroot, opts.ModulesDir = sr, k.Modules
	if f.noConfig {
		return nil
	}
	if f.config != "" {
		return packConfig(opts, f.config, true)
	}
	b, err := sr.ReadFile(config.DefaultPath, maxConfigSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("config: %w", err)
	}
	if opts.ConfigSource, err = sr.HostPath(config.DefaultPath); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	opts.Config = b
	return nil
}

// sysrootArch takes the image's architecture from the image tree's kernel
// when --arch is not given: an image builder making an arm64 image on an
// x86-64 machine needs no flag for what the tree already says. A given
// --arch that the kernel contradicts is an error; a kernel of no known
// format leaves the default (this machine's).
func sysrootArch(f *buildFlags, opts *builder.Options, sr *builder.Sysroot, image string, logf func(string, ...any)) error {
	if image == "" {
		return nil
	}
	hp, err := sr.HostPath(image)
	if err != nil {
		return fmt.Errorf("--sysroot: kernel image %s: %w", image, err)
	}
	p, err := kexec.NewPlanAnyArch(hp, "", "/nonexistent")
	if err != nil {
		return fmt.Errorf("--sysroot: kernel image %s: %w", image, err)
	}
	arch := kexec.GOARCHOf(p.Arch)
	switch {
	case arch == "":
		return nil
	case f.arch == "":
		f.arch, opts.Arch = arch, arch
		if arch != runtime.GOARCH {
			logf("arch %s: the image tree's kernel is an %s kernel (--arch overrides)", arch, p.Arch)
		}
	case f.arch != arch:
		return usagef("--arch %s, but the image tree's kernel %s is an %s kernel (--arch %s)", f.arch, image, p.Arch, arch)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// hostKernel finds kernel release kver on this machine
// (builder.FindKernel), with host paths.
func hostKernel(kver string) (*builder.Kernel, error) {
	k, err := builder.FindKernel(os.DirFS(kernelRoot), kver)
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&k.Image, &k.Modules, &k.Initrd} {
		if *p != "" {
			*p = filepath.Join(kernelRoot, *p)
		}
	}
	return k, nil
}

// packConfig reads the config to pack; a missing default is no config.
func packConfig(opts *builder.Options, path string, explicit bool) error {
	b, err := readConfig(path)
	switch {
	case err == nil:
		opts.Config, opts.ConfigSource = b, path
	case explicit || !errors.Is(err, os.ErrNotExist):
		return err
	}
	return nil
}

// chooseModules decides the driver mode, says why, and sets the modules
// of opts.
func chooseModules(f *buildFlags, cfg *config.Config, opts *builder.Options, stderr io.Writer) error {
	required := append([]string(nil), f.modules...)
	if cfg != nil {
		required = append(required, cfg.Modules...)
	}
	mode, why := f.drivers, ""
	arch := targetArch(f)
	cross := arch != runtime.GOARCH
	running := false
	if rel, err := buildRelease(); err == nil && opts.ModulesDir != "" && f.sysroot == "" && !cross {
		running = filepath.Base(filepath.Clean(opts.ModulesDir)) == rel
	}
	if mode == driversAuto {
		hasTarget := cfg != nil && cfg.Target != ""
		switch {
		case f.sysroot != "" && opts.ModulesDir != "":
			mode, why = driversGeneric, "building for an image tree"
		case f.sysroot != "":
			mode, why = driversNone, "the image tree has no modules of its kernel"
		case opts.ModulesDir == "" && cross:
			mode, why = driversNone, fmt.Sprintf("no modules tree: the running kernel's are %s, the capture kernel %s"+
				" (--kernel-modules or --sysroot names an %s tree)", runtime.GOARCH, arch, arch)
		case opts.ModulesDir == "":
			mode, why = driversNone, "no modules tree (no /lib/modules nor /usr/lib/modules of the running kernel; --kernel-modules names one)"
		case cross:
			mode, why = driversGeneric, fmt.Sprintf("the capture kernel is %s, this machine %s: its devices say nothing of the target's", arch, runtime.GOARCH)
		case hasTarget && running:
			mode, why = driversHostOnly, fmt.Sprintf("the config names target %s and %s is the running kernel's", cfg.Target, opts.ModulesDir)
		case !hasTarget:
			mode, why = driversGeneric, "no target in the config to detect drivers for"
		default:
			mode, why = driversGeneric, fmt.Sprintf("%s is not the running kernel's modules", opts.ModulesDir)
		}
	} else {
		why = "as asked"
	}
	if (mode == driversHostOnly || mode == driversGeneric) && opts.ModulesDir == "" {
		return fmt.Errorf("--drivers %s needs a modules tree: --kernel-modules DIR or --kver KVER", mode)
	}
	fmt.Fprintf(stderr, "gokdump build: drivers: %s (%s)\n", mode, why)

	switch mode {
	case driversGeneric:
		opts.OptionalModules = builder.GenericModulesFor(arch)
		if cfg != nil && len(cfg.NetworkTargets()) > 0 {
			opts.OptionalModules = append(slices.Clone(opts.OptionalModules), builder.GenericNetModules...)
			for _, t := range cfg.NetworkTargets() {
				if t.Kind == config.KindNFS {
					required = append(required, builder.NFSModules...)
				}
			}
		}
	case driversHostOnly:
		if cfg == nil || cfg.Target == "" {
			return errors.New("--drivers hostonly needs a config with a target")
		}
		if !running {
			fmt.Fprintf(stderr, "gokdump build: note: %s is not the running kernel's: drivers are detected under the running kernel\n", opts.ModulesDir)
		}
		req, opt, nics, err := detectTargetModules(cfg, stderr)
		if err != nil {
			return err
		}
		required = append(required, req...)
		opts.OptionalModules = opt
		if len(nics) > 0 {
			rec := netup.Record{Interfaces: nics}
			opts.Extra = append(opts.Extra, builder.File{Path: netup.RecordPath, Data: rec.Marshal(), Mode: 0o644})
		}
	}
	opts.Modules = required
	return nil
}

// detectTargetModules finds the config's targets on this machine and the
// modules behind them: the drivers from sysfs, and the filesystem's.
func detectTargetModules(cfg *config.Config, stderr io.Writer) (required, optional []string, nics []netup.Interface, err error) {
	targets, err := cfg.Targets()
	if err != nil {
		return nil, nil, nil, err
	}
	for _, t := range targets {
		if t.Network() {
			req, n, err := detectNetTarget(t, stderr)
			if err != nil {
				return nil, nil, nil, err
			}
			required = append(required, req...)
			nics = append(nics, n...)
			continue
		}
		dev, err := buildSys.Find(t.Spec.String())
		if err != nil {
			return nil, nil, nil, fmt.Errorf("host-only: find target %s on this machine: %w (build with --no-hostonly"+
				" for a generic image, or name the modules with --drivers none --module NAME)", t, err)
		}
		fstype := ""
		if !t.Raw {
			fstype = cfg.FSType
			if fstype == "" && dev.FS != nil {
				fstype = dev.FS.FSType
			}
		}
		desc := "raw device"
		if fstype != "" {
			desc = fstype
		}
		fmt.Fprintf(stderr, "gokdump build: host-only: target %s is %s (%s)\n", t, dev.Path, desc)
		det, err := builder.DetectDrivers(buildSys.SysDir, dev.Name)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("host-only: %w", err)
		}
		required = append(required, printDrivers(stderr, det)...)
		if fsm := builder.FilesystemModules(fstype); len(fsm) > 0 {
			fmt.Fprintf(stderr, "  %s: filesystem of %s\n", strings.Join(fsm, ", "), dev.Name)
			required = append(required, fsm[0])
			optional = append(optional, fsm[1:]...)
		}
		for _, n := range det.Notes {
			fmt.Fprintf(stderr, "  note: %s\n", n)
		}
	}
	return required, optional, nics, nil
}

// writeDirImage writes the image as a tree at dir and its file list beside
// it as dir.list. With force, an image tree there (checkTree) is replaced
// once the new one is written.
func writeDirImage(dir string, p *builder.Plan, force bool, stderr io.Writer) error {
	dir = strings.TrimRight(dir, "/")
	// The list first: a path it cannot hold fails before the tree is made.
	list := dir + ".list"
	var b bytes.Buffer
	if err := p.WriteDirList(&b, dir); err != nil {
		return err
	}
	into, old := dir, ""
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 && force {
		// A new tree beside the old one, swapped in when whole.
		tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".new*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp) // gone once renamed
		into = tmp
	}
	skipped, err := p.WriteDir(into)
	if err != nil {
		return err
	}
	if into != dir {
		old = filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".old")
		os.RemoveAll(old)
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		if err := os.Rename(into, dir); err != nil {
			os.Rename(old, dir)
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	if err := writeAtomic(list, &b); err != nil {
		return err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			fmt.Fprintf(stderr, "gokdump build: warning: the old tree %s: %v\n", old, err)
		}
	}
	r := p.Result()
	verb := "wrote"
	if old != "" {
		verb = "replaced"
	}
	fmt.Fprintf(stderr, "gokdump build: %s %s (%d entries) and its gen_init_cpio list %s\n", verb, dir, len(r.Files), list)
	if len(skipped) > 0 {
		fmt.Fprintf(stderr, "  not made without privilege: %s; the list has them: use CONFIG_INITRAMFS_SOURCE=%s\n",
			strings.Join(skipped, " "), list)
	}
	fmt.Fprintf(stderr, "  init: %s\n", describeInit(r.Init))
	printModules(stderr, r)
	return nil
}

// writeList prints the image's gen_init_cpio list, with the files it
// generates written where -o says (a directory), else into a new one.
func writeList(f *buildFlags, p *builder.Plan, stdout, stderr io.Writer) error {
	dir := f.out
	if dir == "" {
		d, err := os.MkdirTemp("", "gokdump-list-")
		if err != nil {
			return err
		}
		dir = d
	} else if err := checkTree(dir, false); err != nil {
		return fmt.Errorf("-o %s: the directory for the files the list generates: %w", dir, err)
	}
	var b bytes.Buffer
	wrote, err := p.WriteListWith(&b, dir)
	if err != nil {
		if f.out == "" {
			os.RemoveAll(dir)
		}
		return err
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		return err
	}
	if len(wrote) > 0 {
		fmt.Fprintf(stderr, "gokdump build: the list takes %s from %s (%s)\n", strings.Join(wrote, ", "), dir,
			"generated, or not on disk as packed; keep the directory as long as the list is used")
	} else if f.out == "" {
		os.Remove(dir)
	}
	fmt.Fprintf(stderr, "  init: %s\n", describeInit(p.Result().Init))
	printModules(stderr, p.Result())
	return nil
}

// describeInit says where the packed init came from, as the user gave it.
func describeInit(s builder.InitSource) string {
	switch s.How {
	case "flag":
		return s.Path + " (--init)"
	case "image tree":
		return s.Path + " (the image tree's)"
	case "installed":
		return s.Path + " (installed)"
	}
	return s.String()
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
	fmt.Fprintf(w, "  init: %s\n", describeInit(r.Init))
	if len(r.Hooks) > 0 {
		fmt.Fprintf(w, "  hooks (mode 0700): %s\n", strings.Join(r.Hooks, " "))
	}
	printModules(w, r)
}

func printModules(w io.Writer, r *builder.Result) {
	if len(r.Modules) > 0 {
		fmt.Fprintf(w, "  modules (load order): %s\n", strings.Join(r.Modules, " "))
	}
	if len(r.Builtin) > 0 {
		fmt.Fprintf(w, "  built in, skipped: %s\n", strings.Join(r.Builtin, " "))
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(w, "  not in this kernel, skipped: %s\n", strings.Join(r.Missing, " "))
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
