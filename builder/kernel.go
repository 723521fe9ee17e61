package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// ErrNoKernelImage means a kernel release's image (vmlinuz) is in none of
// the places distributions put it.
var ErrNoKernelImage = errors.New("no kernel image")

// moduleRoots are where distributions put the modules of each release:
// /lib/modules, or /usr/lib/modules where /lib is not merged into /usr
// (a merged /lib is a link to usr/lib, so both name one directory).
var moduleRoots = []string{"/lib/modules", "/usr/lib/modules"}

// KernelImagePaths returns where the image of kernel release kver is
// looked for, in order: /boot/vmlinuz-KVER (Debian before forky, and the
// copy Fedora's kernel-install makes) and the modules directory's vmlinuz
// (Fedora, Arch, and Debian since forky, whose split packages install only
// that one).
func KernelImagePaths(kver string) []string {
	p := []string{"/boot/vmlinuz-" + kver}
	for _, d := range ModulesDirPaths(kver) {
		p = append(p, d+"/vmlinuz")
	}
	return p
}

// ModulesDirPaths returns where the modules of kernel release kver are
// looked for, in order.
func ModulesDirPaths(kver string) []string {
	p := make([]string, len(moduleRoots))
	for i, r := range moduleRoots {
		p[i] = r + "/" + kver
	}
	return p
}

// Where gokdump keeps a release's capture initramfs: beside the kernel in
// /boot, or, where the kernel is not in /boot (it stays in
// /usr/lib/modules/KVER, and /boot may be a small EFI partition or
// missing), in a directory of its own. A boot loader never reads it (it is
// loaded by kexec from the running system), so it does not go where
// kernel-install puts the initrds of boot entries.
const (
	BootInitrdDir = "/boot"
	VarInitrdDir  = "/var/lib/gokdump"
)

// InitrdName is the file name of the capture initramfs of release kver.
func InitrdName(kver string) string { return "gokdump-" + kver + ".img" }

// A Kernel is where one kernel release's files are in a tree. Paths are
// the tree's, absolute.
type Kernel struct {
	Release string
	// Image is the kernel image; "" if the tree has none.
	Image string
	// Modules is the modules directory, one holding modules.dep,
	// modules.builtin or modules.order; "" if the tree has none.
	Modules string
	// Initrd is where the capture initramfs for this kernel goes: in
	// BootInitrdDir when the image is in /boot, or when there is no image
	// and /boot exists, else in VarInitrdDir.
	Initrd string
}

// FindKernel looks for kernel release kver in the tree fsys, read as "/"
// (os.DirFS("/") for this machine, Sysroot.FS("/") for an image tree): its
// image at KernelImagePaths and its modules at ModulesDirPaths, taking the
// first that exists. What it does not find is left empty; ImagePath and
// ModulesPath say where it looked. It fails only for a release that is
// not a file name.
func FindKernel(fsys fs.FS, kver string) (*Kernel, error) {
	if kver == "" || kver != path.Base(kver) || kver == "." || kver == ".." || strings.ContainsAny(kver, "\\\x00") {
		return nil, fmt.Errorf("builder: %q is not a kernel release", kver)
	}
	k := &Kernel{Release: kver}
	for _, p := range KernelImagePaths(kver) {
		if fi, err := statFS(fsys, p); err == nil && fi.Mode().IsRegular() {
			k.Image = p
			break
		}
	}
	for _, d := range ModulesDirPaths(kver) {
		if isModulesDir(fsys, d) {
			k.Modules = d
			break
		}
	}
	dir := VarInitrdDir
	if strings.HasPrefix(k.Image, BootInitrdDir+"/") {
		dir = BootInitrdDir
	} else if fi, err := statFS(fsys, BootInitrdDir); k.Image == "" && err == nil && fi.IsDir() {
		dir = BootInitrdDir
	}
	k.Initrd = dir + "/" + InitrdName(kver)
	return k, nil
}

// Found reports whether the tree has the kernel's image or its modules.
func (k *Kernel) Found() bool { return k.Image != "" || k.Modules != "" }

// Missing returns nil if Found, else an error wrapping ErrNoKernel that
// lists where the kernel was looked for.
func (k *Kernel) Missing() error {
	if k.Found() {
		return nil
	}
	return fmt.Errorf("builder: %w %s (looked for %s, and for modules in %s)", ErrNoKernel, k.Release,
		strings.Join(KernelImagePaths(k.Release), ", "), strings.Join(ModulesDirPaths(k.Release), ", "))
}

// ImagePath returns Image, or an error wrapping ErrNoKernelImage that
// lists where it was looked for.
func (k *Kernel) ImagePath() (string, error) {
	if k.Image == "" {
		return "", fmt.Errorf("builder: %w for %s: looked for %s", ErrNoKernelImage, k.Release,
			strings.Join(KernelImagePaths(k.Release), ", "))
	}
	return k.Image, nil
}

// ModulesPath returns Modules, or an error wrapping ErrNoKernel that lists
// where they were looked for.
func (k *Kernel) ModulesPath() (string, error) {
	if k.Modules == "" {
		return "", fmt.Errorf("builder: %w modules for %s: looked in %s (for modules.dep, modules.builtin or modules.order)",
			ErrNoKernel, k.Release, strings.Join(ModulesDirPaths(k.Release), ", "))
	}
	return k.Modules, nil
}

// isModulesDir reports whether d holds a kernel's modules: every kernel
// package ships modules.builtin and modules.order, depmod writes
// modules.dep.
func isModulesDir(fsys fs.FS, d string) bool {
	for _, f := range []string{"modules.builtin", "modules.order", "modules.dep"} {
		if fi, err := statFS(fsys, d+"/"+f); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}
