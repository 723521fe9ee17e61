package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/kexec"
)

func init() {
	register(&command{
		name:  "estimate",
		short: "recommend a crashkernel= size for this machine, showing the formula",
		setup: func(fs *flag.FlagSet) func([]string) error {
			var f estimateFlags
			fs.StringVar(&f.kernel, "kernel", "", "capture kernel `PATH` (default /boot/vmlinuz-$(uname -r), else /usr/lib/modules/$(uname -r)/vmlinuz)")
			fs.StringVar(&f.initrd, "initrd", "", "capture initramfs `PATH` (default as gokdump load's)")
			fs.StringVar(&f.ram, "ram", "", "the machine's memory, e.g. 64G (default: MemTotal of /proc/meminfo)")
			return func(args []string) error {
				if len(args) != 0 {
					return errUsage
				}
				return runEstimate(f, os.Stdout)
			}
		},
	})
}

type estimateFlags struct{ kernel, initrd, ram string }

func runEstimate(f estimateFlags, w io.Writer) error {
	rel, err := loadKernelRelease()
	if err != nil {
		return err
	}
	k, err := hostKernel(rel)
	if err != nil {
		return err
	}
	if f.kernel == "" {
		if f.kernel, err = k.ImagePath(); err != nil {
			return err
		}
	}
	if f.initrd == "" {
		f.initrd = k.Initrd
	}
	var ram uint64
	if f.ram != "" {
		if ram, err = parseSize(f.ram); err != nil {
			return fmt.Errorf("--ram: %w", err)
		}
	} else if ram, err = memTotal(kexecProcRoot + "/meminfo"); err != nil {
		return err
	}
	p, err := kexec.NewPlan(f.kernel, f.initrd, "", kexecSysfsRoot)
	if err != nil {
		return err
	}
	unpacked, err := builder.UnpackedSize(f.initrd)
	if err != nil {
		return err
	}
	e := kexec.EstimateCrashkernel(p, ram, uint64(unpacked))
	fmt.Fprintf(w, "kernel %s, initrd %s\n\n%s", f.kernel, f.initrd, e.Formula())
	if p.ReservedKnown {
		verdict := "enough"
		if p.Reserved < e.Total {
			verdict = "LESS than recommended"
		}
		fmt.Fprintf(w, "\nreserved now: %s (%s)\n", kexec.MiB(p.Reserved), verdict)
	}
	fmt.Fprintf(w, "\nAdd crashkernel=%s to the kernel command line (e.g. GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot.\n", e.Value())
	return nil
}

// memTotal reads MemTotal from a meminfo file.
func memTotal(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s: no MemTotal", path)
}

// parseSize parses 512M, 64G, 2T or a byte count.
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}
