package vm

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
)

func TestDiedBeforeStage1(t *testing.T) {
	panicLine := "[    0.647357] Kernel panic - not syncing: Attempted to kill the idle task!"
	tests := []struct {
		name  string
		lines []string
		want  bool
	}{
		{"early panic", []string{"[    0.30] x86/fpu: x87 FPU will use FXSAVE", panicLine}, true},
		{"panic after stage1", []string{"stage1: [1.20] start, kernel 6.12", panicLine}, false},
		{"no panic", []string{"[    0.30] x86/fpu: x87 FPU will use FXSAVE"}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log Log
			for _, l := range tt.lines {
				log = append(log, Line{Text: l})
			}
			line, got := DiedBeforeStage1(log)
			if got != tt.want || (got && line != panicLine) {
				t.Errorf("diedBeforeStage1 = %q, %v; want %v", line, got, tt.want)
			}
		})
	}
}

// TestCensus counts the pages and markers of a synthetic dump: markers
// inside a page, across two pages, repeated, of another run, and bare
// prefixes that are no marker.
func TestCensus(t *testing.T) {
	const id = "0123456789ab"
	put := map[uint64][]struct {
		off int
		s   string
	}{
		0: {{100, guest.Marker("USER", id, 0)}, {2000, guest.Marker("USER", id, 1)}},
		1: {{100, guest.Marker("USER", id, 0)}, {300, guest.MarkerPrefix("USER", id)}, {600, guest.Marker("KMSG", "ffffffffffff", 0)}},
		// across pfn 2 and 3
		2: {{4096 - 10, guest.Marker("CACHE", id, 7)[:10]}},
		3: {{0, guest.Marker("CACHE", id, 7)[10:]}, {900, guest.Marker("KMSG", id, 0)}},
	}
	path := filepath.Join(t.TempDir(), "core")
	err := fixture.Core{Loads: []fixture.Load{fixture.RAM(0, 6, 6)}, Content: func(pfn uint64, page []byte) {
		clear(page)
		for _, p := range put[pfn] {
			copy(page[p.off:], p.s)
		}
	}}.Build().WriteFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := TakeCensus(path, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pages != 6 || c.Markers["USER"] != 2 || c.Markers["CACHE"] != 1 || c.Markers["KMSG"] != 1 || len(c.Markers) != 3 {
		t.Errorf("census %+v, want 6 pages, USER 2, CACHE 1, KMSG 1", c)
	}
	if at, err := FindMarker(path, guest.Marker("KMSG", id, 0)); err != nil || at != 3<<12+900 {
		t.Errorf("FindMarker = %#x, %v; want %#x", at, err, 3<<12+900)
	}
	if at, err := FindMarker(path, guest.Marker("CACHE", id, 7)); err != nil || at != 3<<12-10 {
		t.Errorf("FindMarker across pages = %#x, %v; want %#x", at, err, 3<<12-10)
	}
	if n, err := CountMarkers(path, guest.MarkerPrefix("USER", id)); err != nil || n != 2 {
		t.Errorf("CountMarkers USER = %d, %v", n, err)
	}
}

func TestMachineArgs(t *testing.T) {
	disks := []DiskDev{{Bus: "nvme", Image: "/w/d0.img"}, {Bus: "virtio", Image: "/w/d1.img", ReadOnly: true}, {Bus: "nvme", Image: "/w/d2.img"}}
	tests := []struct {
		name string
		m    Machine
		want string
	}{
		{"x86 tcg", Machine{Arch: Arches["amd64"], MemMiB: 1024, Kernel: "/k", Initrd: "/i", Append: "console=ttyS0 ", Disks: disks},
			"-accel tcg -m 1024M -smp 1 -nodefaults -display none -serial stdio -no-reboot -kernel /k -initrd /i -append console=ttyS0" +
				" -drive file=/w/d0.img,if=none,id=d0,format=raw -device nvme,drive=d0,serial=d0" +
				" -drive file=/w/d1.img,if=none,id=d1,format=raw,readonly=on -device virtio-blk-pci,drive=d1" +
				" -drive file=/w/d2.img,if=none,id=d2,format=raw -device nvme,drive=d2,serial=d2"},
		{"x86 kvm, no initrd, extra", Machine{Arch: Arches["amd64"], Accel: KVM, MemMiB: 512, CPUs: 2, Kernel: "/k", Append: "a", Extra: []string{"-netdev", "user"}},
			"-accel kvm -cpu max -m 512M -smp 2 -nodefaults -display none -serial stdio -no-reboot -kernel /k -append a -netdev user"},
		{"arm64", Machine{Arch: Arches["arm64"], MemMiB: 1024, Kernel: "/Image", Append: "console=ttyAMA0"},
			"-accel tcg -machine virt,gic-version=3 -cpu max -m 1024M -smp 1 -nodefaults -display none -serial stdio -no-reboot -kernel /Image -append console=ttyAMA0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := tt.m.Args()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(args, " "); got != tt.want {
				t.Errorf("args\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	for _, d := range []DiskDev{{Bus: "scsi", Image: "/d"}, {Bus: "nvme", Image: "/a,b"}} {
		if _, err := (Machine{Arch: Arches["amd64"], Disks: []DiskDev{d}}).Args(); err == nil {
			t.Errorf("disk %+v accepted", d)
		}
	}
	if _, err := ArchOf("riscv64"); err == nil {
		t.Error("riscv64 has an Arch")
	}
}

func TestDevicePath(t *testing.T) {
	buses := []string{"nvme", "virtio", "nvme", "virtio", "virtio"}
	want := []string{"/dev/nvme0n1", "/dev/vda", "/dev/nvme1n1", "/dev/vdb", "/dev/vdc"}
	for i := range buses {
		if got := DevicePath(buses, i); got != want[i] {
			t.Errorf("disk %d: %s, want %s", i, got, want[i])
		}
	}
}

func TestParseOutcomeAndPhases(t *testing.T) {
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	log := Log{
		{at(1), "[    0.5] Linux version 6.1"},
		{at(2.5), "stage1: [1.91] start, kernel 6.1.0-57-cloud-amd64"},
		{at(3.5), "stage1: [2.90] capture kernel loaded in 0.9s"},
		{at(5), "stage1: [4.20] crashing now (sysrq c)"},
		{at(6), "gokdump: saved /var/crash/x/vmcore bytes=1 seconds=0.1 level=31 format=kdump status=0"}, // the first kernel's: not counted
		{at(10), "gokdump: [0.1] starting"},
		{at(14), "gokdump: saved /var/crash/2026/vmcore bytes=123 seconds=3.1 level=31 format=kdump status=0"},
		{at(14.2), "gokdump: ACTION poweroff"},
	}
	o := ParseOutcome(log)
	if o.Status != "saved" || o.Path != "/var/crash/2026/vmcore" || o.Bytes != 123 || o.Level != 31 || o.Code != 0 || o.Action != "poweroff" {
		t.Errorf("outcome %s", o)
	}
	var names []string
	for _, p := range Phases(log, at(15)) {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "stage1 init,capture kernel loaded,crash,capture init,dump saved,qemu exit" {
		t.Errorf("phases %s", got)
	}
	if r := PhaseReport(log, at(15)); !strings.Contains(r, "panic → QEMU exit: 10.00s") {
		t.Errorf("report:\n%s", r)
	}
}
