package kexec

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The system calls Plan.Load can load with.
const (
	// SyscallFile is kexec_file_load(2): the kernel reads, verifies
	// (signatures, lockdown) and places the images itself.
	SyscallFile = "file"
	// SyscallClassic is kexec_load(2): gokdump places the images, the
	// ELF core header and a purgatory in the reservation itself
	// (BuildX86). Kernels without CONFIG_KEXEC_FILE (Debian's arm64)
	// have only this one; lockdown refuses it.
	SyscallClassic = "classic"
)

// SyscallName is how a Syscall value is spelled in messages.
func SyscallName(s string) string {
	switch s {
	case SyscallFile:
		return "kexec_file_load"
	case SyscallClassic:
		return "kexec_load"
	}
	return "kexec_file_load, else kexec_load"
}

const (
	pageSize = 4096

	// segmentOverhead is what kexec_file_load places in the reservation
	// besides the kernel and initrd: the ELF core header (sized for every
	// possible CPU and memory range where memory hotplug updates it, up
	// to ~1 MiB), purgatory, boot parameters with the command line and
	// EFI memory map. Generous by design: a reservation this close to
	// full leaves the capture kernel no memory to run in anyway.
	segmentOverhead = 2 << 20

	// maxElfcorehdrArg is the room the x86 loader keeps at the end of
	// the command line for the " elfcorehdr=0x..." it appends.
	maxElfcorehdrArg = 30
)

// A Plan is a capture kernel load as it would happen: the files, their
// sizes, the command line and the reservation they go into. NewPlan reads
// it; Check tests it without loading; Load loads it.
type Plan struct {
	Kernel     string       // path of the kernel image
	KernelSize int64        // its size in bytes
	Arch       string       // the kernel file's machine: ArchX86_64, ArchARM64, or "" when not recognised
	Image      *BzImage     // its x86 setup header (ArchX86_64)
	Arm64      *Arm64Header // its arm64 Image header (ArchARM64)
	Initrd     string       // path of the initrd; "" loads none
	InitrdSize int64
	Cmdline    string // command line passed as is (the kernel appends elfcorehdr=)

	// Syscall picks the system call Load uses: SyscallFile,
	// SyscallClassic, or "" for kexec_file_load where the running
	// kernel has it and kexec_load otherwise. After a load, Used says
	// which one loaded the kernel.
	Syscall string
	Used    string

	// Reserved is the crashkernel= reservation in bytes, if ReservedKnown;
	// it is unknown when sysfs is not mounted or the kernel has no crash
	// dump support, and then only the kernel can judge.
	Reserved      uint64
	ReservedKnown bool

	sysfsRoot string
	sysfsOK   bool // sysfsRoot/kernel exists
}

// The machines a kernel file can be for (Plan.Arch), named as uname -m.
const (
	ArchX86_64 = "x86_64" // a bzImage
	ArchARM64  = "arm64"  // an arm64 Image: plain, gzip or EFI zboot
)

// goarchKernel is the Plan.Arch of the kernels a GOARCH's machine loads.
var goarchKernel = map[string]string{"amd64": ArchX86_64, "arm64": ArchARM64}

// HostArch is the Plan.Arch of the kernels this machine loads ("" on
// others, whose kernels gokdump does not recognise).
func HostArch() string { return goarchKernel[runtime.GOARCH] }

// GOARCHOf is the GOARCH of the machine that loads kernels of a Plan.Arch
// (the architecture of its capture init), "" for none.
func GOARCHOf(arch string) string {
	for goarch, a := range goarchKernel {
		if a == arch && arch != "" {
			return goarch
		}
	}
	return ""
}

// NewPlan reads what loading kernel and initrd with cmdline would take: the
// files' sizes, the kernel's header (a bzImage's on x86-64, an arm64
// Image's on arm64: a file that is not this machine's kernel fails here
// with ErrNotKernel), and the reservation from sysfsRoot ("/sys" on a
// live system). It does not run Check.
func NewPlan(kernel, initrd, cmdline, sysfsRoot string) (*Plan, error) {
	return newPlan(kernel, initrd, cmdline, sysfsRoot, runtime.GOARCH)
}

