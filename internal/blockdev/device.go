package blockdev

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Device is a block device as listed by sysfs and probed.
type Device struct {
	// Name is the kernel's name, as in /sys/class/block/<Name>.
	Name string
	// Path is the device node.
	Path         string
	Major, Minor uint32
	// Size is in bytes.
	Size int64
	// Partition is the partition number, 0 for a whole device.
	Partition int
	// Parent names the whole device a partition is on.
	Parent string
	// FS is the filesystem found on the device, nil if none.
	FS *Filesystem
	// Table is the partition table of a whole device, nil if none.
	Table *Table
	// PartUUID and PartLabel come from the parent's partition table.
	PartUUID, PartLabel string
	// Err says why the device could not be read or probed, if it could
	// not. Finding no filesystem is not an error.
	Err error
}

// Match reports whether d is what spec names. UUIDs compare without regard
// to case (blkid prints vfat's in upper case); labels compare exactly. A
// path spec matches the device's node, or /dev/<Name>.
//
// UUID and LABEL match mountable filesystems only: an md RAID component
// carries its array's UUID but must not be written to on its own. Other
// kinds of spec can name such a device; callers check FS.Mountable.
func (d *Device) Match(spec Spec) bool {
	mountable := d.FS != nil && d.FS.Mountable()
	switch spec.Kind {
	case ByUUID:
		return mountable && d.FS.UUID != "" && strings.EqualFold(d.FS.UUID, spec.Value)
	case ByLabel:
		return mountable && d.FS.Label != "" && d.FS.Label == spec.Value
	case ByPartUUID:
		return d.PartUUID != "" && strings.EqualFold(d.PartUUID, spec.Value)
	case ByPartLabel:
		return d.PartLabel != "" && d.PartLabel == spec.Value
	case ByPath:
		return spec.Value == d.Path || spec.Value == "/dev/"+d.Name
	}
	return false
}

// String describes the device in one line, for error messages and logs:
// name, major:minor, size, then what was found on it.
func (d *Device) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d:%d %s", d.Name, d.Major, d.Minor, formatSize(d.Size))
	if d.Parent != "" {
		fmt.Fprintf(&b, " partition %d of %s", d.Partition, d.Parent)
	}
	if d.Table != nil {
		fmt.Fprintf(&b, " PTTYPE=%s PTUUID=%s", d.Table.Type, d.Table.UUID)
	}
	if d.FS != nil {
		fmt.Fprintf(&b, " TYPE=%s", d.FS.FSType)
		if d.FS.UUID != "" {
			fmt.Fprintf(&b, " UUID=%s", d.FS.UUID)
		}
		if d.FS.Label != "" {
			fmt.Fprintf(&b, " LABEL=%s", strconv.Quote(d.FS.Label))
		}
	}
	if d.PartUUID != "" {
		fmt.Fprintf(&b, " PARTUUID=%s", d.PartUUID)
	}
	if d.PartLabel != "" {
		fmt.Fprintf(&b, " PARTLABEL=%s", strconv.Quote(d.PartLabel))
	}
	switch {
	case d.Err != nil:
		fmt.Fprintf(&b, " (%v)", d.Err)
	case d.FS == nil && d.Table == nil && d.Size == 0:
		b.WriteString(" (empty)")
	case d.FS == nil && d.Table == nil:
		b.WriteString(" (no filesystem recognised)")
	}
	return b.String()
}

func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var (
	// ErrNotFound is returned when no device matches a spec.
	ErrNotFound = errors.New("no such device")
	// ErrAmbiguous is returned when more than one device matches a spec,
	// as cloned disks or btrfs filesystems of several devices do. Name
	// the device by something unique instead.
	ErrAmbiguous = errors.New("more than one device matches")
)

// A NotFoundError says that no device matched, and lists the devices that
// were there, so that a wrong UUID or a missing driver can be told apart.
type NotFoundError struct {
	Spec Spec
	Seen []Device
	// Waited is how long Wait waited, and Cause why it stopped (the
	// context's error); zero and nil from Find.
	Waited time.Duration
	Cause  error
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "blockdev: no device matches %s", e.Spec)
	if e.Cause != nil {
		fmt.Fprintf(&b, " after %v (%v)", e.Waited.Round(time.Millisecond), e.Cause)
	}
	b.WriteString(describe(e.Seen))
	return b.String()
}

// Unwrap makes the error ErrNotFound, and the context's error after Wait.
func (e *NotFoundError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrNotFound, e.Cause}
	}
	return []error{ErrNotFound}
}

func describe(devs []Device) string {
	if len(devs) == 0 {
		return "; no block devices at all"
	}
	var b strings.Builder
	b.WriteString("; block devices seen:")
	for i := range devs {
		b.WriteString("\n\t")
		b.WriteString(devs[i].String())
	}
	return b.String()
}

// match returns the one device of devs that spec names.
func match(spec Spec, devs []Device) (*Device, error) {
	var found []Device
	for _, d := range devs {
		if d.Match(spec) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, &NotFoundError{Spec: spec, Seen: devs}
	case 1:
		return &found[0], nil
	}
	return nil, fmt.Errorf("blockdev: %s: %w%s", spec, ErrAmbiguous, describe(found))
}
