package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/internal/kexec"
)

// loadFixture sets up a fake vmlinuz, a 3 MiB initrd and sysfs/procfs with
// the given reservation and command line; it returns the image paths.
func loadFixture(t *testing.T, crashSize, procCmdline string) (kernel, initrd string) {
	t.Helper()
	root := kexecFixture(t, map[string]string{
		"vmlinuz":                     fakeVmlinuz(),
		"initrd.img":                  strings.Repeat("\x07", 3<<20),
		"sys/kernel/kexec_crash_size": crashSize,
		"proc/cmdline":                procCmdline,
	})
	return filepath.Join(root, "vmlinuz"), filepath.Join(root, "initrd.img")
}

func TestLoadDryRun(t *testing.T) {
	kernel, initrd := loadFixture(t, "134217728\n", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0 crashkernel=128M quiet\n")
	var out bytes.Buffer
	f := &loadFlags{kernel: kernel, initrd: initrd, appends: multiFlag{"loglevel=7", "nr_cpus=2"}, dryRun: true}
	if err := runLoad(f, &out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"kernel:   " + kernel,
		"0.0 MiB file, 40.0 MiB in memory (init_size), boot protocol 2.15",
		"6.99.0-fake #1",
		"initrd:   " + initrd, "3.0 MiB (3145728 bytes)",
		"cmdline:  console=ttyS0 irqpoll reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0 loglevel=7 nr_cpus=2\n",
		"reserved: 128.0 MiB; the load takes about 45.0 MiB, leaving 83.0 MiB",
		"dry run: nothing loaded",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), "warning") {
		t.Errorf("warning with 83 MiB left:\n%s", out.String())
	}
}

func TestLoadDryRunCmdline(t *testing.T) {
	kernel, initrd := loadFixture(t, "134217728", "console=ttyS0 quiet")
	var out bytes.Buffer
	f := &loadFlags{kernel: kernel, initrd: initrd, cmdline: "console=ttyS1 quiet", cmdlineSet: true, dryRun: true}
	if err := runLoad(f, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cmdline:  console=ttyS1 quiet\n") {
		t.Errorf("--cmdline not used as is:\n%s", out.String())
	}
	// An explicitly empty --cmdline is honoured, not replaced by the
	// derived one.
	out.Reset()
	f.cmdline = ""
	if err := runLoad(f, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cmdline:  \n") {
		t.Errorf("empty --cmdline not used:\n%s", out.String())
	}
}

func TestLoadDryRunFails(t *testing.T) {
	tests := []struct {
		name      string
		crashSize string
		flags     func(kernel, initrd string) *loadFlags
		is        error
		want      []string // in output or error
	}{
		{"no reservation", "0", func(k, i string) *loadFlags { return &loadFlags{kernel: k, initrd: i, dryRun: true} },
			kexec.ErrNoReservation, []string{"crashkernel=96M"}},
		{"too small", "41943040", func(k, i string) *loadFlags { return &loadFlags{kernel: k, initrd: i, dryRun: true} },
			kexec.ErrTooLarge, []string{"reservation 40.0 MiB", "5.0 MiB short"}},
		{"tight", "62914560", func(k, i string) *loadFlags { return &loadFlags{kernel: k, initrd: i, dryRun: true} },
			nil, []string{"leaving 15.0 MiB", "warning:  that is tight", "crashkernel=96M is safer"}},
		{"not a kernel", "134217728", func(k, i string) *loadFlags { return &loadFlags{kernel: i, initrd: k, dryRun: true} },
			kexec.ErrNotKernel, []string{"HdrS"}},
		{"cmdline too long", "134217728", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, cmdline: strings.Repeat("x", 2017), cmdlineSet: true, dryRun: true}
		}, kexec.ErrCmdlineTooLong, []string{"at most 2016"}},
		{"cmdline and append", "134217728", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, cmdline: "x", cmdlineSet: true, appends: multiFlag{"y"}, dryRun: true}
		}, nil, []string{"give one"}},
		{"missing initrd", "134217728", func(k, i string) *loadFlags { return &loadFlags{kernel: k, initrd: i + ".gone", dryRun: true} },
			os.ErrNotExist, []string{"initrd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kernel, initrd := loadFixture(t, tt.crashSize, "console=ttyS0")
			var out bytes.Buffer
			err := runLoad(tt.flags(kernel, initrd), &out)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			all := out.String()
			if err != nil {
				all += err.Error()
			}
			if tt.is == nil && tt.name != "tight" && err == nil {
				t.Fatalf("no error:\n%s", all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("%q not in:\n%s", w, all)
				}
			}
		})
	}
}

