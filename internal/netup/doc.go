// Package netup brings up the capture kernel's network for a dump target
// on a server: it finds the interface the image was built for (by the MAC
// address recorded at build time, since interface names can differ in the
// capture kernel), sets its link up, waits for the carrier, and configures
// it by DHCP (u-root's dhclient, on insomniacslk/dhcp) or with static
// addresses, a gateway and name servers. Every step is logged and every
// wait ends at the context's deadline.
//
// Record is what the builder writes into the image (RecordPath): the
// interfaces that route to the targets on the machine that built it.
// Plan is what the configuration asks for.
package netup
