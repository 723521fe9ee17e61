package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/kexec"
)

func init() {
	register(&command{
		name:  "rebuild",
		short: "build the capture initramfs for the running kernel and load it (what the service and kernel hook run)",
		setup: func(fs *flag.FlagSet) func([]string) error {
			var f rebuildFlags
			fs.BoolVar(&f.ifNeeded, "if-needed", false, "build only when the image is missing or older than the kernel, config or init; load only when not loaded with this image")
			fs.StringVar(&f.kver, "kver", "", "kernel release to build for (default: uname -r)")
			fs.StringVar(&f.image, "o", "", "image `PATH` (default /boot/gokdump-KVER.img beside a kernel in /boot, else\n"+
				builder.VarInitrdDir+"/gokdump-KVER.img)")
			fs.StringVar(&f.config, "config", "/etc/gokdump.toml", "config `FILE`")
			fs.BoolVar(&f.noLoad, "no-load", false, "build only (a kernel being installed is not the running one)")
			return func(args []string) error {
				if len(args) != 0 {
					return errUsage
				}
				return runRebuild(f, os.Stdout, os.Stderr)
			}
		},
	})
}

type rebuildFlags struct {
	ifNeeded, noLoad    bool
	kver, image, config string
}

// initPaths are where the prebuilt capture init may be, for staleness.
func initPaths() []string {
	exe, _ := os.Executable()
	if exe == "" {
		return []string{"/usr/lib/gokdump/init"}
	}
	return []string{exe + "-init", "/usr/lib/gokdump/init", exe}
}

func runRebuild(f rebuildFlags, stdout, stderr io.Writer) error {
	running, err := loadKernelRelease()
	if err != nil {
		return err
	}
	kver := f.kver
	if kver == "" {
		kver = running
	}
	k, err := hostKernel(kver)
	if err != nil {
		return err
	}
	if err := k.Missing(); err != nil {
		return err
	}
	kernel, mods := k.Image, k.Modules
	image := f.image
	if image == "" {
		image = k.Initrd
		// The image's own directory (not /boot) may not exist yet.
		if err := os.MkdirAll(filepath.Dir(image), 0o700); err != nil {
			return err
		}
	}
	inputs := append([]string{f.config}, initPaths()...)
	if kernel != "" {
		inputs = append(inputs, kernel)
	}
	if mods != "" {
		inputs = append(inputs, filepath.Join(mods, "modules.dep"))
	}

	if !f.ifNeeded || stale(image, inputs) {
		args := []string{"build", "-o", image}
		if mods != "" {
			args = append(args, "--kernel-modules", mods)
		} else {
			// The kernel has no modules: not the running kernel's either.
			args = append(args, "--drivers", "none")
		}
		if _, err := os.Stat(f.config); err == nil {
			args = append(args, "--config", f.config)
		}
		fmt.Fprintf(stdout, "gokdump rebuild: building %s\n", image)
		if rc := run(args, stdout, stderr); rc != 0 {
			return fmt.Errorf("build failed")
		}
	} else {
		fmt.Fprintf(stdout, "gokdump rebuild: %s is up to date\n", image)
	}
	if f.noLoad || kver != running {
		return nil
	}
	s, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot)
	if err != nil {
		return err
	}
	if s.Supported && s.CrashSize == 0 {
		fmt.Fprintln(stdout, "gokdump rebuild: no crashkernel= memory reserved; nothing to load (gokdump estimate says how much)")
		return nil
	}
	if f.ifNeeded && s.Loaded {
		if st, err := readLoadState(); err == nil && st.Initrd == image && st.Kernel == kernel {
			if fi, err := os.Stat(image); err == nil && fi.ModTime().UTC().Equal(st.InitrdTime) {
				fmt.Fprintln(stdout, "gokdump rebuild: already loaded")
				return nil
			}
		}
	}
	if kernel, err = k.ImagePath(); err != nil {
		return err
	}
	if rc := run([]string{"load", "--kernel", kernel, "--initrd", image}, stdout, stderr); rc != 0 {
		return fmt.Errorf("load failed")
	}
	return nil
}

// stale reports whether target is missing or older than any input that
// exists.
func stale(target string, inputs []string) bool {
	fi, err := os.Stat(target)
	if err != nil {
		return true
	}
	t := fi.ModTime()
	for _, in := range inputs {
		if ii, err := os.Stat(in); err == nil && ii.ModTime().After(t) {
			return true
		}
	}
	return false
}
