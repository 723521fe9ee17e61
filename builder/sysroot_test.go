package builder

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// openSysroot opens root as an image tree, read by the kernel (openat2)
// or, with fallback, component by component below an os.Root.
func openSysroot(t *testing.T, root string, fallback bool) *Sysroot {
	t.Helper()
	s, err := OpenSysroot(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.noOpenat2.Store(fallback)
	return s
}

// backends runs f for each way a Sysroot reads a tree.
func backends(t *testing.T, f func(t *testing.T, fallback bool)) {
	for _, fallback := range []bool{false, true} {
		name := "openat2"
		if fallback {
			name = "os.Root"
		}
		t.Run(name, func(t *testing.T) { f(t, fallback) })
	}
}

// escapingTree is an image tree whose links lead out of it in every way,
// beside a host directory whose files must never be read through it. The
// tree holds its own file at the host file's path, so a link that
// resolves inside the tree reads "tree" and one that escapes reads "HOST".
func escapingTree(t *testing.T) (root, outside string) {
	root, outside = t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(outside, "etc", "secret"), "HOST")
	writeFile(t, filepath.Join(root, outside, "etc", "secret"), "tree")
	writeFile(t, filepath.Join(root, "usr", "lib", "gokdump", "init"), "tree init")
	writeFile(t, filepath.Join(root, "etc", "real.toml"), "tree config")
	symlink(t, "usr/lib", filepath.Join(root, "lib"))                                                // merged /usr, relative
	symlink(t, "/etc/real.toml", filepath.Join(root, "etc", "gokdump.toml"))                         // absolute, inside
	symlink(t, outside+"/etc/secret", filepath.Join(root, "etc", "abs"))                             // absolute, to the host's
	symlink(t, strings.Repeat("../", 12)+outside+"/etc/secret", filepath.Join(root, "etc", "climb")) // climbing
	symlink(t, outside, filepath.Join(root, "hostdir"))                                              // a directory, absolute
	symlink(t, "../../../../../../../.."+outside, filepath.Join(root, "etc", "updir"))               // a directory, climbing
	symlink(t, "loop2", filepath.Join(root, "loop1"))
	symlink(t, "loop1", filepath.Join(root, "loop2"))
	symlink(t, "/proc/self/root/etc/hostname", filepath.Join(root, "etc", "magic"))
	return root, outside
}

func TestSysrootOpen(t *testing.T) {
	root, outside := escapingTree(t)
	backends(t, func(t *testing.T, fallback bool) {
		s := openSysroot(t, root, fallback)
		for _, tt := range []struct {
			name, want string // want: content read, or "" for an error
			err        error
		}{
			{"/lib/gokdump/init", "tree init", nil},
			{"lib/../lib/gokdump/init", "tree init", nil},
			{"/etc/gokdump.toml", "tree config", nil},
			{"/../../etc/real.toml", "tree config", nil},
			{"/etc/abs", "tree", nil},
			{"/etc/climb", "tree", nil},
			{"/hostdir/etc/secret", "tree", nil},
			{"/etc/updir/etc/secret", "tree", nil},
			{outside + "/etc/secret", "tree", nil},
			{"/loop1", "", syscall.ELOOP},
			{"/etc/missing", "", fs.ErrNotExist},
			{"/etc/magic", "", fs.ErrNotExist}, // the tree has no /proc
		} {
			b, err := s.ReadFile(tt.name, 1<<20)
			switch {
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("%s: %q, %v; want error %v", tt.name, b, err, tt.err)
			case tt.err == nil && (err != nil || string(b) != tt.want):
				t.Errorf("%s: %q, %v; want %q", tt.name, b, err, tt.want)
			}
		}
		// A link whose target is missing in the tree says where it led.
		os.Remove(filepath.Join(root, outside, "etc", "secret"))
		defer writeFile(t, filepath.Join(root, outside, "etc", "secret"), "tree")
		_, err := s.Open("/etc/abs")
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "its links lead to "+outside+"/etc/secret in the image tree") {
			t.Errorf("dangling link: %v", err)
		}
	})
}

func TestSysrootOpenSpecial(t *testing.T) {
	root := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	backends(t, func(t *testing.T, fallback bool) {
		s := openSysroot(t, root, fallback)
		done := make(chan error, 1)
		go func() {
			_, err := s.ReadFile("fifo", 100)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrBadEntry) {
				t.Errorf("FIFO: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO of the tree blocks")
		}
		if _, err := s.ReadFile("dir", 100); !errors.Is(err, ErrBadEntry) {
			t.Errorf("directory: %v", err)
		}
		writeFile(t, filepath.Join(root, "big"), strings.Repeat("x", 101))
		if _, err := s.ReadFile("big", 100); !errors.Is(err, ErrBadEntry) {
			t.Errorf("over the limit: %v", err)
		}
	})
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, "")
	if _, err := OpenSysroot(f); err == nil {
		t.Error("a file opened as an image tree")
	}
}

