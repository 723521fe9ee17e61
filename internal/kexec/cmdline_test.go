package kexec

import (
	"reflect"
	"strings"
	"testing"
)

const added = "irqpoll nr_cpus=1 reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0"

func TestCaptureCmdline(t *testing.T) {
	tests := []struct {
		name, proc, extra, want string
	}{
		{"empty", "", "", added},
		{"newline only", "\n", "", added},
		{
			"debian cloud",
			"BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-cloud-amd64 root=PARTUUID=5d6b-01 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0 crashkernel=256M\n",
			"",
			"console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0 " + added,
		},
		{
			"desktop",
			"BOOT_IMAGE=/vmlinuz initrd=/initrd.img root=/dev/mapper/vg-root rootflags=subvol=@ rootfstype=btrfs rw quiet splash resume=UUID=1234 resume_offset=99 loglevel=3 nvme_core.default_ps_max_latency_us=0",
			"",
			"loglevel=3 nvme_core.default_ps_max_latency_us=0 " + added,
		},
		{
			"cpu and memory layout dropped",
			"nr_cpus=64 maxcpus=32 possible_cpus=64 isolcpus=2-7 nohz_full=2-7 rcu_nocbs=2-7 irqaffinity=0-1 hugepagesz=1G hugepages=16 default_hugepagesz=1G cma=512M hugetlb_cma=4G kernelcore=50% movablecore=10G mem=16G memmap=1G$4G swiotlb=262144 log_buf_len=16M slub_debug=FZ page_owner=on kexec_load_disabled elfcorehdr=0x1234 panic=30 panic_on_warn=1 mitigations=auto",
			"",
			"mitigations=auto " + added,
		},
		{
			"init user space dropped",
			"init=/sbin/init rdinit=/init systemd.unit=multi-user.target systemd.log_level=debug rd.luks.uuid=abc rd.lvm.lv=vg/root plymouth.enable=0 rootwait rootdelay=5 nfsroot=1.2.3.4:/x net.ifnames=0",
			"",
			"net.ifnames=0 " + added,
		},
		{
			"kept as they are",
			"intel_iommu=on iommu=pt amd_iommu=off transparent_hugepage=never earlyprintk ignore_loglevel nokaslr lockdown=integrity oops=panic",
			"",
			"intel_iommu=on iommu=pt amd_iommu=off transparent_hugepage=never earlyprintk ignore_loglevel nokaslr lockdown=integrity oops=panic " + added,
		},
		{
			"what would stop the capture loading drivers dropped",
			"console=ttyS0 nomodule module_blacklist=nvme,virtio_blk module-blacklist=ahci modprobe.blacklist=virtio_scsi rd.driver.blacklist=nvme noinitrd",
			"",
			"console=ttyS0 " + added,
		},
		{
			"capture args not duplicated",
			"irqpoll reset_devices console=ttyS0",
			"",
			"console=ttyS0 " + added,
		},
		{
			"quoted values kept",
			`console=ttyS0 dyndbg="file foo.c +p" "acpi_osi=!Windows 2012" quiet`,
			"",
			`console=ttyS0 dyndbg="file foo.c +p" "acpi_osi=!Windows 2012" ` + added,
		},
		{
			"quoted dropped param",
			`"root=/dev/sda 1" "quiet" console=ttyS0`,
			"",
			"console=ttyS0 " + added,
		},
		{
			"init args after -- dropped",
			"console=ttyS0 -- single emergency",
			"",
			"console=ttyS0 " + added,
		},
		{
			"tabs and runs of spaces",
			"\tconsole=ttyS0   loglevel=7\t\n",
			"",
			"console=ttyS0 loglevel=7 " + added,
		},
		{
			"extra appended",
			"console=ttyS0",
			"gokdump.target=/dev/nvme0n1 intel_iommu=off",
			"console=ttyS0 " + added + " gokdump.target=/dev/nvme0n1 intel_iommu=off",
		},
		{
			"extra overrides derived and added",
			"console=tty0 console=ttyS0 loglevel=3 intel_iommu=on",
			"nr_cpus=2 loglevel=8 intel-iommu=off panic=0",
			"console=tty0 console=ttyS0 irqpoll reset_devices sysctl.vm.overcommit_memory=1 cma=0 nr_cpus=2 loglevel=8 intel-iommu=off panic=0",
		},
		{
			"extra repeated key kept whole",
			"console=tty0 quiet",
			"console=ttyS0,115200 console=tty1",
			"irqpoll nr_cpus=1 reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0 console=ttyS0,115200 console=tty1",
		},
		{
			"extra may bring back a dropped param",
			"mem=16G console=ttyS0",
			"mem=200M",
			"console=ttyS0 " + added + " mem=200M",
		},
		{
			"extra quoted override",
			`dyndbg="file a.c +p" console=ttyS0`,
			`dyndbg="file b.c +p"`,
			`console=ttyS0 ` + added + ` dyndbg="file b.c +p"`,
		},
		{
			"extra init args stay last",
			"console=ttyS0",
			"loglevel=7 -- --verbose loglevel=1",
			"console=ttyS0 " + added + " loglevel=7 -- --verbose loglevel=1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CaptureCmdline(tt.proc, tt.extra, CPUs{})
			if got != tt.want {
				t.Errorf("CaptureCmdline(%q, %q)\n got %q\nwant %q", tt.proc, tt.extra, got, tt.want)
			}
		})
	}
}

