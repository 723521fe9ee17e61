package shell

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// mounts maps a device node to where it is mounted (/proc/self/mounts).
func mounts() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && strings.HasPrefix(fs[0], "/dev/") {
			m[fs[0]] = unescapeMount(fs[1])
		}
	}
	return m
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040).
func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func cmdDevices(s *session, c *call) error {
	if len(c.args) > 0 {
		return usagef("takes no arguments")
	}
	devs, err := s.sys.Scan()
	if err != nil {
		return err
	}
	mnt := mounts()
	var lines []string
	lines = append(lines, fmt.Sprintf("%-12s %10s %-8s %-16s %-36s %s", "NAME", "SIZE", "FSTYPE", "LABEL", "UUID", "MOUNTED"))
	for _, d := range devs {
		fstype, label, uuid := "", "", ""
		if d.FS != nil {
			fstype, label, uuid = d.FS.FSType, d.FS.Label, d.FS.UUID
		} else if d.Table != nil {
			fstype = "(" + d.Table.Type + ")"
		}
		name := d.Name
		if d.Partition > 0 {
			name = " " + name
		}
		line := fmt.Sprintf("%-12s %10s %-8s %-16s %-36s %s", name, humanSize(d.Size), fstype, quoteField(label), uuid, mnt[d.Path])
		if d.PartLabel != "" {
			line += " PARTLABEL=" + quoteField(d.PartLabel)
		}
		if d.Err != nil {
			line += fmt.Sprintf(" (%v)", d.Err)
		}
		lines = append(lines, strings.TrimRight(line, " "))
	}
	writeLines(c.out, lines)
	return nil
}

// quoteField shows a label from a disk (anyone's text) safely, on one
// field.
func quoteField(s string) string {
	if s == "" {
		return ""
	}
	q := fmt.Sprintf("%q", s)
	if q[1:len(q)-1] == s && !strings.ContainsAny(s, " \t") {
		return s
	}
	return q
}

// humanSize is a size in binary units, one decimal.
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v, unit := float64(n)/1024, "K"
	for _, u := range []string{"M", "G", "T", "P"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f%s", v, unit)
}

func cmdMount(s *session, c *call) error {
	var fstype, opts string
	var ro bool
	rest, err := flags(c, func(fs *flag.FlagSet) {
		fs.StringVar(&fstype, "t", "", "")
		fs.StringVar(&opts, "o", "", "")
		fs.BoolVar(&ro, "r", false, "")
	})
	if err != nil {
		return err
	}
	switch len(rest) {
	case 0:
		b, err := os.ReadFile("/proc/self/mounts")
		if err != nil {
			return err
		}
		_, err = c.out.Write(b)
		return err
	case 1, 2:
	default:
		return usagef("DEVICE [DIR]")
	}
	dev, err := s.sys.Find(rest[0])
	if err != nil {
		return err
	}
	if fstype == "" && dev.FS != nil {
		fstype = dev.FS.FSType
	}
	if fstype == "" {
		return fmt.Errorf("no filesystem recognised on %s: give -t TYPE", dev.Path)
	}
	dir := filepath.Join("/mnt", dev.Name)
	if len(rest) == 2 {
		dir = c.path(rest[1])
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if ro {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev.Path, dir, fstype, flags, opts); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev.Path, fstype, dir, err)
	}
	fmt.Fprintf(c.out, "%s (%s) mounted on %s\n", dev.Path, fstype, dir)
	return nil
}

func cmdUmount(s *session, c *call) error {
	if len(c.args) != 1 {
		return usagef("DIR")
	}
	unix.Sync()
	if err := unix.Unmount(c.path(c.args[0]), 0); err != nil {
		return fmt.Errorf("umount %s: %w", c.args[0], err)
	}
	return nil
}

func cmdSync(s *session, c *call) error {
	if len(c.args) > 0 {
		return usagef("takes no arguments")
	}
	unix.Sync()
	return nil
}

func cmdIP(s *session, c *call) error {
	what := "addr"
	switch len(c.args) {
	case 0:
	case 1:
		what = c.args[0]
	default:
		return usagef("one of addr, route, link")
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	name := map[int]string{}
	for _, l := range links {
		name[l.Attrs().Index] = l.Attrs().Name
	}
	var lines []string
	switch what {
	case "addr", "a", "address", "link", "l":
		for _, l := range links {
			a := l.Attrs()
			line := fmt.Sprintf("%-10s %-8s %-17s", a.Name, strings.ToUpper(a.OperState.String()), a.HardwareAddr)
			if what[0] == 'l' {
				line += fmt.Sprintf(" mtu %d %s", a.MTU, l.Type())
				if a.Flags&net.FlagUp == 0 {
					line += " (down)"
				}
			} else if addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL); err == nil {
				for _, ad := range addrs {
					line += " " + ad.IPNet.String()
				}
			}
			lines = append(lines, strings.TrimRight(line, " "))
		}
	case "route", "r":
		routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range routes {
			dst := "default"
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones > 0 {
					dst = r.Dst.String()
				}
			}
			line := dst
			if r.Gw != nil {
				line += " via " + r.Gw.String()
			}
			line += " dev " + name[r.LinkIndex]
			if r.Src != nil {
				line += " src " + r.Src.String()
			}
			lines = append(lines, line)
		}
		if len(routes) == 0 {
			lines = append(lines, "no routes (the network is brought up by save to an ssh or nfs target)")
		}
	default:
		return usagef("%q: one of addr, route, link", what)
	}
	writeLines(c.out, lines)
	return nil
}
