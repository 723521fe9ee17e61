package builder

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ModulePath is the Go module whose ./initramfs package is the capture init.
const ModulePath = "github.com/gokdump/gokdump"

// initPackage is the capture init's package directory inside the module.
const initPackage = "initramfs"

var (
	// ErrNoInit means no capture init binary was found and none could be
	// compiled.
	ErrNoInit = errors.New("no capture init found")
	// ErrBadInit means a capture init binary is not a static Linux
	// executable for the target architecture.
	ErrBadInit = errors.New("not a usable capture init")
)

// InstalledPaths returns where a prebuilt binary of gokdump's for arch is
// looked for, in order, for the gokdump executable exe: beside it as
// beside (what make puts in bin/), then in arch/ there (make puts the
// other architecture's inits in bin/arm64/ or bin/amd64/); ../lib/gokdump/lib
// relative to it (an install prefix), then ../lib/gokdump/arch/lib; and
// /usr/lib/gokdump/lib, then /usr/lib/gokdump/arch/lib. The plain path
// comes first at each place: it is the host's architecture, which is what
// is built most; CheckInit skips a binary of the wrong machine.
func InstalledPaths(exe, arch, beside, lib string) []string {
	if arch == "" {
		arch = runtime.GOARCH
	}
	var p []string
	if exe != "" {
		dir := filepath.Dir(exe)
		p = append(p,
			filepath.Join(dir, beside),
			filepath.Join(dir, arch, beside),
			filepath.Join(dir, "..", "lib", "gokdump", lib),
			filepath.Join(dir, "..", "lib", "gokdump", arch, lib))
	}
	return append(p, "/usr/lib/gokdump/"+lib, "/usr/lib/gokdump/"+arch+"/"+lib)
}

// InstalledInitPaths returns where a prebuilt capture init for arch is
// looked for (InstalledPaths of gokdump-init, installed as init).
func InstalledInitPaths(exe, arch string) []string {
	return InstalledPaths(exe, arch, "gokdump-init", "init")
}

// An InitSource says where the capture init comes from.
type InitSource struct {
	// Path is the binary to pack; empty when it is still to be compiled.
	Path string
	// SourceDir is the module root to compile ./initramfs in, when Path
	// is empty.
	SourceDir string
	// How is "flag", "installed" or "source", for the summary.
	How string
}

func (s InitSource) String() string {
	if s.Path == "" {
		return "compiled from " + filepath.Join(s.SourceDir, initPackage)
	}
	return s.Path + " (" + s.How + ")"
}

// FindInit decides where the capture init comes from: explicit (a path
// given by the user, which must be usable), else the first usable
// InstalledInitPaths(exe, arch), else the ./initramfs package of the checkout of
// this module that contains dir. fromSource skips the installed binaries.
// arch is the GOARCH the init must be built for. The error when nothing is
// found wraps ErrNoInit and says how to get an init.
func FindInit(explicit, exe, dir, arch string, fromSource bool) (InitSource, error) {
	if explicit != "" {
		if err := CheckInit(explicit, arch); err != nil {
			return InitSource{}, err
		}
		return InitSource{Path: explicit, How: "flag"}, nil
	}
	var skipped []string
	if !fromSource {
		for _, p := range InstalledInitPaths(exe, arch) {
			err := CheckInit(p, arch)
			if err == nil {
				return InitSource{Path: filepath.Clean(p), How: "installed"}, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				skipped = append(skipped, err.Error())
			}
		}
	}
	root, err := FindModuleRoot(dir)
	if err == nil {
		if fi, err := os.Stat(filepath.Join(root, initPackage)); err == nil && fi.IsDir() {
			return InitSource{SourceDir: root, How: "source"}, nil
		}
	}
	var msg strings.Builder
	if fromSource {
		fmt.Fprintf(&msg, "%v: --from-source needs a checkout of %s (with ./%s) at or above %s",
			ErrNoInit, ModulePath, initPackage, dir)
	} else {
		fmt.Fprintf(&msg, "%v: looked for %s; not in a checkout of %s", ErrNoInit,
			strings.Join(InstalledInitPaths(exe, arch), ", "), ModulePath)
	}
	for _, s := range skipped {
		fmt.Fprintf(&msg, "; skipped %s", s)
	}
	fmt.Fprintf(&msg, ". Install the gokdump-init binary for %s beside gokdump (make puts it in bin/,"+
		" another architecture's in bin/%s/) or as /usr/lib/gokdump/init (/usr/lib/gokdump/%s/init),"+
		" pass --init PATH, or run gokdump build from a checkout of the source with Go installed", arch, arch, arch)
	return InitSource{}, fmt.Errorf("builder: %w", &initError{msg.String()})
}

