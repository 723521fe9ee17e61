package builder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Paths inside the image that the capture init relies on.
const (
	InitPath        = "/init"
	ConfigPath      = "/etc/gokdump.toml"
	ModuleListPath  = "/etc/gokdump.modules"
	ModulesRootPath = "/lib/modules"
)

// mountPoints are the directories the init mounts on before it can create
// anything itself.
var mountPoints = []string{"/dev", "/mnt", "/proc", "/run", "/sys", "/tmp"}

// maxInputSize bounds a file read into the image. Module files and the init
// are a few MiB; newc itself cannot go past 4 GiB.
const maxInputSize = 512 << 20

// Options describe an image.
type Options struct {
	// Init is the capture init binary; empty finds one (FindInit).
	Init string
	// FromSource compiles ./initramfs of the checkout even if a prebuilt
	// init is installed.
	FromSource bool
	// Arch is the GOARCH of the capture kernel; empty is runtime.GOARCH.
	Arch string
	// Executable is the running gokdump, whose directory is searched for a
	// prebuilt init; empty is os.Executable().
	Executable string
	// Dir is where to look for a source checkout; empty is the working
	// directory.
	Dir string

	// Config is the content of /etc/gokdump.toml; nil leaves the file out
	// and the init uses its defaults. ConfigSource names where it came
	// from, for the file list.
	Config       []byte
	ConfigSource string
	// ValidateConfig, if set, checks Config before it is packed.
	ValidateConfig func([]byte) error

	// Sysroot, if set, is the image tree the image is built for: the
	// modules come from it, and so does the init unless Init or
	// FromSource says otherwise. Nothing else is read from the host.
	Sysroot *Sysroot

	// ModulesDir is a /lib/modules/KVER tree (see ResolveModules), in
	// Sysroot if set; Modules names the modules to pack from it, and
	// OptionalModules more that are packed only if the tree has them (see
	// ResolveModuleSet).
	ModulesDir      string
	Modules         []string
	OptionalModules []string

	// Compress is CompressZstd (the default when empty), CompressGzip or
	// CompressNone.
	Compress string

	// Hooks are the config's pre_hooks, post_hooks and failure_hook:
	// each is read from the host (or Sysroot), must be a static
	// executable for Arch, and is packed at the same path, mode 0700.
	Hooks []string

	// Extra are more files to pack, for images that carry more than the
	// capture init (the QEMU tests' first-stage image carries a kernel).
	Extra []File

	// Log, if set, receives progress notes (such as compiling the init).
	Log func(format string, args ...any)
}

// File is an extra regular file for the image.
type File struct {
	Path string // absolute path in the image
	Data []byte
	Mode uint64 // permission bits
}

// Result describes a built image.
type Result struct {
	Init        InitSource
	Files       []string // in-image paths, in archive order
	Modules     []string // module names in load order
	ModulePaths []string // in-image module paths in load order (as in ModuleListPath)
	Builtin     []string // requested modules that are built in, skipped
	Missing     []string // optional modules the tree lacks
	Notes       []string // soft dependencies skipped, and why
	Hooks       []string // in-image paths of the hooks packed
	Compress    string
	CPIOSize    int64 // uncompressed archive size
	Size        int64 // bytes written
}

// Plan is an image ready to write: inputs found and read, modules resolved.
type Plan struct {
	im     *image
	res    Result
	tmpDir string
}

// Close removes the temporary directory of a compiled init, if any.
func (p *Plan) Close() error {
	if p.tmpDir == "" {
		return nil
	}
	err := os.RemoveAll(p.tmpDir)
	p.tmpDir = ""
	return err
}

