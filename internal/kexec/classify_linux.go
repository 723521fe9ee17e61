package kexec

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capSysBoot is CAP_SYS_BOOT's bit in the capability sets; kexec needs it.
const capSysBoot = 22

// tristate is a fact that may be unknown.
type tristate int8

const (
	unknown tristate = iota
	no
	yes
)

// loadEnv holds what the machine says about why kexec_file_load failed,
// read after the failure.
type loadEnv struct {
	lockdown     string   // active lockdown mode, "" unknown
	loadDisabled bool     // kernel.kexec_load_disabled
	limitUsedUp  bool     // kernel.kexec_load_limit_panic is 0 (Linux 6.7+)
	capSysBoot   tristate // the process has CAP_SYS_BOOT in its effective set
	loaded       tristate // kexec_crash_loaded after the call
}

// readEnv reads loadEnv from a sysfs and procfs; what cannot be read stays
// unknown, since this only adds detail to an error.
func readEnv(sysfsRoot, procRoot string) loadEnv {
	var e loadEnv
	if b, err := os.ReadFile(filepath.Join(sysfsRoot, "kernel/security/lockdown")); err == nil {
		e.lockdown = parseLockdown(string(b))
	}
	e.loadDisabled, _, _ = readBool(filepath.Join(procRoot, "sys/kernel/kexec_load_disabled"))
	if b, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/kexec_load_limit_panic")); err == nil {
		e.limitUsedUp = strings.TrimSpace(string(b)) == "0"
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, "self/status")); err == nil {
		e.capSysBoot = hasCap(string(b), capSysBoot)
	}
	if v, ok, err := readBool(filepath.Join(sysfsRoot, "kernel/kexec_crash_loaded")); err == nil && ok {
		e.loaded = no
		if v {
			e.loaded = yes
		}
	}
	return e
}

// hasCap reads the CapEff line of a /proc/PID/status.
func hasCap(status string, bit uint) tristate {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return unknown
		}
		if caps&(1<<bit) != 0 {
			return yes
		}
		return no
	}
	return unknown
}

// classify turns the errno of a failed kexec_file_load into an error that
// says why, in terms of p (nil for an unload) and what env shows. The
// errno stays in the chain next to the sentinel.
func classify(errno unix.Errno, p *Plan, env loadEnv) error {
	op := "unload"
	if p != nil {
		op = "load " + p.Kernel
	}
	err := classifyErrno(errno, p, env)
	if p != nil && env.loaded == no {
		// Loading on crash frees the old image first, so most failures
		// leave nothing loaded: say so, a crash now goes uncaught.
		err = fmt.Errorf("%w; no capture kernel is loaded now", err)
	}
	return fmt.Errorf("kexec: %s: %w", op, err)
}

