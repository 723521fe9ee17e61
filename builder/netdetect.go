package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A NetDetection is what DetectNetDrivers found behind a network
// interface.
type NetDetection struct {
	Detection
	// NICs are the physical interfaces (with a device) the interface
	// sits on: itself, or a bond's, bridge's or VLAN's lower devices.
	NICs []NIC
}

// NIC is a network interface backed by a device.
type NIC struct {
	Name   string
	MAC    string
	Driver string
}

// DetectNetDrivers walks sysfs, rooted at sysDir ("" is /sys), from the
// network interface ifname (as in /sys/class/net) to the drivers that
// back it, as DetectDrivers does for a block device: the NIC's driver
// (virtio_net, e1000e, ixgbe, mlx5_core, …) and those of the buses above
// it. A bond, bridge or VLAN is followed through its lower_* links to the
// NICs under it.
func DetectNetDrivers(sysDir, ifname string) (*NetDetection, error) {
	if sysDir == "" {
		sysDir = "/sys"
	}
	w := &sysWalker{root: filepath.Clean(sysDir), seen: map[string]bool{}}
	if abs, err := filepath.EvalSymlinks(w.root); err == nil {
		w.root = abs
	}
	d := &NetDetection{Detection: Detection{Device: ifname}}
	if err := w.netIf(d, ifname, 0); err != nil {
		return nil, err
	}
	if len(d.NICs) == 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%s has no network device under it (loopback, tunnel or a virtual interface gokdump cannot follow)", ifname))
	}
	return d, nil
}

func (w *sysWalker) netIf(d *NetDetection, name string, depth int) error {
	if depth > maxDetectDepth {
		return fmt.Errorf("builder: %s: network interfaces stacked more than %d deep", name, maxDetectDepth)
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("builder: bad interface name %q", name)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(w.root, "class", "net", name))
	if err != nil {
		return fmt.Errorf("builder: network interface %s: %w", name, err)
	}
	if slices.Contains(d.Disks, name) {
		return nil
	}
	d.Disks = append(d.Disks, name)
	dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	if err == nil {
		nic := NIC{Name: name, MAC: readTrim(filepath.Join(dir, "address"))}
		if err := w.up(&d.Detection, name, dev); err != nil {
			return err
		}
		if bd, ok := w.driver(dev); ok {
			nic.Driver = bd.Driver
		}
		d.NICs = append(d.NICs, nic)
		return nil
	}
	ents, _ := os.ReadDir(dir)
	lower := 0
	for _, e := range ents {
		if l, ok := strings.CutPrefix(e.Name(), "lower_"); ok {
			lower++
			if err := w.netIf(d, l, depth+1); err != nil {
				return err
			}
		}
	}
	if lower > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%s is a virtual interface over %d others: the capture configures the NIC under it directly (no bond, bridge or VLAN)", name, lower))
	}
	return nil
}

// GenericNetModules are packed by a generic image whose target is on the
// network, when the modules tree has them: the NICs of common servers,
// virtual machines and clouds.
var GenericNetModules = []string{
	"virtio_net", "virtio_pci", "e1000", "e1000e", "igb", "igc", "ixgbe", "i40e", "ice",
	"mlx5_core", "bnxt_en", "tg3", "r8169", "vmxnet3", "hv_netvsc", "ena", "gve", "xen_netfront",
}

// NFSModules mount an nfs target: the NFSv4 client (4.0, 4.1, 4.2) and
// NFSv3's, with sunrpc and the rest of their closure.
var NFSModules = []string{"nfsv4", "nfsv3"}
