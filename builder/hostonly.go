package builder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNoSysfsDevice means a block device is not in sysfs.
var ErrNoSysfsDevice = errors.New("block device not in sysfs")

// A BoundDriver is a driver bound to one device on the way from a block
// device up to the root of the device tree.
type BoundDriver struct {
	Device string // the device's sysfs path relative to the sysfs root, e.g. devices/pci0000:00/0000:00:04.0
	Driver string // the driver's name as its bus spells it, e.g. virtio-pci
	Module string // the module that provides the driver; "" if sysfs names none
}

// A ModuleNeed is a module a dump target needs and why.
type ModuleNeed struct {
	Module string
	Why    string
}

// A Detection is what DetectDrivers found behind a block device.
type Detection struct {
	// Device is the block device asked about, e.g. vda1.
	Device string
	// Disks are the block devices walked: Device, its whole disk, and
	// the devices a device-mapper or md device sits on.
	Disks []string
	// Drivers are the drivers bound along the way, from the disk end
	// towards the root, without repeats.
	Drivers []BoundDriver
	// Needs are the modules to pack, one entry per module, in the
	// order found: the modules of Drivers and those of device-mapper
	// and md, which no driver link names.
	Needs []ModuleNeed
	// Notes say what could not be followed.
	Notes []string
}

// Modules returns the names of Needs.
func (d *Detection) Modules() []string {
	m := make([]string, len(d.Needs))
	for i, n := range d.Needs {
		m[i] = n.Module
	}
	return m
}

func (d *Detection) need(module, why string) {
	module = NormalizeModuleName(module)
	if module == "" || slices.ContainsFunc(d.Needs, func(n ModuleNeed) bool { return n.Module == module }) {
		return
	}
	d.Needs = append(d.Needs, ModuleNeed{module, why})
}

// maxDetectDepth bounds the stacking of block devices (dm on md on a
// partition …) and the walk up the device tree, against a sysfs that loops.
const maxDetectDepth = 64

// DetectDrivers walks sysfs, rooted at sysDir ("" is /sys), from the block
// device name (as in /sys/class/block) to the drivers that back it: the
// disk's own driver (virtio_blk, sd, …), the drivers of the controllers
// and buses above it (virtio-pci, nvme, ahci, …), and for a device-mapper
// or md device the same for every device it sits on, plus dm_mod or md_mod
// and the RAID personality. It maps each driver to its module through the
// driver's module link, or /sys/module/*/drivers when that is missing.
// It reads files only, so tests can point sysDir at a fake tree.
func DetectDrivers(sysDir, name string) (*Detection, error) {
	if sysDir == "" {
		sysDir = "/sys"
	}
	w := &sysWalker{root: filepath.Clean(sysDir), seen: map[string]bool{}}
	if abs, err := filepath.EvalSymlinks(w.root); err == nil {
		w.root = abs
	}
	d := &Detection{Device: name}
	if err := w.block(d, name, 0); err != nil {
		return nil, err
	}
	return d, nil
}

type sysWalker struct {
	root string
	seen map[string]bool // device directories walked
}

// rel returns p relative to the sysfs root, for messages.
func (w *sysWalker) rel(p string) string {
	if r, err := filepath.Rel(w.root, p); err == nil && filepath.IsLocal(r) {
		return filepath.ToSlash(r)
	}
	return p
}

