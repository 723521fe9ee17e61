package config

import (
	"strings"

	"github.com/gokdump/gokdump/internal/blockdev"
)

// RawPrefix marks a target written as a raw device rather than mounted.
const RawPrefix = "raw:"

// A Target is a parsed target or fallback_target value.
type Target struct {
	// Spec finds the device.
	Spec blockdev.Spec
	// Raw means the device has no filesystem: the dump is written onto
	// the device itself as makedumpfile's flattened stream.
	Raw bool
}

// ParseTarget parses a target value: a device spec, or "raw:" and a device
// spec. A raw device has no filesystem to carry a UUID or LABEL, so those
// are refused after "raw:".
func ParseTarget(s string) (Target, error) {
	var t Target
	if rest, ok := strings.CutPrefix(s, RawPrefix); ok {
		t.Raw = true
		s = rest
	}
	spec, err := blockdev.ParseSpec(s)
	if err != nil {
		return Target{}, valueErr("%s", strings.TrimPrefix(err.Error(), "blockdev: "))
	}
	if t.Raw && (spec.Kind == blockdev.ByUUID || spec.Kind == blockdev.ByLabel) {
		return Target{}, valueErr("%s: a raw device has no filesystem %s; use a /dev path, PARTUUID= or PARTLABEL=", quote(RawPrefix+s), spec.Kind)
	}
	t.Spec = spec
	return t, nil
}

// String returns the target as ParseTarget reads it.
func (t Target) String() string {
	if t.Raw {
		return RawPrefix + t.Spec.String()
	}
	return t.Spec.String()
}

// Targets returns the targets the capture tries, in order: target, then
// fallback_target if failure_action is "fallback". An empty target is
// ErrNoTarget: the capture has nowhere to write.
func (c *Config) Targets() ([]Target, error) {
	if c.Target == "" {
		return nil, &Error{Source: c.Source("target"), Key: "target", Err: ErrNoTarget}
	}
	var ts []Target
	for _, k := range []string{"target", "fallback_target"} {
		v := c.Target
		if k == "fallback_target" {
			if c.FailureAction != ActionFallback || c.FallbackTarget == "" {
				break
			}
			v = c.FallbackTarget
		}
		t, err := ParseTarget(v)
		if err != nil {
			return nil, &Error{Source: c.Source(k), Key: k, Err: err}
		}
		ts = append(ts, t)
	}
	return ts, nil
}
