package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/kexec"
	"github.com/gokdump/gokdump/internal/size"
)

func init() {
	register(&command{
		name:  "estimate",
		short: "recommend a crashkernel= size for this machine, showing the formula",
		long: `The estimate adds the loaded kernel (its init_size), the initrd and kexec's
segments, the initramfs unpacked, 28 MiB for the capture kernel and the
capture to run, 8 MiB per TiB of RAM (in proportion, a whole MiB at
least) and 2 MiB for each CPU beyond the first that the capture kernel
brings up (capture_cpus of the config, or --cpus), and rounds up to a
multiple of 16 MiB. For a dedicated capture kernel with its initramfs
built in, give --kernel and --no-initrd.

--json prints the same as one object: kernel, initrd ("" for none),
ram_bytes, load_bytes, unpacked_bytes, runtime_bytes, ram_term_bytes,
cpus, cpu_term_bytes, sum_bytes, align_bytes, total_bytes, crashkernel
(the value, "112M"), and
reserved_bytes and enough when the running kernel has a reservation, and cma
(std_bytes, cma_bytes, crashkernel) when it can reserve part of it as CMA.

On a kernel that can (Linux 6.17+ on x86_64, built with CONFIG_CMA), it
also recommends a split: crashkernel=X for what is loaded and
crashkernel=Y,cma for the rest, lent to the running system until a crash.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var f estimateFlags
			fs.StringVar(&f.kernel, "kernel", "", "capture kernel `PATH` (default /boot/vmlinuz-$(uname -r), else /usr/lib/modules/$(uname -r)/vmlinuz)")
			fs.Var(&f.initrd, "initrd", "capture initramfs `PATH` (default as gokdump load's); --no-initrd for none")
			fs.BoolVar(&f.noInitrd, "no-initrd", false, "the kernel alone: a dedicated capture kernel with its initramfs built in")
			fs.Var(&f.ram, "ram", "the machine's memory as a `SIZE`: 64G (or 64GiB), 1.5T, 512M; 64GB is powers of 1000\n(default: MemTotal of /proc/meminfo)")
			fs.IntVar(&f.cpus, "cpus", 0, fmt.Sprintf("the capture kernel's CPUs, 1..%d (default: capture_cpus of the config; \"auto\" follows the memory)", config.MaxCaptureCPUs))
			f.config.define(fs, statusConfigPath, "configuration `FILE` whose capture_cpus is counted")
			fs.BoolVar(&f.json, "json", false, "print the estimate as JSON")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				return runEstimate(f, s.out, s.err)
			}
		},
	})
}

type estimateFlags struct {
	kernel   string
	initrd   stringFlag
	noInitrd bool
	ram      size.Flag
	cpus     int
	config   configFlag
	json     bool
}

// stringFlag is a string flag that knows whether it was given, so that an
// empty value given on purpose is not taken for the default.
type stringFlag struct {
	value string
	set   bool
}

func (s *stringFlag) String() string { return s.value }

func (s *stringFlag) Set(v string) error {
	s.value, s.set = v, true
	return nil
}

// estimateJSON is what estimate --json prints; the field names are
// documented in the command's help and the README and do not change.
type estimateJSON struct {
	Kernel        string  `json:"kernel"`
	Initrd        string  `json:"initrd"`
	RAM           uint64  `json:"ram_bytes"`
	Load          uint64  `json:"load_bytes"`
	Unpacked      uint64  `json:"unpacked_bytes"`
	Runtime       uint64  `json:"runtime_bytes"`
	RAMTerm       uint64  `json:"ram_term_bytes"`
	CPUs          int     `json:"cpus"`
	CPUTerm       uint64  `json:"cpu_term_bytes"`
	Sum           uint64  `json:"sum_bytes"`
	Align         uint64  `json:"align_bytes"`
	Total         uint64  `json:"total_bytes"`
	Crashkernel   string  `json:"crashkernel"`
	ReservedBytes *uint64 `json:"reserved_bytes,omitempty"`
	Enough        *bool   `json:"enough,omitempty"`
	// CMA is the split for a running kernel that can reserve part of it
	// as CMA (crashkernel=…,cma, Linux 6.17+ on x86_64).
	CMA *cmaSplitJSON `json:"cma,omitempty"`
}

type cmaSplitJSON struct {
	StdBytes    uint64 `json:"std_bytes"`
	CMABytes    uint64 `json:"cma_bytes"`
	Crashkernel string `json:"crashkernel"` // "crashkernel=80M crashkernel=48M,cma"
}

func runEstimate(f estimateFlags, w, stderr io.Writer) error {
	if f.cpus < 0 || f.cpus > config.MaxCaptureCPUs {
		return usagef("--cpus %d: want 1 to %d", f.cpus, config.MaxCaptureCPUs)
	}
	kernel, initrd, err := captureFiles(f.kernel, f.initrd.value, f.initrd.set, f.noInitrd)
	if err != nil {
		return err
	}
	cfg, err := f.config.loadOr(statusConfigPath)
	if err != nil {
		return err
	}
	ram := uint64(f.ram.Size)
	if f.ram.Text == "" {
		if ram, err = memTotal(kexecProcRoot + "/meminfo"); err != nil {
			return err
		}
	} else if n := size.Note(f.ram.Text, f.ram.Size); n != "" {
		fmt.Fprintf(stderr, "gokdump estimate: note: --ram %s\n", n)
	}
	p, err := kexec.NewPlan(kernel, initrd, "", kexecSysfsRoot)
	if err != nil {
		return err
	}
	var unpacked int64
	if initrd != "" {
		if unpacked, err = builder.UnpackedSize(initrd); err != nil {
			return err
		}
	}
	cpus, cpusWhy := f.cpus, "--cpus"
	if cpus == 0 {
		cpus, cpusWhy = captureCPUs(cfg, cfg.KernelArgs, ram, nil)
	}
	e := kexec.EstimateCrashkernel(p, ram, uint64(unpacked), cpus)
	var split *cmaSplitJSON
	// Only for a running kernel that can: elsewhere ,cma is ignored.
	if st, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot); err == nil && st.CMACapable {
		if std, cma, ok := e.CMASplit(); ok {
			split = &cmaSplitJSON{StdBytes: std, CMABytes: cma,
				Crashkernel: fmt.Sprintf("crashkernel=%dM crashkernel=%dM,cma", std>>20, cma>>20)}
		}
	}
	if f.json {
		out := estimateJSON{Kernel: kernel, Initrd: initrd, RAM: ram, Load: e.Load, Unpacked: e.Unpacked,
			Runtime: e.Runtime, RAMTerm: e.PerRAM, CPUs: e.CPUs, CPUTerm: e.CPUTerm, Sum: e.Sum, Align: kexec.EstimateAlign, Total: e.Total,
			Crashkernel: e.Value(), CMA: split}
		if p.ReservedKnown {
			enough := p.Reserved >= e.Total
			out.ReservedBytes, out.Enough = &p.Reserved, &enough
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	in := "initrd " + initrd
	if initrd == "" {
		in = "no initrd (its initramfs built in: counted in init_size, not unpacked)"
	}
	fmt.Fprintf(w, "kernel %s, %s\ncapture kernel CPUs: %d (%s)\n\n%s", kernel, in, cpus, cpusWhy, e.Formula())
	if p.ReservedKnown {
		verdict := "enough"
		if p.Reserved < e.Total {
			verdict = "LESS than recommended"
		}
		fmt.Fprintf(w, "\nreserved now: %s (%s)\n", size.Size(p.Reserved), verdict)
	}
	fmt.Fprintf(w, "\nAdd crashkernel=%s to the kernel command line (e.g. GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot.\n", e.Value())
	if split != nil {
		fmt.Fprintf(w, "\nThis kernel can lend most of it to the running system as CMA: %s\n"+
			"reserves %s for what is loaded (kernel, initrd) and %s as CMA, which the running system uses\n"+
			"for movable memory until a crash. What it keeps there is not in a dump (fine at dump_level 31),\n"+
			"and a device still doing DMA into it at the crash can corrupt the capture kernel: the kernel's\n"+
			"documentation calls it less reliable, for machines that cannot spare the whole reservation.\n",
			split.Crashkernel, size.Size(split.StdBytes), size.Size(split.CMABytes))
	}
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
