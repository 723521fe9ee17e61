package builder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "etc", "gokdump.toml"), "host")
	writeFile(t, filepath.Join(root, "usr", "lib", "gokdump", "init"), "tree")
	writeFile(t, filepath.Join(root, "etc", "real.toml"), "tree config")
	// Merged /usr with a relative link, an absolute link that must stay in
	// the tree, a link climbing above the root, and a loop.
	symlink(t, "usr/lib", filepath.Join(root, "lib"))
	symlink(t, "/etc/real.toml", filepath.Join(root, "etc", "gokdump.toml"))
	symlink(t, "../../../../../../.."+outside+"/etc/gokdump.toml", filepath.Join(root, "etc", "climb.toml"))
	symlink(t, outside, filepath.Join(root, "host"))
	symlink(t, "loop2", filepath.Join(root, "loop1"))
	symlink(t, "loop1", filepath.Join(root, "loop2"))

	for _, tt := range []struct {
		path, want string // want: content read, or "" for an error
		err        error
	}{
		{"/lib/gokdump/init", "tree", nil},
		{"lib/../lib/gokdump/init", "tree", nil},
		{"/etc/gokdump.toml", "tree config", nil},
		{"/../../etc/real.toml", "tree config", nil},
		{"/etc/climb.toml", "", os.ErrNotExist},
		{"/host/etc/gokdump.toml", "", os.ErrNotExist},
		{"/loop1", "", ErrOutsideRoot},
		{"/etc/missing", "", os.ErrNotExist},
	} {
		p, err := InRoot(root, tt.path)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: %q, %v; want error %v", tt.path, p, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.path, err)
			continue
		}
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Errorf("%s: %s is outside the root", tt.path, p)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != tt.want {
			t.Errorf("%s → %s reads %q, %v; want %q", tt.path, p, b, err, tt.want)
		}
	}
	// The last component may be missing: the path is still returned, in
	// the tree, for a caller that wants to create it.
	p, err := InRoot(root, "/lib/gokdump/new")
	if !errors.Is(err, os.ErrNotExist) || p != filepath.Join(root, "usr", "lib", "gokdump", "new") {
		t.Errorf("missing last component: %q, %v", p, err)
	}
}

func TestSysrootModules(t *testing.T) {
	one := t.TempDir()
	writeFile(t, filepath.Join(one, "usr", "lib", "modules", "6.1.0-9-amd64", "modules.order"), "")
	symlink(t, "usr/lib", filepath.Join(one, "lib"))
	// Not a kernel's: no index file.
	if err := os.MkdirAll(filepath.Join(one, "usr", "lib", "modules", "extra-stuff"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, rel, err := SysrootModules(one, "")
	if err != nil || rel != "6.1.0-9-amd64" || dir != filepath.Join(one, "usr", "lib", "modules", "6.1.0-9-amd64") {
		t.Errorf("one kernel: %q %q %v", dir, rel, err)
	}

	two := t.TempDir()
	writeFile(t, filepath.Join(two, "lib", "modules", "6.1.0-9-amd64", "modules.builtin"), "")
	writeFile(t, filepath.Join(two, "lib", "modules", "6.12.9-amd64", "modules.dep"), "")
	if _, _, err := SysrootModules(two, ""); !errors.Is(err, ErrSeveralKernels) ||
		!strings.Contains(err.Error(), "6.1.0-9-amd64, 6.12.9-amd64") {
		t.Errorf("two kernels: %v", err)
	}
	if dir, rel, err := SysrootModules(two, "6.12.9-amd64"); err != nil || rel != "6.12.9-amd64" ||
		dir != filepath.Join(two, "lib", "modules", "6.12.9-amd64") {
		t.Errorf("--kver: %q %q %v", dir, rel, err)
	}
	if _, _, err := SysrootModules(two, "5.10"); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "6.12.9-amd64") {
		t.Errorf("unknown kver: %v", err)
	}
	for _, bad := range []string{"../x", "a/b", ".."} {
		if _, _, err := SysrootModules(two, bad); err == nil {
			t.Errorf("kver %q accepted", bad)
		}
	}
	if _, _, err := SysrootModules(t.TempDir(), ""); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty tree: %v", err)
	}
}