func classifyErrno(errno unix.Errno, p *Plan, env loadEnv) error {
	switch errno {
	case unix.EPERM:
		var why []string
		if env.capSysBoot == no {
			why = append(why, "the process lacks CAP_SYS_BOOT (run as root)")
		}
		if env.loadDisabled {
			why = append(why, "kernel.kexec_load_disabled is set (only a reboot clears it)")
		}
		if env.limitUsedUp {
			why = append(why, "kernel.kexec_load_limit_panic is used up")
		}
		if p != nil && env.lockdown != "" && env.lockdown != "none" {
			why = append(why, fmt.Sprintf("the kernel is locked down (%s) and takes only kernels signed by a key it trusts; this one's signature is missing or did not verify", env.lockdown))
		}
		if len(why) == 0 {
			why = append(why, "lockdown, a kexec signature policy, a security module or a seccomp filter refused it")
		}
		return fmt.Errorf("%w: %s (%w)", ErrNotPermitted, strings.Join(why, "; "), errno)

	case unix.EACCES:
		// The files are open already; the kernel's own read was refused.
		return fmt.Errorf("%w: IMA appraisal or a security module refused the kernel's read of the image (%w)", ErrNotPermitted, errno)

	case unix.ENODATA, unix.ENOKEY, unix.EKEYREJECTED, unix.EKEYEXPIRED, unix.EBADMSG, unix.ELIBBAD, unix.ENOPKG:
		// Only signature verification returns these here, and it returns
		// them only where unsigned kernels are refused outright
		// (CONFIG_KEXEC_SIG_FORCE); under lockdown it is EPERM.
		var what string
		switch errno {
		case unix.ENODATA:
			what = "the image is not signed"
		case unix.ENOKEY:
			what = "its signing key is in none of the kernel's keyrings"
		case unix.EKEYREJECTED, unix.EKEYEXPIRED:
			what = "its signature did not verify"
		case unix.ENOPKG:
			what = "the kernel lacks the signature's algorithm"
		default:
			what = "its signature or PE layout is malformed"
		}
		return fmt.Errorf("%w: the kernel enforces signed kexec images and %s (%w)", ErrSignature, what, errno)

	case unix.ENOEXEC:
		return fmt.Errorf("%w: no kexec loader of the running kernel accepts it: another architecture, not a bzImage, or unable to run with the current paging mode; dmesg says which (%w)", ErrNotKernel, errno)

	case unix.EBUSY:
		return fmt.Errorf("%w: another kexec load or unload is running; try again (%w)", ErrBusy, errno)

	case unix.ENOSYS, unix.EOPNOTSUPP:
		return fmt.Errorf("%w: the running kernel lacks kexec_file_load (CONFIG_KEXEC_FILE) or a seccomp filter hides it (%w)", ErrUnsupported, errno)

	case unix.EADDRNOTAVAIL, unix.ENOMEM, unix.E2BIG, unix.EFBIG:
		if p == nil {
			return errno
		}
		if p.ReservedKnown && p.Reserved == 0 {
			return fmt.Errorf("%w: the kernel found no room, and %s/kernel/kexec_crash_size is 0: boot with crashkernel= (%w)", ErrNoReservation, p.sysfsRoot, errno)
		}
		var also string
		if errno == unix.ENOMEM {
			also = ", or the running kernel ran out of memory reading the files"
		}
		if !p.ReservedKnown {
			return fmt.Errorf("%w: the kernel found no room for the images (is crashkernel= reserved? sysfs could not say)%s (%w)", ErrTooLarge, also, errno)
		}
		if p.Need() > p.Reserved {
			return fmt.Errorf("%w: the kernel found no room for the images: %s%s (%w)", ErrTooLarge, p.sizes(), also, errno)
		}
		// The estimate said it fits; the kernel knows better (part of the
		// reservation may lie elsewhere, as with crashkernel=,high).
		return fmt.Errorf("%w: the kernel found no room for the images, though they should take only about %s of the %s reserved; dmesg may say more%s (%w)",
			ErrTooLarge, MiB(p.Need()), MiB(p.Reserved), also, errno)

	case unix.EINVAL:
		return fmt.Errorf("the kernel rejected the arguments: likely a command line longer than the capture kernel takes; dmesg says (%w)", errno)

	case unix.ETXTBSY:
		return fmt.Errorf("a file is open for writing somewhere, and the kernel will not read it then (%w)", errno)
	}
	return errno
}

// verifyLoaded checks that sysfsRoot/kernel/kexec_crash_loaded says want.
// Without sysfs at sysfsRoot there is nothing to check.
func verifyLoaded(sysfsRoot string, want bool) error {
	if _, err := os.Stat(filepath.Join(sysfsRoot, "kernel")); err != nil {
		return nil
	}
	path := filepath.Join(sysfsRoot, "kernel/kexec_crash_loaded")
	got, ok, err := readBool(path)
	switch {
	case err != nil:
		return fmt.Errorf("kexec: verify: %w", err)
	case !ok:
		return fmt.Errorf("kexec: verify: %w: %s does not exist", ErrNotLoaded, path)
	case got != want && want:
		return fmt.Errorf("kexec: verify: %w: the load succeeded but %s reads 0", ErrNotLoaded, path)
	case got != want:
		return fmt.Errorf("kexec: verify: unload succeeded but %s still reads 1", path)
	}
	return nil
}
