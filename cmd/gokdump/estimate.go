package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
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
		long: `The estimate adds the loaded kernel (an x86_64 bzImage's init_size, an arm64
Image's image_size), the initrd and kexec's segments, the initramfs
unpacked, the room for the capture kernel and the capture to run (28 MiB
on x86_64, 36 MiB on arm64, measured in QEMU), 8 MiB per TiB of RAM
(in proportion, a whole MiB at least) and 2 MiB for each CPU beyond the
first that the capture kernel brings up (capture_cpus of the config, or
--cpus), and rounds up to a multiple of 16 MiB. For a dedicated capture
kernel with its initramfs built in, give --kernel and --no-initrd.

The kernel file, not this machine, decides the formula: a bzImage is
x86_64; an arm64 Image, plain (Debian's vmlinuz), gzip (Image.gz) or EFI
zboot (vmlinuz.efi), is arm64. A kernel of another machine than this one
needs --ram (that machine's memory). A file of neither format counts its
size, and the estimate says so.

--json prints the same as one object: kernel, arch ("x86_64", "arm64",
"" when the format is not recognised), initrd ("" for none), ram_bytes,
load_bytes, unpacked_bytes, runtime_bytes, ram_term_bytes, cpus,
cpu_term_bytes, sum_bytes, align_bytes, total_bytes, crashkernel (the
value, "112M"), and reserved_bytes and enough when the running kernel has
a reservation (and the kernel is this machine's), and cma (std_bytes,
cma_bytes, crashkernel) when it can reserve part of it as CMA.

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
	Arch          string  `json:"arch"` // kexec.Plan.Arch: "x86_64", "arm64", "" not recognised
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
	// The kernel file decides the formula, whatever machine this is.
	p, err := kexec.NewPlanAnyArch(kernel, initrd, kexecSysfsRoot)
	if err != nil {
		return err
	}
	// A kernel for another machine: this one's memory, reservation and
	// CMA support say nothing about it.
	foreign := p.Arch != "" && p.Arch != kexec.HostArch()
	ram := uint64(f.ram.Size)
	if f.ram.Text == "" {
		if foreign {
			return usagef("%s is an %s kernel and this machine is %s: give --ram, the memory of the machine it is for", kernel, p.Arch, hostName())
		}
		if ram, err = memTotal(kexecProcRoot + "/meminfo"); err != nil {
			return err
		}
	} else if n := size.Note(f.ram.Text, f.ram.Size); n != "" {
		fmt.Fprintf(stderr, "gokdump estimate: note: --ram %s\n", n)
	}
	if p.Arm64 != nil && p.Arm64.PageSize > 4<<10 {
		fmt.Fprintf(stderr, "gokdump estimate: note: %s is built for %s pages; the arm64 runtime term was measured with 4 KiB pages only: check the result with gokdump test\n", kernel, size.Size(p.Arm64.PageSize))
	}
	if p.Arch == "" {
		fmt.Fprintf(stderr, "gokdump estimate: note: %s is neither an x86_64 bzImage nor an arm64 Image (plain, gzip or EFI zboot): its file size is counted as the kernel's memory, and the x86_64 terms\n", kernel)
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
	if st, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot); !foreign && err == nil && st.CMACapable {
		if std, cma, ok := e.CMASplit(); ok {
			split = &cmaSplitJSON{StdBytes: std, CMABytes: cma,
				Crashkernel: fmt.Sprintf("crashkernel=%dM crashkernel=%dM,cma", std>>20, cma>>20)}
		}
	}
	if f.json {
		out := estimateJSON{Kernel: kernel, Arch: p.Arch, Initrd: initrd, RAM: ram, Load: e.Load, Unpacked: e.Unpacked,
			Runtime: e.Runtime, RAMTerm: e.PerRAM, CPUs: e.CPUs, CPUTerm: e.CPUTerm, Sum: e.Sum, Align: kexec.EstimateAlign, Total: e.Total,
			Crashkernel: e.Value(), CMA: split}
		if p.ReservedKnown && !foreign {
			enough := p.Reserved >= e.Total
			out.ReservedBytes, out.Enough = &p.Reserved, &enough
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	in := "initrd " + initrd
	if initrd == "" {
		in = "no initrd (its initramfs built in: counted with the kernel, not unpacked)"
	}
	fmt.Fprintf(w, "kernel %s, %s\nkernel format: %s\ncapture kernel CPUs: %d (%s)\n\n%s", kernel, in, formatLine(p), cpus, cpusWhy, e.Formula())
	if p.ReservedKnown && !foreign {
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

// kernelKind says what the plan read the kernel file as: "x86_64
// bzImage", "arm64 Image, gzip", or "" when neither.
func kernelKind(p *kexec.Plan) string {
	switch {
	case p.Image != nil:
		return "x86_64 bzImage"
	case p.Arm64 != nil && p.Arm64.Compressed != "":
		return "arm64 Image, " + p.Arm64.Compressed
	case p.Arm64 != nil:
		return "arm64 Image"
	}
	return ""
}

// formatLine is estimate's line on the kernel file's format and the
// formula it picks.
func formatLine(p *kexec.Plan) string {
	if k := kernelKind(p); k != "" {
		return fmt.Sprintf("%s (the %s formula)", k, p.Arch)
	}
	return "not recognised (its file size counted, the x86_64 terms)"
}

// hostName is this machine as uname -m names it.
func hostName() string {
	if a := kexec.HostArch(); a != "" {
		return a
	}
	return runtime.GOARCH
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
