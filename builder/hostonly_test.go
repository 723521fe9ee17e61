package builder

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeSys is a sysfs tree in a temporary directory, with relative links
// as the kernel makes them.
type fakeSys struct {
	t    *testing.T
	root string
}

func newFakeSys(t *testing.T) *fakeSys {
	return &fakeSys{t: t, root: t.TempDir()}
}

func (s *fakeSys) write(p, content string) {
	writeFile(s.t, filepath.Join(s.root, p), content)
}

func (s *fakeSys) mkdir(p string) {
	if err := os.MkdirAll(filepath.Join(s.root, p), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// link makes the link p pointing at target (both relative to the root),
// spelled relative to p's directory.
func (s *fakeSys) link(p, target string) {
	s.t.Helper()
	abs := filepath.Join(s.root, p)
	s.mkdir(filepath.Dir(p))
	rel, err := filepath.Rel(filepath.Dir(abs), filepath.Join(s.root, target))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.Symlink(rel, abs); err != nil {
		s.t.Fatal(err)
	}
}

// driver binds dev to the driver bus/drivers/name of module mod ("" for
// none; "-" for none in the driver's module link but listed under
// /sys/module/*/drivers as a built-in module with parameters is).
func (s *fakeSys) driver(dev, bus, name, mod string) {
	drv := filepath.Join("bus", bus, "drivers", name)
	s.mkdir(drv)
	switch {
	case mod == "":
	case strings.HasPrefix(mod, "-"):
		s.mkdir(filepath.Join("module", mod[1:], "drivers"))
		s.link(filepath.Join("module", mod[1:], "drivers", bus+":"+name), drv)
	default:
		s.mkdir(filepath.Join("module", mod))
		if _, err := os.Lstat(filepath.Join(s.root, drv, "module")); err != nil {
			s.link(filepath.Join(drv, "module"), filepath.Join("module", mod))
		}
	}
	s.link(filepath.Join(dev, "driver"), drv)
}

// disk adds a block device at devdir/block/name whose device is devdir,
// with partitions.
func (s *fakeSys) disk(devdir, name string, parts ...string) {
	b := filepath.Join(devdir, "block", name)
	s.write(filepath.Join(b, "dev"), "1:0\n")
	s.link(filepath.Join(b, "device"), devdir)
	s.link(filepath.Join("class", "block", name), b)
	for _, p := range parts {
		s.write(filepath.Join(b, p, "partition"), "1\n")
		s.link(filepath.Join("class", "block", p), filepath.Join(b, p))
	}
}

const (
	virtioPCI = "devices/pci0000:00/0000:00:04.0"
	nvmePCI   = "devices/pci0000:00/0000:00:05.0"
	ahciPCI   = "devices/pci0000:00/0000:00:1f.2"
)

func (s *fakeSys) virtioDisk() {
	s.driver(virtioPCI, "pci", "virtio-pci", "virtio_pci")
	s.driver(virtioPCI+"/virtio1", "virtio", "virtio_blk", "virtio_blk")
	s.disk(virtioPCI+"/virtio1", "vda", "vda1", "vda2")
}

func (s *fakeSys) nvmeDisk(mod string) {
	s.driver(nvmePCI, "pci", "nvme", mod)
	s.write(nvmePCI+"/nvme/nvme0/dev", "250:0\n")
	s.disk(nvmePCI+"/nvme/nvme0", "nvme0n1", "nvme0n1p1")
}

func (s *fakeSys) sataDisk() {
	s.driver(ahciPCI, "pci", "ahci", "ahci")
	scsi := ahciPCI + "/ata1/host0/target0:0:0/0:0:0:0"
	s.driver(scsi, "scsi", "sd", "sd_mod")
	s.disk(scsi, "sda", "sda1")
}

func TestDetectDrivers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setup   func(s *fakeSys)
		dev     string
		modules []string
		disks   []string
		drivers []string // driver names in order
		notes   []string // substrings
	}{
		{
			name:    "virtio partition",
			setup:   func(s *fakeSys) { s.virtioDisk() },
			dev:     "vda1",
			modules: []string{"virtio_blk", "virtio_pci"},
			disks:   []string{"vda1", "vda"},
			drivers: []string{"virtio_blk", "virtio-pci"},
		},
		{
			name:    "virtio whole disk",
			setup:   func(s *fakeSys) { s.virtioDisk() },
			dev:     "vda",
			modules: []string{"virtio_blk", "virtio_pci"},
			disks:   []string{"vda"},
			drivers: []string{"virtio_blk", "virtio-pci"},
		},
		{
			name:    "nvme under pci",
			setup:   func(s *fakeSys) { s.nvmeDisk("nvme") },
			dev:     "nvme0n1p1",
			modules: []string{"nvme"},
			disks:   []string{"nvme0n1p1", "nvme0n1"},
			drivers: []string{"nvme"},
		},
		{
			name:    "nvme module from /sys/module drivers",
			setup:   func(s *fakeSys) { s.nvmeDisk("-nvme") },
			dev:     "nvme0n1",
			modules: []string{"nvme"},
			disks:   []string{"nvme0n1"},
			drivers: []string{"nvme"},
		},
		{
			name:    "driver with no module",
			setup:   func(s *fakeSys) { s.nvmeDisk("") },
			dev:     "nvme0n1",
			modules: []string{},
			disks:   []string{"nvme0n1"},
			drivers: []string{"nvme"},
		},
		{
			name: "nvme multipath namespace",
			setup: func(s *fakeSys) {
				s.driver(nvmePCI, "pci", "nvme", "nvme")
				s.write(nvmePCI+"/nvme/nvme0/dev", "250:0\n")
				sub := "devices/virtual/nvme-subsystem/nvme-subsys0"
				s.link(sub+"/nvme0", nvmePCI+"/nvme/nvme0")
				s.write(sub+"/subsysnqn", "nqn\n")
				s.disk(sub, "nvme0n1")
			},
			dev:     "nvme0n1",
			modules: []string{"nvme"},
			disks:   []string{"nvme0n1"},
			drivers: []string{"nvme"},
		},
		{
			name:    "sata disk",
			setup:   func(s *fakeSys) { s.sataDisk() },
			dev:     "sda1",
			modules: []string{"sd_mod", "ahci"},
			disks:   []string{"sda1", "sda"},
			drivers: []string{"sd", "ahci"},
		},
		{
			name: "lvm on sata and nvme",
			setup: func(s *fakeSys) {
				s.sataDisk()
				s.nvmeDisk("nvme")
				dm := "devices/virtual/block/dm-0"
				s.write(dm+"/dm/uuid", "LVM-abc\n")
				s.link(dm+"/slaves/sda1", ahciPCI+"/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1")
				s.link(dm+"/slaves/nvme0n1p1", nvmePCI+"/nvme/nvme0/block/nvme0n1/nvme0n1p1")
				s.link("class/block/dm-0", dm)
			},
			dev:     "dm-0",
			modules: []string{"dm_mod", "nvme", "sd_mod", "ahci"},
			disks:   []string{"dm-0", "nvme0n1p1", "nvme0n1", "sda1", "sda"},
			drivers: []string{"nvme", "sd", "ahci"},
		},
		{
			name: "dm-crypt on md raid1 of two virtio disks",
			setup: func(s *fakeSys) {
				s.driver(virtioPCI, "pci", "virtio-pci", "virtio_pci")
				s.driver(virtioPCI+"/virtio1", "virtio", "virtio_blk", "virtio_blk")
				s.disk(virtioPCI+"/virtio1", "vda")
				other := "devices/pci0000:00/0000:00:06.0"
				s.driver(other, "pci", "virtio-pci", "virtio_pci")
				s.driver(other+"/virtio2", "virtio", "virtio_blk", "virtio_blk")
				s.disk(other+"/virtio2", "vdb")
				md := "devices/virtual/block/md0"
				s.write(md+"/md/level", "raid1\n")
				s.link(md+"/slaves/vda", virtioPCI+"/virtio1/block/vda")
				s.link(md+"/slaves/vdb", other+"/virtio2/block/vdb")
				s.link("class/block/md0", md)
				dm := "devices/virtual/block/dm-1"
				s.write(dm+"/dm/uuid", "CRYPT-LUKS2-abc\n")
				s.link(dm+"/slaves/md0", md)
				s.link("class/block/dm-1", dm)
			},
			dev:     "dm-1",
			modules: []string{"dm_mod", "dm_crypt", "md_mod", "raid1", "virtio_blk", "virtio_pci"},
			disks:   []string{"dm-1", "md0", "vda", "vdb"},
			drivers: []string{"virtio_blk", "virtio-pci", "virtio_blk", "virtio-pci"},
		},
		{
			name: "loop device",
			setup: func(s *fakeSys) {
				s.write("devices/virtual/block/loop0/dev", "7:0\n")
				s.link("class/block/loop0", "devices/virtual/block/loop0")
			},
			dev:     "loop0",
			modules: []string{"loop"},
			disks:   []string{"loop0"},
			notes:   []string{"backing file"},
		},
		{
			name: "unknown dm target",
			setup: func(s *fakeSys) {
				s.virtioDisk()
				dm := "devices/virtual/block/dm-2"
				s.write(dm+"/dm/uuid", "mpath-3600\n")
				s.link(dm+"/slaves/vda", virtioPCI+"/virtio1/block/vda")
				s.link("class/block/dm-2", dm)
			},
			dev:     "dm-2",
			modules: []string{"dm_mod", "virtio_blk", "virtio_pci"},
			disks:   []string{"dm-2", "vda"},
			drivers: []string{"virtio_blk", "virtio-pci"},
			notes:   []string{`"mpath-3600" not known`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSys(t)
			tt.setup(s)
			d, err := DetectDrivers(s.root, tt.dev)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Modules(); !slices.Equal(got, tt.modules) {
				t.Errorf("modules %q, want %q", got, tt.modules)
			}
			if !slices.Equal(d.Disks, tt.disks) {
				t.Errorf("disks %q, want %q", d.Disks, tt.disks)
			}
			var drivers []string
			for _, bd := range d.Drivers {
				drivers = append(drivers, bd.Driver)
				if strings.HasPrefix(bd.Device, "/") || !strings.HasPrefix(bd.Device, "devices/") {
					t.Errorf("driver %s: device %q not relative to the sysfs root", bd.Driver, bd.Device)
				}
			}
			if !slices.Equal(drivers, tt.drivers) {
				t.Errorf("drivers %q, want %q", drivers, tt.drivers)
			}
			for _, n := range tt.notes {
				if !slices.ContainsFunc(d.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("notes %q lack %q", d.Notes, n)
				}
			}
			if len(tt.notes) == 0 && len(d.Notes) > 0 {
				t.Errorf("unexpected notes %q", d.Notes)
			}
			for _, n := range d.Needs {
				if n.Why == "" {
					t.Errorf("module %s without a reason", n.Module)
				}
			}
		})
	}
}

