package builder

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindKernel(t *testing.T) {
	const kv = "6.12.9-amd64"
	for _, tt := range []struct {
		name                   string
		files                  []string // files of the tree; "L:link=target" makes a link
		image, modules, initrd string
	}{
		{"boot only", []string{"boot/vmlinuz-" + kv, "lib/modules/" + kv + "/modules.dep"},
			"/boot/vmlinuz-" + kv, "/lib/modules/" + kv, "/boot/gokdump-" + kv + ".img"},
		{"usr/lib only", []string{"usr/lib/modules/" + kv + "/vmlinuz", "usr/lib/modules/" + kv + "/modules.order", "L:lib=usr/lib"},
			"/lib/modules/" + kv + "/vmlinuz", "/lib/modules/" + kv, "/var/lib/gokdump/gokdump-" + kv + ".img"},
		{"usr/lib only, /boot exists", []string{"usr/lib/modules/" + kv + "/vmlinuz", "usr/lib/modules/" + kv + "/modules.order", "boot/grub/grub.cfg"},
			"/usr/lib/modules/" + kv + "/vmlinuz", "/usr/lib/modules/" + kv, "/var/lib/gokdump/gokdump-" + kv + ".img"},
		{"both", []string{"boot/vmlinuz-" + kv, "usr/lib/modules/" + kv + "/vmlinuz", "usr/lib/modules/" + kv + "/modules.builtin", "L:lib=usr/lib"},
			"/boot/vmlinuz-" + kv, "/lib/modules/" + kv, "/boot/gokdump-" + kv + ".img"},
		// /lib not merged: a stray /lib/modules/KVER (a DKMS leftover) is
		// not the kernel's; /usr/lib/modules/KVER is.
		{"lib not merged", []string{"lib/modules/" + kv + "/updates/dkms/x.ko", "usr/lib/modules/" + kv + "/modules.dep", "usr/lib/modules/" + kv + "/vmlinuz"},
			"/usr/lib/modules/" + kv + "/vmlinuz", "/usr/lib/modules/" + kv, "/var/lib/gokdump/gokdump-" + kv + ".img"},
		{"modules only, /boot exists", []string{"lib/modules/" + kv + "/modules.builtin", "boot/"},
			"", "/lib/modules/" + kv, "/boot/gokdump-" + kv + ".img"},
		{"image only", []string{"boot/vmlinuz-" + kv}, "/boot/vmlinuz-" + kv, "", "/boot/gokdump-" + kv + ".img"},
		{"image a link", []string{"boot/vmlinuz-" + kv + ".real", "L:boot/vmlinuz-" + kv + "=vmlinuz-" + kv + ".real"},
			"/boot/vmlinuz-" + kv, "", "/boot/gokdump-" + kv + ".img"},
		{"neither", []string{"boot/vmlinuz-6.1.0-9-amd64", "usr/lib/modules/" + kv + "/vmlinuz/"}, "", "", "/boot/gokdump-" + kv + ".img"},
		{"neither, no /boot", nil, "", "", "/var/lib/gokdump/gokdump-" + kv + ".img"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				if l, ok := strings.CutPrefix(f, "L:"); ok {
					name, target, _ := strings.Cut(l, "=")
					symlink(t, target, filepath.Join(root, name))
				} else if strings.HasSuffix(f, "/") {
					os.MkdirAll(filepath.Join(root, f), 0o755)
				} else {
					writeFile(t, filepath.Join(root, f), "x")
				}
			}
			// The host's way and an image tree's read the same.
			for via, k := range map[string]*Kernel{"os.DirFS": mustFind(t, os.DirFS(root), kv), "Sysroot": mustFind(t, openSysroot(t, root, false).FS("/"), kv)} {
				if k.Release != kv || k.Image != tt.image || k.Modules != tt.modules || k.Initrd != tt.initrd {
					t.Errorf("%s: %+v; want image %q modules %q initrd %q", via, *k, tt.image, tt.modules, tt.initrd)
				}
				if k.Found() != (tt.image != "" || tt.modules != "") {
					t.Errorf("%s: Found() = %v", via, k.Found())
				}
				if err := k.Missing(); k.Found() != (err == nil) || (err != nil && (!errors.Is(err, ErrNoKernel) ||
					!strings.Contains(err.Error(), "no kernel "+kv+" (looked for /boot/vmlinuz-"+kv+", /lib/modules/"+kv+"/vmlinuz, /usr/lib/modules/"+kv+
						"/vmlinuz, and for modules in /lib/modules/"+kv+", /usr/lib/modules/"+kv+")"))) {
					t.Errorf("%s: Missing() = %v", via, err)
				}
				img, imgErr := k.ImagePath()
				mods, modsErr := k.ModulesPath()
				for _, c := range []struct {
					what, got, want string
					err, is         error
					looked          string
				}{
					{"ImagePath", img, tt.image, imgErr, ErrNoKernelImage,
						"looked for /boot/vmlinuz-" + kv + ", /lib/modules/" + kv + "/vmlinuz, /usr/lib/modules/" + kv + "/vmlinuz"},
					{"ModulesPath", mods, tt.modules, modsErr, ErrNoKernel, "looked in /lib/modules/" + kv + ", /usr/lib/modules/" + kv},
				} {
					if c.want != "" && (c.err != nil || c.got != c.want) || c.want == "" && (!errors.Is(c.err, c.is) || !strings.Contains(c.err.Error(), c.looked)) {
						t.Errorf("%s: %s %q, %v; want %q", via, c.what, c.got, c.err, c.want)
					}
				}
			}
		})
	}
	for _, bad := range []string{"", ".", "..", "../6.1", "a/b", "a\x00b"} {
		if _, err := FindKernel(os.DirFS(t.TempDir()), bad); err == nil {
			t.Errorf("release %q accepted", bad)
		}
	}
}

func mustFind(t *testing.T, fsys fs.FS, kver string) *Kernel {
	t.Helper()
	k, err := FindKernel(fsys, kver)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