// The real Debian kernels, as the QEMU tests load them at crashkernel=128M.
func TestLoadDryRunRealKernel(t *testing.T) {
	for _, kernel := range fixture.KernelImages(t) {
		rel := fixture.Release(kernel)
		_, initrd := loadFixture(t, "134217728", "console=ttyS0 crashkernel=128M")
		var out bytes.Buffer
		if err := runLoad(&loadFlags{kernel: kernel, initrd: initrd, dryRun: true}, &out); err != nil {
			t.Fatalf("%s: %v", kernel, err)
		}
		if !strings.Contains(out.String(), "          "+rel+" (") || strings.Contains(out.String(), "warning") {
			t.Errorf("%s:\n%s", kernel, out.String())
		}
	}
}

func TestLoadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if rc := run([]string{"load", "extra"}, &bytes.Buffer{}, &stderr); rc != 2 || !strings.Contains(stderr.String(), "takes no arguments") {
		t.Errorf("load extra: rc %d, %q", rc, stderr.String())
	}
	var help bytes.Buffer
	run([]string{"help", "load"}, &help, &stderr)
	for _, w := range []string{"-kernel", "/boot/vmlinuz-$(uname -r)", "-initrd", "/boot/gokdump-$(uname -r).img", "-append", "-cmdline", "-dry-run", "-syscall"} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, help.String())
		}
	}
}

func TestLoadDryRunConfigKernelArgs(t *testing.T) {
	kernel, initrd := loadFixture(t, "134217728", "console=ttyS0 quiet")
	if err := os.WriteFile(statusConfigPath, []byte("target = \"LABEL=DUMPS\"\nkernel_args = \"loglevel=7 nr_cpus=2\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	f := &loadFlags{kernel: kernel, initrd: initrd, appends: multiFlag{"loglevel=4"}, dryRun: true}
	if err := runLoad(f, &out); err != nil {
		t.Fatal(err)
	}
	// The config's args are added, then --append's: the kernel takes the
	// last of a repeated parameter.
	if want := "cmdline:  console=ttyS0 irqpoll reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0 loglevel=7 nr_cpus=2 loglevel=4\n"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

func TestLoadDryRunNoInitrd(t *testing.T) {
	kernel, _ := loadFixture(t, "134217728", "console=ttyS0")
	var out bytes.Buffer
	if err := runLoad(&loadFlags{kernel: kernel, noInitrd: true, dryRun: true}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "initrd:") || !strings.Contains(out.String(), "the load takes about 42.0 MiB") {
		t.Errorf("kernel alone:\n%s", out.String())
	}
	if err := runLoad(&loadFlags{kernel: kernel, initrd: "x", noInitrd: true, dryRun: true}, &out); err == nil {
		t.Error("--no-initrd with --initrd accepted")
	}
}

// What the capture would read at crash time is checked at load time: the
// config file, and the gokdump.* keys of the command line, whichever way
// it is made.
func TestLoadChecksCaptureConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		config string // "" keeps the fixture's
		flags  func(k, i string) *loadFlags
		want   []string
	}{
		{"bad --append keys", "", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, appends: multiFlag{"gokdump.keep=x gokdump.dump_levle=3"}, dryRun: true}
		}, []string{"gokdump.keep:", "gokdump.dump_levle: unknown key"}},
		{"bad --cmdline key", "", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, cmdline: "console=ttyS0 gokdump.compress=lz4", cmdlineSet: true, dryRun: true}
		}, []string{"gokdump.compress:"}},
		{"bad kernel_args in the config", "target = \"LABEL=DUMPS\"\nkernel_args = \"gokdump.failure_action=explode\"\n", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, dryRun: true}
		}, []string{"gokdump.failure_action:"}},
		{"config that does not parse", "target = \"LABEL=DUMPS\"\ndump_level = 99\n", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, dryRun: true}
		}, []string{":2: dump_level"}},
		{"combination the capture refuses", "target = \"LABEL=DUMPS\"\n", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, appends: multiFlag{"gokdump.failure_action=fallback"}, dryRun: true}
		}, []string{"failure_action", "fallback_target"}},
		{"--config of a missing file", "", func(k, i string) *loadFlags {
			return &loadFlags{kernel: k, initrd: i, config: configFlag{path: i + ".toml", set: true}, dryRun: true}
		}, []string{"no such file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kernel, initrd := loadFixture(t, "134217728", "console=ttyS0")
			if tt.config != "" {
				os.WriteFile(statusConfigPath, []byte(tt.config), 0o600)
			}
			var out bytes.Buffer
			err := runLoad(tt.flags(kernel, initrd), &out)
			if err == nil {
				t.Fatalf("no error:\n%s", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if out.Len() != 0 {
				t.Errorf("printed a plan:\n%s", out.String())
			}
		})
	}
}