// block walks one block device.
func (w *sysWalker) block(d *Detection, name string, depth int) error {
	if depth > maxDetectDepth {
		return fmt.Errorf("builder: %s: block devices stacked more than %d deep", name, maxDetectDepth)
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("builder: %w: bad name %q", ErrNoSysfsDevice, name)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(w.root, "class", "block", name))
	if err != nil {
		return fmt.Errorf("builder: %w: %s: %w", ErrNoSysfsDevice, name, err)
	}
	if isFilePath(filepath.Join(dir, "partition")) {
		// …/block/vda/vda1: the whole disk holds the links.
		if !slices.Contains(d.Disks, name) {
			d.Disks = append(d.Disks, name)
		}
		dir = filepath.Dir(dir)
		name = filepath.Base(dir)
	}
	if slices.Contains(d.Disks, name) {
		return nil // reached twice through a stack of devices
	}
	d.Disks = append(d.Disks, name)

	// Stacked devices: device-mapper and md name what they sit on in
	// slaves/, and their own module through dm/ or md/.
	if isDirPath(filepath.Join(dir, "dm")) {
		d.need("dm_mod", name+" is a device-mapper device")
		uuid := readTrim(filepath.Join(dir, "dm", "uuid"))
		switch {
		case strings.HasPrefix(uuid, "CRYPT-"):
			d.need("dm_crypt", name+" is a dm-crypt device")
		case strings.HasPrefix(uuid, "LVM-"):
			// LVM's linear and striped targets are part of dm_mod.
		case uuid != "":
			d.Notes = append(d.Notes, fmt.Sprintf("%s: device-mapper target of uuid %q not known; add its module with --module", name, uuid))
		}
	}
	if isDirPath(filepath.Join(dir, "md")) {
		d.need("md_mod", name+" is an md RAID device")
		if level := readTrim(filepath.Join(dir, "md", "level")); level != "" {
			if m := mdPersonality(level); m != "" {
				d.need(m, name+" is md "+level)
			} else {
				d.Notes = append(d.Notes, fmt.Sprintf("%s: md level %q has no known module", name, level))
			}
		}
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	for _, s := range slaves {
		if err := w.block(d, s.Name(), depth+1); err != nil {
			return err
		}
	}
	dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	if err != nil {
		if len(slaves) == 0 {
			w.virtual(d, name, dir)
		}
		return nil
	}
	return w.up(d, name, dev)
}

// virtual notes block devices with no device below them.
func (w *sysWalker) virtual(d *Detection, name, dir string) {
	switch {
	case strings.HasPrefix(name, "loop"):
		d.need("loop", name+" is a loop device")
		d.Notes = append(d.Notes, name+": the drivers of a loop device's backing file are not followed")
	case isDirPath(filepath.Join(dir, "dm")), isDirPath(filepath.Join(dir, "md")):
	default:
		d.Notes = append(d.Notes, fmt.Sprintf("%s: no device link in %s", name, w.rel(dir)))
	}
}

// up records the drivers bound to dev and to each of its parents.
func (w *sysWalker) up(d *Detection, disk, dev string) error {
	devices := filepath.Join(w.root, "devices")
	found := false
	for i := 0; ; i++ {
		if i > maxDetectDepth {
			return fmt.Errorf("builder: %s: device tree deeper than %d at %s", disk, maxDetectDepth, w.rel(dev))
		}
		rel, err := filepath.Rel(devices, dev)
		if err != nil || !filepath.IsLocal(rel) {
			break // at or above /sys/devices
		}
		if w.seen[dev] {
			return nil // another disk of the same stack got here first
		}
		w.seen[dev] = true
		if bd, ok := w.driver(dev); ok {
			found = true
			d.Drivers = append(d.Drivers, bd)
			why := fmt.Sprintf("driver %s of %s (%s)", bd.Driver, w.rel(dev), disk)
			if bd.Module != "" {
				d.need(bd.Module, why)
			}
		}
		if !found && filepath.Base(filepath.Dir(dev)) == "nvme-subsystem" {
			// A multipath NVMe namespace hangs off its subsystem, which
			// links to the controllers that reach it.
			return w.nvmeSubsystem(d, disk, dev)
		}
		dev = filepath.Dir(dev)
	}
	if !found {
		d.Notes = append(d.Notes, fmt.Sprintf("%s: no driver bound on the way up from its device", disk))
	}
	return nil
}

func (w *sysWalker) nvmeSubsystem(d *Detection, disk, subsys string) error {
	ents, err := os.ReadDir(subsys)
	if err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	n := 0
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 || !strings.HasPrefix(e.Name(), "nvme") {
			continue
		}
		ctrl, err := filepath.EvalSymlinks(filepath.Join(subsys, e.Name()))
		if err != nil {
			continue
		}
		n++
		if err := w.up(d, disk, ctrl); err != nil {
			return err
		}
	}
	if n == 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%s: NVMe subsystem %s links to no controller", disk, w.rel(subsys)))
	}
	return nil
}