func TestSysrootHostPath(t *testing.T) {
	root, outside := escapingTree(t)
	s := openSysroot(t, root, false)
	for name, want := range map[string]string{
		"/lib/gokdump/init": filepath.Join(root, "usr", "lib", "gokdump", "init"),
		"/etc/gokdump.toml": filepath.Join(root, "etc", "real.toml"),
		"/etc/climb":        filepath.Join(root, outside, "etc", "secret"),
		"/hostdir":          filepath.Join(root, outside),
	} {
		if got, err := s.HostPath(name); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"/etc/missing", "/loop1"} {
		if got, err := s.HostPath(name); err == nil {
			t.Errorf("%s: %q", name, got)
		}
	}
}

// TestSysrootResolveModules reads a tree depmod never ran on through the
// tree: a module directory linked to the host's is neither walked nor
// read.
func TestSysrootResolveModules(t *testing.T) {
	root := t.TempDir()
	mods := filepath.Join(root, "usr", "lib", "modules", "6.1.0-test-amd64")
	if err := os.CopyFS(mods, os.DirFS(modinfoTree(t))); err != nil {
		t.Fatal(err)
	}
	host := modinfoTree(t)
	writeFile(t, filepath.Join(host, "extra", "hostonly.ko"), string(fakeKO([]string{"name=hostonly", "alias=crypto-hostonly"}, 64)))
	symlink(t, host+"/extra", filepath.Join(mods, "extra"))
	symlink(t, "usr/lib", filepath.Join(root, "lib"))
	// The same tree on the host, without the link.
	want, err := ResolveModules(modinfoTree(t), []string{"blk-a"})
	if err != nil {
		t.Fatal(err)
	}
	backends(t, func(t *testing.T, fallback bool) {
		s := openSysroot(t, root, fallback)
		set, err := s.ResolveModules("/lib/modules/6.1.0-test-amd64", []string{"blk-a"}, []string{"hostonly", "crypto-hostonly"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(set.Paths(), want.Paths()) || !slices.Equal(set.Missing, []string{"crypto_hostonly", "hostonly"}) {
			t.Errorf("paths %q missing %q; want %q and the host's module missing", set.Paths(), set.Missing, want.Paths())
		}
		if set.Dir != filepath.Join(root, "lib", "modules", "6.1.0-test-amd64") || set.Release != "6.1.0-test-amd64" {
			t.Errorf("dir %q release %q", set.Dir, set.Release)
		}
		for _, m := range set.Modules {
			_, src, err := set.read(m)
			if want := filepath.Join(mods, m.Path); err != nil || src != want {
				t.Errorf("%s: source %q, %v; want %q", m.Name, src, err, want)
			}
		}
	})
}

func TestSysrootKernel(t *testing.T) {
	one := t.TempDir()
	writeFile(t, filepath.Join(one, "usr", "lib", "modules", "6.1.0-9-amd64", "modules.order"), "")
	symlink(t, "usr/lib", filepath.Join(one, "lib"))
	// Not a kernel's: no index file, no image.
	if err := os.MkdirAll(filepath.Join(one, "usr", "lib", "modules", "extra-stuff"), 0o755); err != nil {
		t.Fatal(err)
	}
	k, err := openSysroot(t, one, false).Kernel("")
	if err != nil || k.Release != "6.1.0-9-amd64" || k.Modules != "/lib/modules/6.1.0-9-amd64" || k.Image != "" {
		t.Errorf("one kernel: %+v %v", k, err)
	}

	two := t.TempDir()
	writeFile(t, filepath.Join(two, "lib", "modules", "6.1.0-9-amd64", "modules.builtin"), "")
	writeFile(t, filepath.Join(two, "boot", "vmlinuz-6.1.0-9-amd64"), "")
	writeFile(t, filepath.Join(two, "usr", "lib", "modules", "6.12.9-amd64", "vmlinuz"), "")
	writeFile(t, filepath.Join(two, "boot", "vmlinuz-6.13.0-custom"), "")
	s := openSysroot(t, two, false)
	if got := TreeKernels(s.FS("/")); !slices.Equal(got, []string{"6.1.0-9-amd64", "6.12.9-amd64", "6.13.0-custom"}) {
		t.Errorf("TreeKernels: %q", got)
	}
	if _, err := s.Kernel(""); !errors.Is(err, ErrSeveralKernels) ||
		!strings.Contains(err.Error(), "6.1.0-9-amd64, 6.12.9-amd64, 6.13.0-custom; choose one with --kver") {
		t.Errorf("several kernels: %v", err)
	}
	if k, err := s.Kernel("6.12.9-amd64"); err != nil || k.Image != "/usr/lib/modules/6.12.9-amd64/vmlinuz" || k.Modules != "" {
		t.Errorf("--kver: %+v %v", k, err)
	}
	if _, err := s.Kernel("5.10"); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), ", which has: 6.1.0-9-amd64, 6.12.9-amd64, 6.13.0-custom") {
		t.Errorf("unknown kver: %v", err)
	}
	for _, bad := range []string{"../x", "a/b", ".."} {
		if _, err := s.Kernel(bad); err == nil {
			t.Errorf("kver %q accepted", bad)
		}
	}
	if _, err := openSysroot(t, t.TempDir(), false).Kernel(""); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty tree: %v", err)
	}
}