// Parameters of the first kernel that would break the capture are left
// out of the derived line, and listed.
func TestLoadDryRunListsDropped(t *testing.T) {
	kernel, initrd := loadFixture(t, "134217728", "root=/dev/vda1 console=ttyS0 nomodule module_blacklist=virtio_blk crashkernel=128M")
	var out bytes.Buffer
	if err := runLoad(&loadFlags{kernel: kernel, initrd: initrd, dryRun: true}, &out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"cmdline:  console=ttyS0 irqpoll nr_cpus=1 reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0\n",
		"dropped:  root=/dev/vda1 (the first kernel's boot: the capture kernel boots its own initramfs)\n",
		"          nomodule module_blacklist=virtio_blk (would keep the capture from loading the dump target's drivers)\n",
		"          crashkernel=128M (meaningful only in the first kernel)\n",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

// capture_cpus becomes nr_cpus= (with disable_cpu_apicid=, on x86, the
// boot CPU's APIC ID), "auto" from the machine's memory; a
// gokdump.capture_cpus= appended wins, as the capture applies it.
func TestLoadCaptureCPUs(t *testing.T) {
	for _, tt := range []struct {
		name, config, meminfo string
		appends               []string
		want                  []string
	}{
		{"auto, small machine", "", "MemTotal:  8000000 kB\n", nil, []string{
			"irqpoll nr_cpus=1 reset_devices",
			`cpus:     1 (capture_cpus = "auto", from default: one per 32 GiB of memory, 1 to 8; this machine has 7.6 GiB)`}},
		{"auto, 256 GiB", "", "MemTotal:  264000000 kB\n", nil, []string{
			"irqpoll nr_cpus=8 disable_cpu_apicid=2 reset_devices", "cpus:     8 ("}},
		{"auto, memory unknown", "", "", nil, []string{
			"irqpoll nr_cpus=1 reset_devices", "this machine's memory is unknown"}},
		{"configured", "capture_cpus = 2\n", "MemTotal:  8000000 kB\n", nil, []string{
			"irqpoll nr_cpus=2 disable_cpu_apicid=2 reset_devices", "cpus:     2 (capture_cpus = 2, from "}},
		{"appended override", "capture_cpus = 2\n", "MemTotal:  8000000 kB\n", []string{"gokdump.capture_cpus=3"}, []string{
			"irqpoll nr_cpus=3 disable_cpu_apicid=2 reset_devices", "cpus:     3 (capture_cpus = 3, from cmdline)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kernel, initrd := loadFixture(t, "268435456", "console=ttyS0 nr_cpus=64")
			os.WriteFile(filepath.Join(kexecProcRoot, "cpuinfo"), []byte("processor\t: 0\napicid\t\t: 2\n\nprocessor\t: 1\napicid\t\t: 0\n"), 0o600)
			if tt.meminfo != "" {
				os.WriteFile(filepath.Join(kexecProcRoot, "meminfo"), []byte(tt.meminfo), 0o600)
			}
			os.WriteFile(statusConfigPath, []byte("target = \"LABEL=DUMPS\"\n"+tt.config), 0o600)
			var out bytes.Buffer
			if err := runLoad(&loadFlags{kernel: kernel, initrd: initrd, appends: tt.appends, dryRun: true}, &out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestLoadSyscall: --syscall takes file or classic, says which the dry run
// would use, and refuses anything else before looking at the files.
func TestLoadSyscall(t *testing.T) {
	kernel, initrd := loadFixture(t, "134217728", "console=ttyS0")
	for _, tc := range []struct{ flag, want string }{
		{"", "syscall:  kexec_file_load, else kexec_load\n"},
		{"file", "syscall:  kexec_file_load\n"},
		{"classic", "syscall:  kexec_load\n"},
	} {
		var out bytes.Buffer
		f := &loadFlags{kernel: kernel, initrd: initrd, syscall: tc.flag, dryRun: true}
		if err := runLoad(f, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("--syscall %q: output lacks %q:\n%s", tc.flag, tc.want, out.String())
		}
	}
	var stderr bytes.Buffer
	if rc := run([]string{"load", "--syscall", "kexec", "--dry-run"}, &bytes.Buffer{}, &stderr); rc != 2 || !strings.Contains(stderr.String(), `--syscall "kexec": want file or classic`) {
		t.Errorf("--syscall kexec: rc %d, %q", rc, stderr.String())
	}
}
