package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/size"
)

// TestKernelPaths: load, estimate and rebuild find a release's kernel,
// modules and capture initramfs where distributions put them, through
// builder.FindKernel, and say where they looked when there is none.
func TestKernelPaths(t *testing.T) {
	rel, err := loadKernelRelease()
	if err != nil {
		t.Fatal(err)
	}
	const other = "9.9.9-other-amd64" // rebuild's --kver: built, not loaded
	for _, tt := range []struct {
		name           string
		files          []string // in the fake machine's root; KVER is replaced
		kernel, initrd string   // want, relative to the root; "" for an error
	}{
		{"boot", []string{"boot/vmlinuz-KVER", "lib/modules/KVER/modules.dep"},
			"boot/vmlinuz-KVER", "boot/gokdump-KVER.img"},
		{"usr/lib/modules", []string{"usr/lib/modules/KVER/vmlinuz", "usr/lib/modules/KVER/modules.dep", "boot/efi/"},
			"usr/lib/modules/KVER/vmlinuz", "var/lib/gokdump/gokdump-KVER.img"},
		{"lib not merged", []string{"usr/lib/modules/KVER/vmlinuz", "usr/lib/modules/KVER/modules.dep", "lib/modules/KVER/extra/"},
			"usr/lib/modules/KVER/vmlinuz", "var/lib/gokdump/gokdump-KVER.img"},
		{"neither", []string{"boot/vmlinuz-0.0.1", "lib/modules/0.0.1/modules.dep"}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kexecFixture(t, map[string]string{"sys/kernel/kexec_crash_size": "134217728", "proc/cmdline": "console=ttyS0"})
			root := t.TempDir()
			old := kernelRoot
			kernelRoot = root
			t.Cleanup(func() { kernelRoot = old })
			for _, kv := range []string{rel, other} {
				for _, f := range tt.files {
					p := filepath.Join(root, strings.ReplaceAll(f, "KVER", kv))
					os.MkdirAll(filepath.Dir(p), 0o755)
					if !strings.HasSuffix(f, "/") {
						if err := os.WriteFile(p, []byte(fakeVmlinuz()), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			path := func(p, kv string) string { return filepath.Join(root, strings.ReplaceAll(p, "KVER", kv)) }
			looked := "looked for /boot/vmlinuz-" + rel + ", /lib/modules/" + rel + "/vmlinuz, /usr/lib/modules/" + rel + "/vmlinuz"
			if tt.initrd != "" {
				os.MkdirAll(filepath.Dir(path(tt.initrd, rel)), 0o700)
				if err := os.WriteFile(path(tt.initrd, rel), []byte("070701"), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			var out bytes.Buffer
			err := runLoad(&loadFlags{dryRun: true}, &out)
			switch {
			case tt.kernel == "" && (!errors.Is(err, builder.ErrNoKernelImage) || !strings.Contains(err.Error(), looked)):
				t.Errorf("load: %v, want the places looked at", err)
			case tt.kernel != "" && (err != nil || !strings.Contains(out.String(), "kernel:   "+path(tt.kernel, rel)+"\n") ||
				!strings.Contains(out.String(), "initrd:   "+path(tt.initrd, rel)+"\n")):
				t.Errorf("load: %v\n%s", err, out.String())
			}

			out.Reset()
			err = runEstimate(estimateFlags{ram: size.Flag{Size: 4 << 30, Text: "4G"}}, &out, io.Discard)
			switch {
			case tt.kernel == "" && !errors.Is(err, builder.ErrNoKernelImage):
				t.Errorf("estimate: %v", err)
			case tt.kernel != "" && (err != nil || !strings.HasPrefix(out.String(), "kernel "+path(tt.kernel, rel)+", initrd "+path(tt.initrd, rel)+"\n")):
				t.Errorf("estimate: %v\n%s", err, out.String())
			}

			// Rebuild finds the other release's kernel and builds its image
			// in the same place (the fake modules.dep then stops the build:
			// the place is what is tested).
			var stderr bytes.Buffer
			out.Reset()
			if tt.initrd != "" {
				img := path(tt.initrd, other)
				os.MkdirAll(filepath.Dir(img), 0o700)
				if err := os.WriteFile(img, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				future := time.Now().Add(time.Hour)
				os.Chtimes(img, future, future)
			}
			err = runRebuild(rebuildFlags{kver: other, ifNeeded: true, noLoad: true, config: configFlag{path: filepath.Join(root, "none.toml")}}, &out, &stderr)
			switch {
			case tt.kernel == "" && (!errors.Is(err, builder.ErrNoKernel) || !strings.Contains(err.Error(), "and for modules in /lib/modules/"+other+", /usr/lib/modules/"+other)):
				t.Errorf("rebuild: %v", err)
			case tt.kernel != "" && !strings.HasPrefix(out.String(), "gokdump rebuild: building "+path(tt.initrd, other)+","):
				t.Errorf("rebuild: %v\n%s%s", err, out.String(), stderr.String())
			}
		})
	}
}

// TestKernelHooks runs the kernel hooks with stand-ins for gokdump, rm and
// uname that record how they are called: they rebuild for the installed
// release (loading it only if it runs), and remove its image from every
// place builder.FindKernel may put it.
func TestKernelHooks(t *testing.T) {
	const running, installed = "6.12.9-amd64", "7.2.13+deb14-amd64"
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "log")
	for name, body := range map[string]string{
		"gokdump": `echo "gokdump $*" >>"$LOG"`,
		"rm":      `echo "rm $*" >>"$LOG"`,
		"uname":   `echo ` + running,
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removes := func(v string) string {
		var files []string
		for _, d := range []string{builder.BootInitrdDir, builder.VarInitrdDir} {
			files = append(files, d+"/"+builder.InitrdName(v), d+"/"+builder.InitrdName(v)+".json")
		}
		return "rm -f " + strings.Join(files, " ") + "\n"
	}
	hooks := "../../scripts/kernel-hooks/"
	for _, tt := range []struct {
		hook string
		args []string
		want string
	}{
		{"postinst.d-gokdump", []string{installed, "/boot/vmlinuz-" + installed}, "gokdump rebuild --kver " + installed + " --no-load\n"},
		{"postinst.d-gokdump", []string{running}, "gokdump rebuild --kver " + running + "\n"},
		{"postrm.d-gokdump", []string{installed}, removes(installed)},
		{"60-gokdump.install", []string{"add", installed, "/efi/entry/" + installed, "/usr/lib/modules/" + installed + "/vmlinuz"},
			"gokdump rebuild --kver " + installed + " --no-load\n"},
		{"60-gokdump.install", []string{"add", running, "/efi/entry/" + running}, "gokdump rebuild --kver " + running + "\n"},
		{"60-gokdump.install", []string{"remove", installed, "/efi/entry/" + installed}, removes(installed)},
	} {
		os.Remove(log)
		cmd := exec.Command("sh", append([]string{hooks + tt.hook}, tt.args...)...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "LOG=" + log, "GOKDUMP=" + filepath.Join(bin, "gokdump")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s %q: %v\n%s", tt.hook, tt.args, err, out)
			continue
		}
		if got, _ := os.ReadFile(log); string(got) != tt.want {
			t.Errorf("%s %q ran:\n%s\nwant:\n%s", tt.hook, tt.args, got, tt.want)
		}
	}
}
