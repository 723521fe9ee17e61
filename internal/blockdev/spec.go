package blockdev

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// SpecKind says which property of a device a Spec matches.
type SpecKind string

const (
	ByUUID      SpecKind = "UUID"      // filesystem UUID, as blkid prints it
	ByLabel     SpecKind = "LABEL"     // filesystem label
	ByPartUUID  SpecKind = "PARTUUID"  // GPT partition GUID or MBR "xxxxxxxx-NN"
	ByPartLabel SpecKind = "PARTLABEL" // GPT partition name
	ByPath      SpecKind = "path"      // a device node such as /dev/vda1
)

// A Spec names a block device the way fstab does: UUID=…, LABEL=…,
// PARTUUID=…, PARTLABEL=…, or a /dev path.
type Spec struct {
	Kind  SpecKind
	Value string
}

// ErrBadSpec is returned for a device spec that cannot name anything.
var ErrBadSpec = errors.New("bad device spec")

// ParseSpec parses a device spec.
func ParseSpec(s string) (Spec, error) {
	if strings.HasPrefix(s, "/") {
		if strings.ContainsRune(s, 0) {
			return Spec{}, fmt.Errorf("blockdev: %q: %w: NUL in path", s, ErrBadSpec)
		}
		return Spec{ByPath, filepath.Clean(s)}, nil
	}
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return Spec{}, fmt.Errorf("blockdev: %q: %w: want UUID=, LABEL=, PARTUUID=, PARTLABEL= or a /dev path", s, ErrBadSpec)
	}
	kind := SpecKind(name)
	switch kind {
	case ByUUID, ByPartUUID:
		if value == "" || strings.Trim(value, "0123456789abcdefABCDEF-") != "" {
			return Spec{}, fmt.Errorf("blockdev: %q: %w: %s wants hex digits and dashes", s, ErrBadSpec, name)
		}
	case ByLabel, ByPartLabel:
		if value == "" {
			return Spec{}, fmt.Errorf("blockdev: %q: %w: empty %s", s, ErrBadSpec, name)
		}
	default:
		return Spec{}, fmt.Errorf("blockdev: %q: %w: unknown kind %q; want UUID, LABEL, PARTUUID or PARTLABEL", s, ErrBadSpec, name)
	}
	return Spec{kind, value}, nil
}

// String returns the spec as ParseSpec reads it.
func (s Spec) String() string {
	if s.Kind == ByPath {
		return s.Value
	}
	return string(s.Kind) + "=" + s.Value
}
