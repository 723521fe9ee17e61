package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// maxUnknownReported bounds how many unknown keys Parse names (and so how
// many times it re-decodes the file to find their lines).
const maxUnknownReported = 10

// Parse reads the contents of a configuration file. name labels errors and
// sources, as in "/etc/gokdump.toml:12". Each value is checked on its own;
// Validate checks them together once the command line is applied.
// All problems found are returned together (errors.Join of *Error).
func Parse(data []byte, name string) (*Config, error) {
	c, err := ParsePartial(data, name)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParsePartial is Parse for a reader that must go on whatever the file
// holds, as the capture does: it always returns a Config, with every key
// that parsed and checked set and the others at their defaults (all of
// them after a syntax error), along with Parse's error.
func ParsePartial(data []byte, name string) (*Config, error) {
	doc := string(data)
	var raw map[string]any
	md, err := toml.Decode(doc, &raw)
	if err != nil {
		var pe toml.ParseError
		d := Default()
		if errors.As(err, &pe) {
			return &d, &Error{Source: fmt.Sprintf("%s:%d", name, pe.Position.Line), Err: &kindError{ErrSyntax, pe.Message}}
		}
		return &d, &Error{Source: name, Err: &kindError{ErrSyntax, err.Error()}}
	}

	// Top-level keys in file order; a table or dotted key shows up
	// under its first component.
	var order []string
	first := make(map[string]toml.Key)
	for _, k := range md.Keys() {
		if len(k) == 0 {
			continue
		}
		if _, ok := first[k[0]]; !ok {
			first[k[0]] = k
			order = append(order, k[0])
		}
	}
	at := func(k string) string {
		if line := keyLine(doc, first[k], foldSiblings(k, order)); line > 0 {
			return fmt.Sprintf("%s:%d", name, line)
		}
		return name
	}

	c := Default()
	var errs []error
	unknown := 0
	for _, k := range order {
		def := lookupKey(k)
		if def == nil {
			unknown++
			if unknown <= maxUnknownReported {
				errs = append(errs, &Error{Source: at(k), Key: first[k].String(), Err: unknownKeyErr(k)})
			}
			continue
		}
		src := at(k)
		saved := c.Clone()
		if err := def.fromTOML(&c, raw[k]); err != nil {
			c = *saved // nothing half-decoded stays
			errs = append(errs, &Error{Source: src, Key: k, Err: err})
			continue
		}
		if err := def.check(&c); err != nil {
			errs = append(errs, &Error{Source: src, Key: k, Err: err})
			continue
		}
		c.setSource(k, src)
	}
	if unknown > maxUnknownReported {
		errs = append(errs, &Error{Source: name, Err: &kindError{ErrUnknownKey,
			fmt.Sprintf("%d more unknown keys", unknown-maxUnknownReported)}})
	}
	return &c, errors.Join(errs...)
}

func unknownKeyErr(k string) error {
	msg := "unknown key"
	if s := suggest(k); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return &kindError{ErrUnknownKey, msg}
}

// suggest returns the known key closest to k if it is close enough to be
// a typo of it.
func suggest(k string) string {
	norm := strings.ToLower(strings.ReplaceAll(k, "-", "_"))
	best, bestDist := "", 3
	for _, d := range keyDefs {
		if d.name == norm {
			return d.name
		}
		if dist := editDistance(norm, d.name); dist < bestDist {
			best, bestDist = d.name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// refuse never decodes. The decoder reports the position of the key whose
// value failed, and that is the only way it exports key positions.
type refuse struct{}

const refuseMsg = "gokdump: refused on purpose"

func (refuse) UnmarshalTOML(any) error { return errors.New(refuseMsg) }

var (
	refuseType    = reflect.TypeFor[refuse]()
	primitiveType = reflect.TypeFor[toml.Primitive]()
)

// keyLine returns the line of key in doc, a document toml.Decode accepts,
// or 0 if it cannot tell. It decodes doc into a struct holding only key,
// typed to refuse decoding. The decoder matches struct fields to keys
// ignoring case when no exact match exists, so top-level keys that differ
// from key only in case get fields of their own.
func keyLine(doc string, key toml.Key, siblings []string) int {
	if len(key) == 0 {
		return 0
	}
	tag := func(name string) reflect.StructTag { return reflect.StructTag("toml:" + strconv.Quote(name)) }
	t := refuseType
	for i := len(key) - 1; i >= 0; i-- {
		// The decoder's tag syntax cannot spell these names.
		if p := key[i]; p == "" || p == "-" || strings.Contains(p, ",") {
			return 0
		}
		fields := []reflect.StructField{{Name: "K", Type: t, Tag: tag(key[i])}}
		if i == 0 {
			for j, s := range siblings {
				fields = append(fields, reflect.StructField{Name: fmt.Sprintf("S%d", j), Type: primitiveType, Tag: tag(s)})
			}
		}
		t = reflect.StructOf(fields)
	}
	_, err := toml.Decode(doc, reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == refuseMsg {
		// Position.Line is where the value ends, which for a multi-line
		// string or array is not the key's line; Start is where it begins.
		if s := pe.Position.Start; s >= 0 && s <= len(doc) {
			return min(pe.Position.Line, 1+strings.Count(doc[:s], "\n"))
		}
		return pe.Position.Line
	}
	return 0
}

// foldSiblings returns the keys of order other than k that equal k under
// case folding.
func foldSiblings(k string, order []string) []string {
	var s []string
	for _, o := range order {
		if o != k && strings.EqualFold(o, k) && !strings.Contains(o, ",") && o != "-" && o != "" {
			s = append(s, o)
		}
	}
	return s
}

// ApplyCmdline applies gokdump.KEY=VALUE overrides from a kernel command
// line; they win over the file. Lists are comma-separated
// (gokdump.dump_level=1,31), "-" and "_" in KEY are the same as in module
// parameters, a bare gokdump.KEY sets a boolean key true, and the last of
// repeated keys wins. Double quotes group words as the kernel does:
// gokdump.kernel_args="a b". Bad overrides are skipped and returned
// together; the good ones are applied.
func (c *Config) ApplyCmdline(cmdline string) error {
	var errs []error
	for _, arg := range splitCmdline(cmdline) {
		param, value, hasValue := strings.Cut(arg, "=")
		key, ok := strings.CutPrefix(param, "gokdump.")
		if !ok {
			continue
		}
		if err := c.set(strings.ReplaceAll(key, "-", "_"), value, hasValue, SourceCmdline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Set sets key ("-" and "_" alike) from text as the command line would
// (lists comma-separated), checks the value and records source as where
// it came from. A bad value leaves c as it was. The error is an *Error.
func (c *Config) Set(key, value, source string) error {
	return c.set(strings.ReplaceAll(key, "-", "_"), value, true, source)
}

func (c *Config) set(key, value string, hasValue bool, source string) error {
	def := lookupKey(key)
	if def == nil {
		return &Error{Source: source, Key: key, Err: unknownKeyErr(key)}
	}
	if !hasValue {
		if !def.isBool {
			return &Error{Source: source, Key: key, Err: valueErr("needs a value: gokdump.%s=VALUE", key)}
		}
		value = "true"
	}
	saved := c.Clone()
	err := def.fromText(c, value)
	if err == nil {
		err = def.check(c)
	}
	if err != nil {
		*c = *saved
		return &Error{Source: source, Key: key, Err: err}
	}
	c.setSource(key, source)
	return nil
}

// splitCmdline splits a kernel command line into parameters as the
// kernel's own parser does: on white space outside double quotes, with the
// quotes dropped.
func splitCmdline(s string) []string {
	var (
		args    []string
		cur     strings.Builder
		quoted  bool
		started bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			started = true
		case !quoted && strings.ContainsRune(" \t\n\v\f\r", r):
			if started {
				args = append(args, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		args = append(args, cur.String())
	}
	return args
}

// Validate checks every value and how the values fit together. Call it
// once all sources (file, command line) are applied.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, err error) {
		errs = append(errs, &Error{Source: c.Source(key), Key: key, Err: err})
	}
	for _, d := range keyDefs {
		if err := d.check(c); err != nil {
			bad(d.name, err)
		}
	}
	if len(errs) > 0 {
		// The checks below assume each value is well formed.
		return errors.Join(errs...)
	}

	useFallback := c.FailureAction == ActionFallback
	if useFallback && c.FallbackTarget == "" {
		bad("failure_action", valueErr(`"fallback" needs fallback_target`))
	}
	if useFallback && c.FallbackTarget != "" && c.FallbackTarget == c.Target {
		bad("fallback_target", valueErr("is the same as target"))
	}
	if c.DeviceTimeout > c.TimeBudget {
		bad("device_timeout", valueErr("%s is longer than time_budget (%s)", formatDuration(c.DeviceTimeout), formatDuration(c.TimeBudget)))
	}
	hooks := c.HasHooks()
	if hooks && c.HookTimeout > c.TimeBudget {
		bad("hook_timeout", valueErr("%s is longer than time_budget (%s)", formatDuration(c.HookTimeout), formatDuration(c.TimeBudget)))
	}
	if !hooks {
		for _, k := range []string{"hook_timeout", "hook_failure"} {
			if c.explicit(k) {
				bad(k, valueErr("does not apply: no pre_hooks, post_hooks or failure_hook"))
			}
		}
	}
	if c.Format == FormatELF && c.Compress != CompressNone && c.explicit("compress") {
		bad("compress", valueErr(`%s does not apply: format "elf" is not compressed; use compress = "none" or format = "kdump"`, quote(string(c.Compress))))
	}

	// Targets the capture may write to, and whether any mounts.
	type named struct{ key, value string }
	var targets []named
	if c.Target != "" {
		targets = append(targets, named{"target", c.Target})
	}
	if useFallback && c.FallbackTarget != "" {
		targets = append(targets, named{"fallback_target", c.FallbackTarget})
	}
	anyMounted := false
	for _, t := range targets {
		pt, _ := ParseTarget(t.value) // checked above
		if !pt.Raw {
			anyMounted = true
			continue
		}
		if c.Format == FormatELF {
			bad("format", valueErr(`"elf" cannot go to a raw device (%s); raw devices take the flattened kdump stream`, t.key))
		}
	}
	anyDisk := false
	for _, t := range targets {
		pt, _ := ParseTarget(t.value)
		if !pt.Network() {
			anyDisk = true
		}
		if pt.Kind == KindS3 && c.S3Endpoint == "" {
			bad("s3_endpoint", valueErr("%s is an s3 target: s3_endpoint must name its server (host[:port])", t.key))
		}
		if pt.Kind == KindS3 && c.Format == FormatELF && c.explicit("format") {
			bad("format", valueErr(`"elf" cannot go to an s3 target (%s): the object is a kdump file`, t.key))
		}
	}
	if len(targets) > 0 && !anyDisk && c.explicit("fstype") {
		bad("fstype", valueErr("does not apply: every target is a network target"))
	}
	if c.IP == IPDHCP || c.IP == IPDHCP6 {
		for _, k := range []string{"gateway", "dns"} {
			if c.explicit(k) {
				bad(k, valueErr("goes with a static ip; with ip = %s the DHCP server gives it", quote(c.IP)))
			}
		}
	}
	if len(targets) > 0 && !anyMounted {
		for _, k := range []string{"fstype", "mount_options", "path", "keep"} {
			if c.explicit(k) {
				bad(k, valueErr("does not apply: every target is a raw device"))
			}
		}
	}
	return errors.Join(errs...)
}

// Sanitize makes c usable whatever a bad file or command line put in it:
// every value that fails its check is put back to its default (a dump
// level list keeps its good levels, a module list its good names), and
// device_timeout (and hook_timeout, with hooks) is cut to time_budget. It
// returns the keys it changed.
// The capture calls it after reporting Validate's errors, so that a
// mistake in the config costs a default, never the dump.
func (c *Config) Sanitize() []string {
	d := Default()
	var changed []string
	for _, k := range keyDefs {
		if k.check(c) != nil {
			k.reset(c, &d)
			changed = append(changed, k.name)
		}
	}
	if c.DeviceTimeout > c.TimeBudget {
		c.DeviceTimeout = min(d.DeviceTimeout, c.TimeBudget)
		changed = append(changed, "device_timeout")
	}
	if c.HasHooks() && c.HookTimeout > c.TimeBudget {
		c.HookTimeout = min(d.HookTimeout, c.TimeBudget)
		changed = append(changed, "hook_timeout")
	}
	return changed
}

// HasHooks reports whether any hook is configured.
func (c *Config) HasHooks() bool {
	return len(c.PreHooks)+len(c.PostHooks) > 0 || c.FailureHook != ""
}

// HookPaths lists every hook once, in the order pre_hooks, post_hooks,
// failure_hook: the files an image must carry.
func (c *Config) HookPaths() []string {
	var ps []string
	for _, p := range slices.Concat(c.PreHooks, c.PostHooks, []string{c.FailureHook}) {
		if p != "" && !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// WriteTOML writes the effective configuration as TOML that Parse reads back,
// each line commented with where its value came from.
func (c *Config) WriteTOML(w io.Writer) error {
	lines := make([]string, len(keyDefs))
	width := 0
	for i, d := range keyDefs {
		lines[i] = fmt.Sprintf("%-15s = %s", d.name, d.toTOML(c))
		if n := len(lines[i]); n > width && n <= 40 {
			width = n
		}
	}
	var b strings.Builder
	for i, d := range keyDefs {
		fmt.Fprintf(&b, "%-*s  # from %s\n", width, lines[i], c.Source(d.name))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
