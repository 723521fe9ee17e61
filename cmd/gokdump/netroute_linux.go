package main

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// routeInterface names the interface the kernel routes addr through.
func routeInterface(addr netip.Addr) (string, error) {
	rs, err := netlink.RouteGet(addr.AsSlice())
	if err != nil {
		return "", err
	}
	if len(rs) == 0 {
		return "", fmt.Errorf("no route to %s", addr)
	}
	l, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}
