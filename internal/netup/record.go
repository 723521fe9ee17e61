package netup

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/gokdump/gokdump/internal/config"
)

// RecordPath is where the image holds its Record.
const RecordPath = "/etc/gokdump/net.json"

// maxRecordSize bounds a Record read from the image.
const maxRecordSize = 64 << 10

// Interface is a network interface that reached a target when the image
// was built.
type Interface struct {
	// Name is the interface's name on the build machine; the capture
	// kernel may name it otherwise.
	Name string `json:"name"`
	// MAC is its permanent hardware address, as the capture finds it.
	MAC string `json:"mac"`
	// Driver is the driver bound to its device, for the log.
	Driver string `json:"driver,omitempty"`
	// Target is the target it routes to.
	Target string `json:"target,omitempty"`
}

// Record lists the interfaces the image was built for.
type Record struct {
	Interfaces []Interface `json:"interfaces"`
}

// ErrBadRecord is wrapped by ParseRecord's errors.
var ErrBadRecord = errors.New("netup: bad interface record")

// ParseRecord parses a Record; MAC addresses must parse.
func ParseRecord(b []byte) (*Record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadRecord, maxRecordSize)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	for i, in := range r.Interfaces {
		hw, err := net.ParseMAC(in.MAC)
		if err != nil {
			return nil, fmt.Errorf("%w: interface %q: %v", ErrBadRecord, in.Name, err)
		}
		r.Interfaces[i].MAC = hw.String()
	}
	return &r, nil
}

// MACs returns the recorded hardware addresses, normalised, without
// repeats.
func (r *Record) MACs() []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, in := range r.Interfaces {
		if m := strings.ToLower(in.MAC); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Marshal is the Record as the builder packs it: indented JSON, stable.
func (r *Record) Marshal() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

// Plan is how the interface is to be configured.
type Plan struct {
	// DHCP4 and DHCP6 ask a DHCP server; otherwise Static is set.
	DHCP4, DHCP6 bool
	Static       []netip.Prefix
	Gateways     []netip.Addr
	DNS          []netip.Addr
}

// PlanFor derives the Plan from the configuration (checked by
// config.Validate; a bad value here is an error all the same).
func PlanFor(cfg *config.Config) (Plan, error) {
	var p Plan
	switch cfg.IP {
	case config.IPDHCP, "":
		p.DHCP4 = true
	case config.IPDHCP6:
		p.DHCP6 = true
	default:
		st, err := config.ParseStaticIP(cfg.IP)
		if err != nil {
			return Plan{}, err
		}
		p.Static = st
	}
	gws, err := config.ParseGateways(cfg.Gateway)
	if err != nil {
		return Plan{}, err
	}
	p.Gateways = gws
	for _, d := range cfg.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return Plan{}, fmt.Errorf("netup: dns %q: %w", d, err)
		}
		p.DNS = append(p.DNS, a)
	}
	return p, nil
}

// String says what the plan does, for the log.
func (p Plan) String() string {
	switch {
	case p.DHCP4:
		return "DHCPv4"
	case p.DHCP6:
		return "DHCPv6"
	}
	parts := []string{}
	for _, s := range p.Static {
		parts = append(parts, s.String())
	}
	s := "static " + strings.Join(parts, ", ")
	for _, g := range p.Gateways {
		s += " via " + g.String()
	}
	if len(p.DNS) > 0 {
		var ds []string
		for _, d := range p.DNS {
			ds = append(ds, d.String())
		}
		s += ", dns " + strings.Join(ds, " ")
	}
	return s
}

// ResolvConf is /etc/resolv.conf for the name servers.
func ResolvConf(dns []netip.Addr) []byte {
	var b strings.Builder
	for _, d := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	return []byte(b.String())
}
