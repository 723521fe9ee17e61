package kexec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"golang.org/x/sys/unix"
)

func TestClassify(t *testing.T) {
	fits := &Plan{Kernel: "/boot/vmlinuz", KernelSize: 8192, InitrdSize: 3 << 20,
		Image:    &BzImage{SetupSects: 3, InitSize: 40 << 20, KernelAlignment: 2 << 20},
		Reserved: 128 << 20, ReservedKnown: true, sysfsRoot: "/sys"}
	small := new(Plan)
	*small = *fits
	small.Reserved = 40 << 20
	none := &Plan{Kernel: "/boot/vmlinuz", KernelSize: 8192, ReservedKnown: true, sysfsRoot: "/sys"}
	blind := &Plan{Kernel: "/boot/vmlinuz", KernelSize: 8192}

	tests := []struct {
		name  string
		errno unix.Errno
		plan  *Plan // nil: unload
		env   loadEnv
		is    error // nil: only the errno
		want  []string
		not   []string
	}{
		{"eperm no cap", unix.EPERM, fits, loadEnv{capSysBoot: no}, ErrNotPermitted,
			[]string{"load /boot/vmlinuz", "CAP_SYS_BOOT"}, []string{"locked down"}},
		{"eperm lockdown", unix.EPERM, fits, loadEnv{capSysBoot: yes, lockdown: "integrity"}, ErrNotPermitted,
			[]string{"locked down (integrity)", "signed"}, []string{"CAP_SYS_BOOT"}},
		{"eperm disabled", unix.EPERM, fits, loadEnv{capSysBoot: yes, loadDisabled: true, lockdown: "none"}, ErrNotPermitted,
			[]string{"kexec_load_disabled"}, []string{"locked down"}},
		{"eperm limit", unix.EPERM, fits, loadEnv{limitUsedUp: true}, ErrNotPermitted,
			[]string{"kexec_load_limit_panic"}, nil},
		{"eperm unknown", unix.EPERM, fits, loadEnv{}, ErrNotPermitted,
			[]string{"lockdown, a kexec signature policy"}, nil},
		{"eperm unload under lockdown", unix.EPERM, nil, loadEnv{capSysBoot: no, lockdown: "integrity"}, ErrNotPermitted,
			[]string{"unload:", "CAP_SYS_BOOT"}, []string{"locked down"}},
		{"ima", unix.EACCES, fits, loadEnv{}, ErrNotPermitted, []string{"IMA"}, nil},
		{"unsigned", unix.ENODATA, fits, loadEnv{}, ErrSignature, []string{"not signed"}, nil},
		{"unknown key", unix.ENOKEY, fits, loadEnv{}, ErrSignature, []string{"keyrings"}, nil},
		{"bad signature", unix.EKEYREJECTED, fits, loadEnv{}, ErrSignature, []string{"did not verify"}, nil},
		{"not a kernel", unix.ENOEXEC, fits, loadEnv{}, ErrNotKernel, []string{"architecture"}, nil},
		{"busy", unix.EBUSY, fits, loadEnv{}, ErrBusy, []string{"try again"}, nil},
		{"no syscall", unix.ENOSYS, nil, loadEnv{}, ErrUnsupported, []string{"CONFIG_KEXEC_FILE"}, nil},
		{"no room, no reservation", unix.EADDRNOTAVAIL, none, loadEnv{}, ErrNoReservation,
			[]string{"kexec_crash_size is 0"}, nil},
		{"no room, estimate fits", unix.EADDRNOTAVAIL, fits, loadEnv{}, ErrTooLarge,
			[]string{"about 45.0 MiB of the 128.0 MiB reserved"}, []string{"ran out of memory"}},
		{"no room, sizes", unix.EADDRNOTAVAIL, small, loadEnv{}, ErrTooLarge,
			[]string{"kernel 40.0 MiB", "initrd 3.0 MiB", "= 45.0 MiB", "reservation 40.0 MiB"}, []string{"ran out of memory"}},
		{"enomem", unix.ENOMEM, small, loadEnv{}, ErrTooLarge,
			[]string{"reservation 40.0 MiB", "ran out of memory"}, nil},
		{"e2big blind", unix.E2BIG, blind, loadEnv{}, ErrTooLarge, []string{"sysfs could not say"}, nil},
		{"einval", unix.EINVAL, fits, loadEnv{}, nil, []string{"command line"}, nil},
		{"other", unix.EIO, fits, loadEnv{}, nil, []string{"load /boot/vmlinuz: input/output error"}, nil},
		{"left unloaded", unix.ENOEXEC, fits, loadEnv{loaded: no}, ErrNotKernel,
			[]string{"no capture kernel is loaded now"}, nil},
		{"still loaded", unix.EBUSY, fits, loadEnv{loaded: yes}, ErrBusy,
			nil, []string{"loaded now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.errno, tt.plan, tt.env)
			if !errors.Is(err, tt.errno) {
				t.Errorf("%v does not wrap %v", err, tt.errno)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
			for _, s := range []error{ErrNoReservation, ErrTooLarge, ErrNotKernel, ErrNotPermitted, ErrSignature, ErrBusy, ErrUnsupported} {
				if s != tt.is && errors.Is(err, s) {
					t.Errorf("%v is also %v", err, s)
				}
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "kexec: ") {
				t.Errorf("%q lacks the package prefix", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not mention %q", msg, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(msg, w) {
					t.Errorf("%q mentions %q", msg, w)
				}
			}
		})
	}
}

func TestReadEnv(t *testing.T) {
	root := fixture.Tree(t, map[string]string{
		"sys/kernel/security/lockdown":           "none integrity [confidentiality]\n",
		"sys/kernel/kexec_crash_loaded":          "0\n",
		"proc/sys/kernel/kexec_load_disabled":    "1\n",
		"proc/sys/kernel/kexec_load_limit_panic": "0\n",
		"proc/self/status":                       "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000400000\n",
	})
	got := readEnv(filepath.Join(root, "sys"), filepath.Join(root, "proc"))
	want := loadEnv{lockdown: "confidentiality", loadDisabled: true, limitUsedUp: true, capSysBoot: yes, loaded: no}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := readEnv(filepath.Join(root, "nothing"), filepath.Join(root, "nothing")); got != (loadEnv{}) {
		t.Errorf("empty roots: %+v", got)
	}
}

func TestHasCap(t *testing.T) {
	for status, want := range map[string]tristate{
		"CapEff:\t000001ffffffffff\n":              yes,
		"CapEff:\t0000000000000000\n":              no,
		"CapPrm:\tffff\nCapEff:\t00000000003fffff": no, // bit 22 clear
		"CapEff:\tzz\n":                            unknown,
		"Name:\tx\n":                               unknown,
	} {
		if got := hasCap(status, capSysBoot); got != want {
			t.Errorf("hasCap(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestVerifyLoaded(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		want   bool
		is     error
		errMsg string
	}{
		{"loaded", map[string]string{"sys/kernel/kexec_crash_loaded": "1\n"}, true, nil, ""},
		{"unloaded", map[string]string{"sys/kernel/kexec_crash_loaded": "0\n"}, false, nil, ""},
		{"not loaded", map[string]string{"sys/kernel/kexec_crash_loaded": "0\n"}, true, ErrNotLoaded, "reads 0"},
		{"still loaded", map[string]string{"sys/kernel/kexec_crash_loaded": "1\n"}, false, nil, "still reads 1"},
		{"no file", map[string]string{"sys/kernel/x": ""}, true, ErrNotLoaded, "does not exist"},
		{"no sysfs", map[string]string{"x": ""}, true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyLoaded(filepath.Join(fixture.Tree(t, tt.files), "sys"), tt.want)
			if tt.errMsg == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errMsg) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.is, tt.errMsg)
			}
		})
	}
}