// initError carries the long "how to fix it" message while still matching
// ErrNoInit.
type initError struct{ msg string }

func (e *initError) Error() string { return e.msg }
func (e *initError) Unwrap() error { return ErrNoInit }

// FindModuleRoot walks up from dir to the directory whose go.mod declares
// this module (ModulePath), and returns it.
func FindModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("builder: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && goModPath(b) == ModulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("builder: no go.mod of %s at or above the directory: %w", ModulePath, os.ErrNotExist)
		}
		dir = parent
	}
}

// goModPath returns the module path a go.mod declares.
func goModPath(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`+"`")
		}
	}
	return ""
}

// elfMachine is the ELF machine of each GOARCH the capture init may be
// built for.
var elfMachine = map[string]elf.Machine{
	"386":     elf.EM_386,
	"amd64":   elf.EM_X86_64,
	"arm":     elf.EM_ARM,
	"arm64":   elf.EM_AARCH64,
	"loong64": elf.EM_LOONGARCH,
	"mips":    elf.EM_MIPS,
	"mipsle":  elf.EM_MIPS,
	"mips64":  elf.EM_MIPS,
	"ppc64":   elf.EM_PPC64,
	"ppc64le": elf.EM_PPC64,
	"riscv64": elf.EM_RISCV,
	"s390x":   elf.EM_S390,
}

// CheckInit verifies that path is an executable the capture kernel can run
// as /init: an ELF executable for arch with no program interpreter (the
// initramfs has no dynamic loader or libc). A dynamically linked init would
// only fail after a crash, so this is checked when the image is built.
func CheckInit(path, arch string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return checkInitELF(path, f, arch)
}

func checkInitELF(path string, r io.ReaderAt, arch string) error {
	return checkStaticELF(path, r, arch, ErrBadInit, "build it with CGO_ENABLED=0")
}

// checkStaticELF checks that r is an ELF executable for arch with no
// program interpreter; failures wrap bad, and a dynamic one is told how
// to fix it (fix).
func checkStaticELF(path string, r io.ReaderAt, arch string, bad error, fix string) error {
	f, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", path, bad, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: %w: ELF type %v is not an executable", path, bad, f.Type)
	}
	if want, ok := elfMachine[arch]; ok && f.Machine != want {
		return fmt.Errorf("%s: %w: built for %v, want %v (GOARCH %s)", path, bad, f.Machine, want, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: %w: dynamically linked (program interpreter) and the capture image has no libc; %s", path, bad, fix)
		}
	}
	return nil
}

// init reads the capture init the image tree carries at SysrootInitPath
// and checks it as CheckInit does.
func (s *Sysroot) init(arch string) (InitSource, []byte, error) {
	data, err := s.ReadFile(SysrootInitPath, maxInputSize)
	if err != nil {
		return InitSource{}, nil, fmt.Errorf("builder: %w in the image tree at %s (install gokdump into it,"+
			" or pass --init PATH): %w", ErrNoInit, SysrootInitPath, err)
	}
	host, err := s.HostPath(SysrootInitPath)
	if err != nil {
		return InitSource{}, nil, fmt.Errorf("builder: %w", err)
	}
	if err := checkInitELF(host, bytes.NewReader(data), arch); err != nil {
		return InitSource{}, nil, fmt.Errorf("builder: %w", err)
	}
	return InitSource{Path: host, How: "image tree"}, data, nil
}

// CompileInit builds the capture init from the ./initramfs package of the
// module at root, for linux/arch, into outDir, and returns the binary's
// path. It needs the go command; the build is static (CGO_ENABLED=0) and
// reproducible (-trimpath, no VCS stamp).
func CompileInit(ctx context.Context, root, arch, outDir string) (string, error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("builder: compile the capture init: %w: the go command is not installed"+
			" (install Go, or install a prebuilt gokdump-init and pass --init PATH)", ErrNoInit)
	}
	out := filepath.Join(outDir, "init")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", out, "./"+initPackage)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("builder: go build ./%s in %s (GOARCH=%s): %w\n%s",
			initPackage, root, arch, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := CheckInit(out, arch); err != nil {
		return "", fmt.Errorf("builder: compiled init: %w", err)
	}
	return out, nil
}