// driver returns the driver bound to the device directory dev, if any.
func (w *sysWalker) driver(dev string) (BoundDriver, bool) {
	drv, err := filepath.EvalSymlinks(filepath.Join(dev, "driver"))
	if err != nil {
		return BoundDriver{}, false
	}
	bd := BoundDriver{Device: w.rel(dev), Driver: filepath.Base(drv)}
	if mod, err := filepath.EvalSymlinks(filepath.Join(drv, "module")); err == nil {
		bd.Module = NormalizeModuleName(filepath.Base(mod))
		return bd, true
	}
	// …/bus/BUS/drivers/NAME: a module lists its drivers as BUS:NAME.
	bus := filepath.Base(filepath.Dir(filepath.Dir(drv)))
	mods, _ := filepath.Glob(filepath.Join(w.root, "module", "*", "drivers", bus+":"+bd.Driver))
	if len(mods) > 0 {
		slices.Sort(mods)
		bd.Module = NormalizeModuleName(filepath.Base(filepath.Dir(filepath.Dir(mods[0]))))
	}
	return bd, true
}

// mdPersonality maps /sys/block/mdX/md/level to the module that drives it.
func mdPersonality(level string) string {
	switch level {
	case "raid0", "raid1", "raid10":
		return level
	case "raid4", "raid5", "raid6":
		return "raid456"
	case "linear":
		return "linear"
	case "multipath":
		return "multipath"
	}
	return ""
}

// FilesystemModules returns the modules that mount a filesystem of type
// fstype as blkid names it: ext2 and ext3 are mounted by ext4 (Debian and
// Fedora build no separate drivers), vfat needs its default codepage and
// character sets. Soft dependencies (ext4 → crc32c, btrfs → its hashes)
// are left to the resolver, which reads them from modules.softdep. The
// first name is the filesystem's own; the rest are optional.
func FilesystemModules(fstype string) []string {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return []string{"ext4"}
	case "vfat", "msdos", "fat":
		return []string{"vfat", "nls_cp437", "nls_iso8859_1", "nls_utf8"}
	case "":
		return nil
	}
	return []string{fstype}
}

// GenericModules are packed by a generic (not host-only) image for an
// x86-64 capture kernel when the modules tree has them: the disk drivers
// of common servers, virtual machines and clouds, and the filesystems a
// dump target may have. GenericModulesFor gives the list of each
// architecture.
var GenericModules = []string{
	// disks and their buses
	"nvme", "virtio_blk", "virtio_pci", "virtio_scsi", "sd_mod", "ahci", "ata_piix",
	"xen_blkfront", "hv_storvsc", "vmw_pvscsi", "megaraid_sas", "mpt3sas",
	// filesystems
	"ext4", "xfs", "btrfs", "vfat", "nls_cp437", "nls_iso8859_1", "nls_utf8",
}

// genericModulesARM64 is GenericModules for arm64 servers, boards and
// clouds: virtio over MMIO as well as PCI (QEMU's virt machine, some
// hypervisors), AHCI controllers on the platform bus (SoCs) besides PCI
// ones, and no PC-only drivers (ata_piix, vmw_pvscsi). Debian's arm64
// cloud kernels build nvme and virtio_pci in; the rest are modules there
// or in the generic flavour.
var genericModulesARM64 = []string{
	"nvme", "virtio_blk", "virtio_pci", "virtio_mmio", "virtio_scsi", "sd_mod", "ahci", "ahci_platform",
	"xen_blkfront", "hv_storvsc", "megaraid_sas", "mpt3sas",
	"ext4", "xfs", "btrfs", "vfat", "nls_cp437", "nls_iso8859_1", "nls_utf8",
}

// GenericModulesFor returns the generic image's disk and filesystem
// modules for a capture kernel of GOARCH arch: GenericModules but on
// arm64.
func GenericModulesFor(arch string) []string {
	if arch == "arm64" {
		return slices.Clone(genericModulesARM64)
	}
	return slices.Clone(GenericModules)
}

func isFilePath(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isDirPath(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// readTrim reads a small sysfs attribute; "" if it cannot.
func readTrim(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	return strings.TrimSpace(string(b[:n]))
}