// NewPlanAnyArch is NewPlan for a kernel of any machine, for an estimate:
// the file's header decides (Plan.Arch), and a file of no format known
// leaves Arch "" and counts the file's size.
func NewPlanAnyArch(kernel, initrd, sysfsRoot string) (*Plan, error) {
	return newPlan(kernel, initrd, "", sysfsRoot, "")
}

// newPlan reads the plan for a machine of goarch ("": the kernel file's
// own, or none).
func newPlan(kernel, initrd, cmdline, sysfsRoot, goarch string) (*Plan, error) {
	p := &Plan{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, sysfsRoot: sysfsRoot}
	f, err := os.Open(kernel)
	if err != nil {
		return nil, fmt.Errorf("kexec: kernel: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kexec: kernel: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("kexec: kernel %s: %w: not a regular file", kernel, ErrNotKernel)
	}
	p.KernelSize = fi.Size()
	if err := p.readHeader(f, goarchKernel[goarch]); err != nil {
		return nil, fmt.Errorf("kexec: kernel %s: %w", kernel, err)
	}
	if initrd != "" {
		fi, err := os.Stat(initrd)
		if err != nil {
			return nil, fmt.Errorf("kexec: initrd: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("kexec: initrd %s: not a regular file", initrd)
		}
		p.InitrdSize = fi.Size()
	}
	if _, err := os.Stat(filepath.Join(sysfsRoot, "kernel")); err == nil {
		p.sysfsOK = true
		p.Reserved, p.ReservedKnown, err = readUint(filepath.Join(sysfsRoot, "kernel/kexec_crash_size"))
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// readHeader recognises the kernel file f by its header: a bzImage, else
// an arm64 Image. When arch is set, a file that is not that machine's
// kernel fails with ErrNotKernel.
func (p *Plan) readHeader(f io.ReaderAt, arch string) error {
	bz, bzErr := ParseBzImage(f, p.KernelSize)
	if bzErr == nil {
		p.Arch, p.Image = ArchX86_64, bz
	} else if a, err := ReadArm64Header(f, p.KernelSize); err == nil {
		p.Arch, p.Arm64 = ArchARM64, a
	} else if arch == ArchARM64 {
		return err
	} else if arch != "" {
		return bzErr
	}
	if arch != "" && p.Arch != arch {
		return fmt.Errorf("%w: an %s kernel; this machine loads %s kernels", ErrNotKernel, p.Arch, arch)
	}
	return nil
}

// KernelMemory is the reservation memory the kernel takes: for a bzImage
// its init_size (room to decompress itself in place), which is several
// times the file's size; for an arm64 Image its image_size (bss included)
// after text_offset, whatever the file's compression; otherwise the
// file's size.
func (p *Plan) KernelMemory() uint64 {
	n := uint64(p.KernelSize)
	switch {
	case p.Image != nil:
		n = uint64(p.Image.InitSize)
		if body := p.KernelSize - p.Image.SetupSize(); body > 0 {
			n = max(n, uint64(body))
		}
	case p.Arm64 != nil:
		n = p.Arm64.TextOffset + p.Arm64.ImageSize
	}
	return alignUp(n, pageSize)
}

// Need estimates how much of the reservation the load takes: the kernel
// (KernelMemory, plus what its placement alignment can waste), the initrd
// and kexec's own segments. The capture kernel then runs in what is left.
func (p *Plan) Need() uint64 {
	align := uint64(pageSize)
	switch {
	case p.Image != nil:
		a := uint64(p.Image.KernelAlignment)
		// A hostile or odd header must not make the estimate absurd.
		if a > align && a <= 1<<30 && a&(a-1) == 0 {
			align = a
		}
	case p.Arm64 != nil:
		align = arm64KernelAlign
	}
	return alignUp(p.KernelMemory(), align) + alignUp(uint64(p.InitrdSize), pageSize) + segmentOverhead
}

// Check reports, before any system call, what would make the load fail:
// ErrUnsupported, ErrNoReservation, ErrTooLarge, ErrCmdlineTooLong.
func (p *Plan) Check() error {
	if p.sysfsOK && !p.ReservedKnown {
		return fmt.Errorf("kexec: %w", errNoCrashDump(p.sysfsRoot))
	}
	if strings.IndexByte(p.Cmdline, 0) >= 0 {
		return fmt.Errorf("kexec: %w: command line contains a NUL byte", ErrCmdlineTooLong)
	}
	if p.Image != nil {
		// The kernel counts the NUL and keeps room for elfcorehdr=.
		limit := int64(p.Image.CmdlineSize) - maxElfcorehdrArg - 1
		if int64(len(p.Cmdline)) > limit {
			return fmt.Errorf("kexec: %w: %d bytes, the kernel takes at most %d with elfcorehdr= appended",
				ErrCmdlineTooLong, len(p.Cmdline), max(limit, 0))
		}
	}
	if !p.ReservedKnown {
		return nil
	}
	if p.Reserved == 0 {
		return fmt.Errorf("kexec: %w (%s/kernel/kexec_crash_size is 0): boot with crashkernel=%s or more",
			ErrNoReservation, p.sysfsRoot, SuggestCrashkernel(p.Need()))
	}
	if need := p.Need(); need > p.Reserved {
		return fmt.Errorf("kexec: %w: %s", ErrTooLarge, p.sizes())
	}
	return nil
}

// sizes explains Need against the reservation, for error messages.
func (p *Plan) sizes() string {
	kernel := fmt.Sprintf("kernel %s", MiB(p.KernelMemory()))
	switch {
	case p.Image != nil:
		kernel += " (its init_size, room to decompress)"
	case p.Arm64 != nil:
		kernel += " (its image_size, bss included)"
	}
	return fmt.Sprintf("%s + initrd %s + about %s for kexec's segments and alignment = %s, reservation %s",
		kernel, MiB(uint64(p.InitrdSize)), MiB(p.Need()-alignUp(uint64(p.InitrdSize), pageSize)-p.KernelMemory()),
		MiB(p.Need()), MiB(p.Reserved))
}

// SuggestCrashkernel proposes a crashkernel= size for a load on this
// machine needing need bytes: that plus the estimate's other terms for a
// typical initramfs and up to 1 TiB of RAM, rounded up to 16 MiB, as
// crashkernel= spells it ("112M").
func SuggestCrashkernel(need uint64) string {
	// The estimate's terms for a machine of up to 1 TiB; EstimateCrashkernel
	// explains them.
	return fmt.Sprintf("%dM", alignUp(need+defaultUnpacked+runtimeFor(HostArch())+perTiB, EstimateAlign)>>20)
}

// MiB formats a byte count in MiB with one decimal, "51.5 MiB".
func MiB(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// LoadCrash loads kernel and initrd ("" for none) with the command line
// cmdline as the capture kernel, as NewPlan(kernel, initrd, cmdline,
// "/sys") followed by Load. cmdline is used as given; CaptureCmdline
// derives the usual one. The checks before and after the load need sysfs
// mounted at /sys; without it the kernel's errno is all there is.
func LoadCrash(kernel, initrd, cmdline string) error {
	p, err := NewPlan(kernel, initrd, cmdline, "/sys")
	if err != nil {
		return err
	}
	return p.Load()
}

// checkCrashSupport fails when sysfs at sysfsRoot shows a kernel without
// crash dump support. Without CONFIG_CRASH_DUMP, Linux 6.9+ takes
// KEXEC_FILE_ON_CRASH as a plain kexec load (or unload): the next reboot,
// not a panic, would boot the capture kernel.
func checkCrashSupport(sysfsRoot string) error {
	if _, err := os.Stat(filepath.Join(sysfsRoot, "kernel")); err != nil {
		return nil // cannot tell
	}
	if _, err := os.Stat(filepath.Join(sysfsRoot, "kernel/kexec_crash_size")); err != nil {
		return errNoCrashDump(sysfsRoot)
	}
	return nil
}

func errNoCrashDump(sysfsRoot string) error {
	return fmt.Errorf("%w: the running kernel has no crash dump support (no %s/kernel/kexec_crash_size)", ErrUnsupported, sysfsRoot)
}
