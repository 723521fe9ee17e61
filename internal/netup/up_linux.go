package netup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Result says what Up configured.
type Result struct {
	Interface string
	MAC       string
	Driver    string
	Addrs     []netip.Prefix
	Took      time.Duration
}

// pollEvery is how often links are looked at while waiting.
const pollEvery = 100 * time.Millisecond

// Up brings up the interface rec names (any Ethernet interface when rec
// names none, or when none of its interfaces appears in the first half of
// the time) and configures it as plan says, by ctx's deadline.
func Up(ctx context.Context, plan Plan, rec *Record, logf func(string, ...any)) (*Result, error) {
	start := time.Now()
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			logf("network: lo: %v", err)
		}
	}
	links, err := waitLinks(ctx, rec.MACs(), logf)
	if err != nil {
		return nil, err
	}
	var res *Result
	if plan.DHCP4 || plan.DHCP6 {
		res, err = dhcp(ctx, plan, links, logf)
	} else {
		res, err = static(ctx, plan, links[0], logf)
	}
	if err != nil {
		return nil, err
	}
	res.Took = time.Since(start)
	if l, err := netlink.LinkByName(res.Interface); err == nil {
		res.Addrs = addrs(l)
		res.MAC = l.Attrs().HardwareAddr.String()
	}
	res.Driver = driverOf(res.Interface)
	return res, nil
}

// ethernet returns the Ethernet interfaces other than loopback.
func ethernet() ([]netlink.Link, error) {
	all, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("network: list links: %w", err)
	}
	var out []netlink.Link
	for _, l := range all {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 || l.Type() != "device" {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// describe lists links for a message: "eth0 52:54:00:12:34:56 (virtio_net)".
func describe(ls []netlink.Link) string {
	if len(ls) == 0 {
		return "none"
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", l.Attrs().Name, l.Attrs().HardwareAddr, driverOf(l.Attrs().Name)))
	}
	return strings.Join(parts, ", ")
}

// waitLinks waits for the interfaces with the recorded MACs; without any,
// or when none has appeared by half the time left, for any Ethernet one.
func waitLinks(ctx context.Context, macs []string, logf func(string, ...any)) ([]netlink.Link, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	half := time.Now().Add(time.Until(deadline) / 2)
	if len(macs) > 0 {
		logf("network: waiting for the interface with MAC %s (recorded when the image was built)", strings.Join(macs, " or "))
	} else {
		logf("network: waiting for an Ethernet interface (the image records none)")
	}
	anyLink := len(macs) == 0
	for {
		ls, err := ethernet()
		if err != nil {
			return nil, err
		}
		var match []netlink.Link
		for _, l := range ls {
			if anyLink || slices.Contains(macs, strings.ToLower(l.Attrs().HardwareAddr.String())) {
				match = append(match, l)
			}
		}
		if len(match) > 0 {
			logf("network: using %s", describe(match))
			return match, nil
		}
		if !anyLink && time.Now().After(half) && len(ls) > 0 {
			logf("network: no interface has MAC %s; there are %s: trying those", strings.Join(macs, " or "), describe(ls))
			anyLink = true
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("network: no interface %s appeared in time; interfaces present: %s (is the NIC's driver in the image? gokdump build --module NAME)",
				orAny(macs), describe(ls))
		case <-time.After(pollEvery):
		}
	}
}

func orAny(macs []string) string {
	if len(macs) == 0 {
		return "(any Ethernet)"
	}
	return "with MAC " + strings.Join(macs, " or ")
}

// linkUp sets l up and waits for its carrier.
func linkUp(ctx context.Context, l netlink.Link, logf func(string, ...any)) (netlink.Link, error) {
	name := l.Attrs().Name
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("network: set %s up: %w", name, err)
	}
	t := time.Now()
	for {
		cur, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("network: %s: %w", name, err)
		}
		if o := cur.Attrs().OperState; o == netlink.OperUp || o == netlink.OperUnknown {
			logf("network: %s link up after %.2fs", name, time.Since(t).Seconds())
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("network: %s: no link (carrier) within the time left (state %s); is the cable in, the switch port up?", name, cur.Attrs().OperState)
		case <-time.After(pollEvery):
		}
	}
}

func static(ctx context.Context, plan Plan, l netlink.Link, logf func(string, ...any)) (*Result, error) {
	name := l.Attrs().Name
	l, err := linkUp(ctx, l, logf)
	if err != nil {
		return nil, err
	}
	for _, p := range plan.Static {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			// No duplicate address detection: the address is usable at
			// once, and the crashed machine had it a moment ago.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(l, a); err != nil {
			return nil, fmt.Errorf("network: %s: add %s: %w", name, p, err)
		}
		logf("network: %s: address %s", name, p)
	}
	for _, g := range plan.Gateways {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: g.AsSlice()}
		if err := netlink.RouteReplace(r); err != nil {
			return nil, fmt.Errorf("network: %s: default route via %s: %w", name, g, err)
		}
		logf("network: %s: default route via %s", name, g)
	}
	if len(plan.DNS) > 0 {
		if err := os.WriteFile(dhclient.ResolvConfPath, ResolvConf(plan.DNS), 0o644); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		logf("network: name servers %v", plan.DNS)
	}
	return &Result{Interface: name}, nil
}

// logWriter turns the dhclient's log lines into console notes.
type logWriter func(string, ...any)

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w("dhcp: %s", l)
	}
	return len(p), nil
}

func dhcp(ctx context.Context, plan Plan, links []netlink.Link, logf func(string, ...any)) (*Result, error) {
	// The dhclient logs through the standard logger.
	log.SetFlags(0)
	log.SetOutput(logWriter(logf))
	defer log.SetOutput(io.Discard)

	var up []netlink.Link
	var errs []error
	for _, l := range links {
		u, err := linkUp(ctx, l, logf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		up = append(up, u)
	}
	if len(up) == 0 {
		return nil, errors.Join(errs...)
	}
	deadline, _ := ctx.Deadline()
	c := dhclient.Config{Timeout: 4 * time.Second, Retries: 1 << 10, LogLevel: dhclient.LogInfo}
	results := dhclient.SendRequests(ctx, up, plan.DHCP4, plan.DHCP6, c, time.Until(deadline))
	for r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("network: %s %s: %w", r.Interface.Attrs().Name, r.Protocol, r.Err))
			continue
		}
		if err := r.Lease.Configure(); err != nil {
			errs = append(errs, fmt.Errorf("network: %s: configure %s: %w", r.Interface.Attrs().Name, r.Lease, err))
			continue
		}
		name := r.Interface.Attrs().Name
		logf("network: %s: %s", name, r.Lease)
		if v4, _ := r.Lease.Message(); v4 != nil {
			logf("network: %s: router %v, name servers %v, lease %v", name, v4.Router(), v4.DNS(), v4.IPAddressLeaseTime(0))
		}
		return &Result{Interface: name}, nil
	}
	if ctx.Err() != nil {
		errs = append(errs, errors.New("network: no DHCP lease within the time left"))
	}
	return nil, errors.Join(errs...)
}

func addrs(l netlink.Link) []netip.Prefix {
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out
}

// driverOf names the driver bound to an interface's device, from sysfs.
func driverOf(name string) string {
	p, err := os.Readlink("/sys/class/net/" + name + "/device/driver")
	if err != nil {
		return "no driver link"
	}
	return p[strings.LastIndexByte(p, '/')+1:]
}