// NewPlan gathers the image's contents: it finds the init (and compiles it
// when compile is true and it must come from source; otherwise the file
// list shows where it would be compiled from), validates the config,
// resolves and reads the modules. Close the plan when done.
func NewPlan(ctx context.Context, opts Options, compile bool) (_ *Plan, err error) {
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.Compress == "" {
		opts.Compress = CompressZstd
	}
	switch opts.Compress {
	case CompressZstd, CompressGzip, CompressNone:
	default:
		return nil, fmt.Errorf("builder: %w %q (want %s, %s or %s)", ErrCompression, opts.Compress, CompressZstd, CompressGzip, CompressNone)
	}
	if opts.Executable == "" {
		// Not fatal: without it only the installed locations beside the
		// executable are not searched.
		opts.Executable, _ = os.Executable()
	}
	if opts.Dir == "" {
		if opts.Dir, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
	}
	if opts.Config != nil && opts.ValidateConfig != nil {
		if err := opts.ValidateConfig(opts.Config); err != nil {
			return nil, fmt.Errorf("builder: config %s: %w", opts.ConfigSource, err)
		}
	}
	var mods *ModuleSet
	if len(SplitModuleNames(opts.Modules)) > 0 || (opts.ModulesDir != "" && len(SplitModuleNames(opts.OptionalModules)) > 0) {
		if opts.ModulesDir == "" {
			return nil, fmt.Errorf("builder: modules %s named but no modules directory given", strings.Join(SplitModuleNames(opts.Modules), ", "))
		}
		if opts.Sysroot != nil {
			mods, err = opts.Sysroot.ResolveModules(opts.ModulesDir, opts.Modules, opts.OptionalModules)
		} else {
			mods, err = ResolveModuleSet(opts.ModulesDir, opts.Modules, opts.OptionalModules)
		}
		if err != nil {
			return nil, err
		}
	}

	var (
		src      InitSource
		initData []byte
		listSrc  string
	)
	if opts.Sysroot != nil && opts.Init == "" && !opts.FromSource {
		if src, initData, err = opts.Sysroot.init(opts.Arch); err != nil {
			return nil, err
		}
		listSrc = src.Path
	} else if src, err = FindInit(opts.Init, opts.Executable, opts.Dir, opts.Arch, opts.FromSource); err != nil {
		return nil, err
	}
	p := &Plan{im: newImage()}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	initFile := src.Path
	switch {
	case initData != nil:
		initFile = ""
	case src.Path != "":
		listSrc = src.Path
	default:
		listSrc = "<" + src.String() + ">"
		if compile {
			if p.tmpDir, err = os.MkdirTemp("", "gokdump-init-"); err != nil {
				return nil, fmt.Errorf("builder: %w", err)
			}
			logf("compiling the capture init from %s (GOARCH=%s)", filepath.Join(src.SourceDir, initPackage), opts.Arch)
			if initFile, err = CompileInit(ctx, src.SourceDir, opts.Arch, p.tmpDir); err != nil {
				return nil, err
			}
		}
	}
	p.res.Init = src
	p.res.Compress = opts.Compress

	if initFile != "" {
		if initData, err = readInput(initFile); err != nil {
			return nil, err
		}
	}
	adds := []entry{
		fileEntry(InitPath, 0o755, initData, listSrc),
		dirEntry("/etc", 0o755),
		charDevEntry("/dev/console", 0o600, 5, 1),
	}
	for _, d := range mountPoints {
		adds = append(adds, dirEntry(d, 0o755))
	}
	if opts.Config != nil {
		// 0600: the config names devices and paths of the dump target.
		adds = append(adds, fileEntry(ConfigPath, 0o600, opts.Config, orGenerated(opts.ConfigSource)))
	}
	if mods != nil {
		p.res.Builtin = mods.Builtin
		p.res.Missing = mods.Missing
		p.res.Notes = mods.Notes
		var list strings.Builder
		for _, m := range mods.Modules {
			data, src, err := mods.read(m)
			if err != nil {
				return nil, err
			}
			if err := checkModuleMachine(src, data, opts.Arch); err != nil {
				return nil, err
			}
			name := path.Join(ModulesRootPath, mods.Release, m.Path)
			adds = append(adds, fileEntry(name, 0o644, data, src))
			p.res.Modules = append(p.res.Modules, m.Name)
			p.res.ModulePaths = append(p.res.ModulePaths, name)
			list.WriteString(name + "\n")
		}
		if len(mods.Modules) > 0 {
			adds = append(adds, fileEntry(ModuleListPath, 0o644, []byte(list.String()), "<generated>"))
		}
	}
	hooks, err := hookEntries(opts.Hooks, opts.Sysroot, opts.Arch)
	if err != nil {
		return nil, err
	}
	adds = append(adds, hooks...)
	p.res.Hooks = slices.Clone(opts.Hooks)
	for _, f := range opts.Extra {
		adds = append(adds, fileEntry(f.Path, f.Mode&0o7777, f.Data, "<extra>"))
	}
	for _, e := range adds {
		if err := p.im.add(e); err != nil {
			return nil, err
		}
	}
	for _, e := range p.im.sorted() {
		p.res.Files = append(p.res.Files, e.name)
	}
	return p, nil
}

func orGenerated(s string) string {
	if s == "" {
		return "<generated>"
	}
	return s
}

// readInput reads a host file to pack.
func readInput(name string) ([]byte, error) {
	return readFileFS(hostDir(filepath.Dir(name)), filepath.Base(name), maxInputSize, ErrBadEntry)
}

// Result returns what the plan holds. Sizes are set by WriteTo.
func (p *Plan) Result() *Result { r := p.res; return &r }

// WriteList writes the image's file list in gen_init_cpio's format.
func (p *Plan) WriteList(w io.Writer) error { return p.im.writeList(w) }

// WriteTo writes the compressed archive to w.
func (p *Plan) WriteTo(w io.Writer) (int64, error) {
	if p.im.entries[InitPath].data == nil {
		return 0, fmt.Errorf("builder: %w: the plan was made without compiling the init", ErrNoInit)
	}
	var raw bytes.Buffer
	if err := p.im.writeCPIO(&raw); err != nil {
		return 0, err
	}
	p.res.CPIOSize = int64(raw.Len())
	cw := &countWriter{w: w}
	if err := compress(cw, raw.Bytes(), p.res.Compress); err != nil {
		return cw.n, err
	}
	p.res.Size = cw.n
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Build gathers the image described by opts (compiling the init if it must
// come from source) and writes the compressed archive to w.
func Build(ctx context.Context, w io.Writer, opts Options) (*Result, error) {
	p, err := NewPlan(ctx, opts, true)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if _, err := p.WriteTo(w); err != nil {
		return nil, err
	}
	return p.Result(), nil
}