func TestDeriveCmdlineSaysWhatItDrops(t *testing.T) {
	got, drops := DeriveCmdline("BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0 nomodule module_blacklist=nvme crashkernel=128M panic=10 systemd.unit=rescue.target quiet -- single",
		"loglevel=7", CPUs{})
	if want := "console=ttyS0 " + added + " loglevel=7"; got != want {
		t.Errorf("cmdline %q, want %q", got, want)
	}
	want := []Dropped{
		{"BOOT_IMAGE=/vmlinuz", "the first kernel's boot: the capture kernel boots its own initramfs"},
		{"root=/dev/vda1", "the first kernel's boot: the capture kernel boots its own initramfs"},
		{"ro", "the first kernel's boot: the capture kernel boots its own initramfs"},
		{"nomodule", "would keep the capture from loading the dump target's drivers"},
		{"module_blacklist=nvme", "would keep the capture from loading the dump target's drivers"},
		{"crashkernel=128M", "meaningful only in the first kernel"},
		{"panic=10", "replaced by the capture kernel's own value"},
		{"systemd.unit=rescue.target", "read by the first kernel's user space"},
		{"quiet", "hides the console messages that say why a dump failed"},
		{"single", "for the first kernel's init"},
	}
	if !reflect.DeepEqual(drops, want) {
		t.Errorf("dropped\n%q\nwant\n%q", drops, want)
	}
}

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b ", []string{"a", "b"}},
		{`a="x y" b`, []string{`a="x y"`, "b"}},
		{`"a=x y" b`, []string{`"a=x y"`, "b"}},
		{`a="unterminated b c`, []string{`a="unterminated b c`}},
		{"a\tb\nc\rd\ve\ff", []string{"a", "b", "c", "d", "e", "f"}},
	}
	for _, tt := range tests {
		if got := splitCmdline(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParamKey(t *testing.T) {
	for in, want := range map[string]string{
		"quiet":            "quiet",
		"root=/dev/sda":    "root",
		`"root=/dev/sd a"`: "root",
		`dyndbg="a=b"`:     "dyndbg",
		"intel-iommu=on":   "intel_iommu",
		"a.b-c=d-e":        "a.b_c",
		"=x":               "",
	} {
		if got := paramKey(in); got != want {
			t.Errorf("paramKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCaptureCmdlineArm64: no irqpoll on arm64, the rest as on x86.
func TestCaptureCmdlineArm64(t *testing.T) {
	defer func(a string) { captureArch = a }(captureArch)
	captureArch = "arm64"
	got := CaptureCmdline("BOOT_IMAGE=/vmlinuz console=ttyAMA0 crashkernel=256M irqpoll", "", CPUs{})
	if want := "console=ttyAMA0 irqpoll nr_cpus=1 reset_devices panic=1 sysctl.vm.overcommit_memory=1 cma=0"; got != want {
		// A user's own irqpoll stays: only the added one is x86's.
		t.Errorf("got  %q\nwant %q", got, want)
	}
	captureArch = "amd64"
	if got := CaptureCmdline("console=ttyS0", "", CPUs{}); !strings.Contains(got, "irqpoll") {
		t.Errorf("x86 capture line without irqpoll: %q", got)
	}
}