func TestDetectDriversWhy(t *testing.T) {
	s := newFakeSys(t)
	s.virtioDisk()
	d, err := DetectDrivers(s.root, "vda1")
	if err != nil {
		t.Fatal(err)
	}
	want := []ModuleNeed{
		{"virtio_blk", "driver virtio_blk of " + virtioPCI + "/virtio1 (vda)"},
		{"virtio_pci", "driver virtio-pci of " + virtioPCI + " (vda)"},
	}
	if !slices.Equal(d.Needs, want) {
		t.Errorf("needs %q, want %q", d.Needs, want)
	}
}

func TestDetectDriversErrors(t *testing.T) {
	s := newFakeSys(t)
	s.virtioDisk()
	// A loop in the stack of devices must end, not recurse forever.
	s.write("devices/virtual/block/dm-3/dm/uuid", "LVM-x\n")
	s.link("devices/virtual/block/dm-3/slaves/dm-3", "devices/virtual/block/dm-3")
	s.link("class/block/dm-3", "devices/virtual/block/dm-3")
	for _, tt := range []struct{ dev, want string }{
		{"nosuch", "not in sysfs"},
		{"../../etc", "bad name"},
		{"", "bad name"},
	} {
		if _, err := DetectDrivers(s.root, tt.dev); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.dev, err, tt.want)
		}
	}
	d, err := DetectDrivers(s.root, "dm-3")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Modules(), []string{"dm_mod"}) {
		t.Errorf("self-stacked dm: modules %q", d.Modules())
	}
}

func TestFilesystemModules(t *testing.T) {
	for fs, want := range map[string][]string{
		"ext2":  {"ext4"},
		"ext3":  {"ext4"},
		"ext4":  {"ext4"},
		"xfs":   {"xfs"},
		"btrfs": {"btrfs"},
		"vfat":  {"vfat", "nls_cp437", "nls_iso8859_1", "nls_utf8"},
		"":      nil,
	} {
		if got := FilesystemModules(fs); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", fs, got, want)
		}
	}
}
