package builder

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

var (
	// ErrNoKernel means an image tree holds no /lib/modules/KVER
	// directory, or not the one asked for.
	ErrNoKernel = errors.New("no kernel modules in the image tree")
	// ErrSeveralKernels means an image tree holds modules of more than
	// one kernel and none was chosen.
	ErrSeveralKernels = errors.New("modules of several kernels in the image tree")
	// ErrOutsideRoot means a path inside an image tree leads out of it.
	ErrOutsideRoot = errors.New("path leads outside the image tree")
)

// SysrootInitPath is where an image tree carries the prebuilt capture init
// (what a gokdump package installs).
const SysrootInitPath = "/usr/lib/gokdump/init"

// maxSymlinks bounds the links InRoot follows, as the kernel's ELOOP does.
const maxSymlinks = 40

// InRoot returns the host path of p inside the image tree root, resolving
// symbolic links as if root were "/": an absolute link target starts again
// at root, and ".." never climbs above it. So an image tree whose /lib is a
// link to /usr/lib (merged /usr) reads its own /usr/lib, never the host's.
// The final component may be missing (the error then wraps os.ErrNotExist).
func InRoot(root, p string) (string, error) {
	root = filepath.Clean(root)
	var resolved []string // components below root, all existing non-links
	todo := splitPath(p)
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		host := filepath.Join(root, filepath.Join(resolved...), c)
		fi, err := os.Lstat(host)
		if err != nil {
			if len(todo) == 0 && errors.Is(err, os.ErrNotExist) {
				return host, fmt.Errorf("builder: %s in %s: %w", p, root, err)
			}
			return "", fmt.Errorf("builder: %s in %s: %w", p, root, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("builder: %s in %s: %w: too many symbolic links", p, root, ErrOutsideRoot)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", fmt.Errorf("builder: %w", err)
		}
		if path.IsAbs(filepath.ToSlash(target)) {
			resolved = resolved[:0]
		}
		todo = append(splitPath(target), todo...)
	}
	return filepath.Join(root, filepath.Join(resolved...)), nil
}

func splitPath(p string) []string {
	var out []string
	for c := range strings.SplitSeq(filepath.ToSlash(p), "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// moduleRoots are where distributions put /lib/modules: merged-/usr ones
// (Fedora, Arch) keep the real directory in /usr/lib/modules.
var moduleRoots = []string{"/lib/modules", "/usr/lib/modules"}

// SysrootModules returns the /lib/modules/KVER directory of the image tree
// root (its host path) and KVER. With kver empty, the tree must hold
// exactly one kernel's modules; otherwise the error (ErrSeveralKernels)
// lists them. A directory counts as a kernel's when it holds a
// modules.builtin or modules.order file, as every kernel package ships.
func SysrootModules(root, kver string) (dir, release string, err error) {
	if kver != "" {
		if kver != filepath.Base(kver) || kver == "." || kver == ".." {
			return "", "", fmt.Errorf("builder: bad kernel release %q", kver)
		}
		for _, mr := range moduleRoots {
			d, err := InRoot(root, path.Join(mr, kver))
			if err == nil && isKernelModulesDir(d) {
				return d, kver, nil
			}
		}
		return "", "", fmt.Errorf("builder: %w: %s (found: %s)", ErrNoKernel, kver, strings.Join(sysrootKernels(root), ", "))
	}
	found := sysrootKernels(root)
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("builder: %w: %s has no %s/KVER with modules.builtin", ErrNoKernel, root, moduleRoots[0])
	case 1:
		return SysrootModules(root, found[0])
	}
	return "", "", fmt.Errorf("builder: %w: %s; choose one with --kver", ErrSeveralKernels, strings.Join(found, ", "))
}

// sysrootKernels lists the kernel releases with modules in the image tree.
func sysrootKernels(root string) []string {
	var rels []string
	for _, mr := range moduleRoots {
		d, err := InRoot(root, mr)
		if err != nil {
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if kd, err := InRoot(root, path.Join(mr, e.Name())); err == nil && isKernelModulesDir(kd) && !slices.Contains(rels, e.Name()) {
				rels = append(rels, e.Name())
			}
		}
	}
	slices.Sort(rels)
	return rels
}

func isKernelModulesDir(d string) bool {
	for _, f := range []string{"modules.builtin", "modules.order", "modules.dep"} {
		if isFilePath(filepath.Join(d, f)) {
			return true
		}
	}
	return false
}
