package vm

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"time"
)

// ProbeTimeout bounds the KVM probe. A kernel under KVM reaches the end of
// its own initialisation in one to three seconds; TCG, which the probe
// would otherwise stand for, takes about as long for the same boot.
const ProbeTimeout = 10 * time.Second

// probePanicRE is the panic a kernel with no root filesystem ends its
// boot with: everything of the kernel's own initialisation ran.
var probePanicRE = regexp.MustCompile(`Kernel panic - not syncing`)

// ProbeKVM tells whether m's kernel boots under KVM here: /dev/kvm can be
// opened, the guest is the host's architecture, and the kernel, booted
// under KVM with no initramfs and no root filesystem, runs its whole
// initialisation (to the panic for the missing root) within ProbeTimeout.
// A /dev/kvm that opens is not enough: under some nested hypervisors KVM
// guests hang without a word, or QEMU aborts on an MSR. The reason is
// for the report: why KVM is used, or why not.
func ProbeKVM(ctx context.Context, m Machine) (ok bool, reason string) {
	if hostArch := runtime.GOARCH; m.Arch.GOARCH != hostArch {
		return false, fmt.Sprintf("the guest is %s, the host %s", m.Arch.GOARCH, hostArch)
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("/dev/kvm: %v", err)
	}
	f.Close()
	m.Accel = KVM
	m.Initrd, m.Disks, m.Extra, m.KillOn = "", nil, nil, nil
	// rdinit= names nothing, so a kernel with an initramfs built in
	// (a dedicated capture kernel) ends in the same panic.
	m.Append = "console=" + m.Arch.Console + " panic=-1 rdinit=/gokdump-kvm-probe"
	m.Timeout = ProbeTimeout
	start := time.Now()
	r, err := m.Boot(ctx, "")
	switch {
	case err != nil:
		return false, fmt.Sprintf("the probe did not start: %v", err)
	case r.TimedOut:
		return false, fmt.Sprintf("a KVM guest did not finish booting in %v (%d console lines): KVM hangs here", ProbeTimeout, len(r.Log))
	}
	if _, _, found := r.Log.Find(probePanicRE); !found {
		last := "no output"
		if len(r.Log) > 0 {
			last = r.Log[len(r.Log)-1].Text
		}
		return false, fmt.Sprintf("a KVM guest ended early (%v): %s", r.Err, last)
	}
	return true, fmt.Sprintf("a KVM guest booted in %.1fs", time.Since(start).Seconds())
}
