package builder

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// netIf adds interface name at devdir/net/name (devdir "" for a virtual
// one, under devices/virtual/net) with MAC mac.
func (s *fakeSys) netIf(devdir, name, mac string, lower ...string) {
	d := filepath.Join("devices", "virtual", "net", name)
	if devdir != "" {
		d = filepath.Join(devdir, "net", name)
		s.link(filepath.Join(d, "device"), devdir)
	}
	s.write(filepath.Join(d, "address"), mac+"\n")
	s.link(filepath.Join("class", "net", name), d)
	for _, l := range lower {
		s.link(filepath.Join(d, "lower_"+l), filepath.Join("class", "net", l))
	}
}

func TestDetectNetDrivers(t *testing.T) {
	s := newFakeSys(t)
	// virtio-net on PCI, and an e1000e NIC under a bond.
	pci := "devices/pci0000:00/0000:00:03.0"
	s.mkdir(pci)
	s.driver(pci, "pci", "virtio-pci", "virtio_pci")
	vdev := filepath.Join(pci, "virtio0")
	s.driver(vdev, "virtio", "virtio_net", "virtio_net")
	s.netIf(vdev, "enp0s3", "52:54:00:12:34:56")
	e := "devices/pci0000:00/0000:00:1f.6"
	s.driver(e, "pci", "e1000e", "e1000e")
	s.netIf(e, "eno1", "3c:ec:ef:00:00:01")
	s.netIf("", "bond0", "3c:ec:ef:00:00:01", "eno1")
	s.netIf("", "lo", "00:00:00:00:00:00")

	d, err := DetectNetDrivers(s.root, "enp0s3")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Modules(); !slices.Equal(got, []string{"virtio_net", "virtio_pci"}) {
		t.Errorf("modules %v", got)
	}
	if len(d.NICs) != 1 || d.NICs[0] != (NIC{Name: "enp0s3", MAC: "52:54:00:12:34:56", Driver: "virtio_net"}) {
		t.Errorf("NICs %+v", d.NICs)
	}

	d, err = DetectNetDrivers(s.root, "bond0")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Modules(); !slices.Equal(got, []string{"e1000e"}) || len(d.NICs) != 1 || d.NICs[0].Name != "eno1" {
		t.Errorf("bond0: modules %v, NICs %+v", got, d.NICs)
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "bond0 is a virtual interface") {
		t.Errorf("notes %q", d.Notes)
	}

	d, err = DetectNetDrivers(s.root, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.NICs) != 0 || len(d.Needs) != 0 || len(d.Notes) != 1 {
		t.Errorf("lo: %+v", d)
	}
	if _, err := DetectNetDrivers(s.root, "eth9"); err == nil {
		t.Error("no error for a missing interface")
	}
	if _, err := DetectNetDrivers(s.root, "../x"); err == nil {
		t.Error("no error for a bad name")
	}
}
