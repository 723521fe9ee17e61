package config

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/size"
)

// A keyDef knows how to read one key from TOML and from command-line text,
// check its value and print it back as TOML.
type keyDef struct {
	name     string
	fromTOML func(c *Config, v any) error
	fromText func(c *Config, s string) error
	check    func(c *Config) error
	toTOML   func(c *Config) string
	// reset makes a value that fails check usable again, from d (the
	// defaults): for Sanitize.
	reset  func(c, d *Config)
	isBool bool // a bare gokdump.KEY on the command line means true
}

// keyDefs is in the order WriteTOML prints and the sample file documents.
var keyDefs = []keyDef{
	stringKey("target", func(c *Config) *string { return &c.Target }, checkTargetValue),
	stringKey("fstype", func(c *Config) *string { return &c.FSType }, oneOf("", "ext4", "ext3", "ext2", "xfs", "vfat", "btrfs")),
	stringKey("mount_options", func(c *Config) *string { return &c.MountOptions }, checkPrintable),
	stringKey("path", func(c *Config) *string { return &c.Path }, checkDumpPath),
	{
		name: "dump_level",
		fromTOML: func(c *Config, v any) error {
			if n, ok := v.(int64); ok {
				c.DumpLevel = []filter.Level{filter.Level(clampInt(n))}
				return nil
			}
			ns, err := tomlInts(v, "an integer 0..31 or a list of them")
			if err != nil {
				return err
			}
			c.DumpLevel = make([]filter.Level, len(ns))
			for i, n := range ns {
				c.DumpLevel[i] = filter.Level(n)
			}
			return nil
		},
		fromText: func(c *Config, s string) error {
			var ns []filter.Level
			for _, f := range strings.Split(s, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil {
					return valueErr("%q is not an integer 0..31 or a comma-separated list of them", s)
				}
				ns = append(ns, filter.Level(n))
			}
			c.DumpLevel = ns
			return nil
		},
		check: func(c *Config) error {
			if len(c.DumpLevel) == 0 {
				return valueErr("the list is empty; give at least one level 0..31")
			}
			for i, n := range c.DumpLevel {
				if !n.Valid() {
					return valueErr("%d is out of range 0..%d", n, filter.MaxLevel)
				}
				if slices.Contains(c.DumpLevel[:i], n) {
					return valueErr("%d is listed twice", n)
				}
			}
			return nil
		},
		toTOML: func(c *Config) string {
			parts := make([]string, len(c.DumpLevel))
			for i, n := range c.DumpLevel {
				parts[i] = n.String()
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
		reset: func(c, d *Config) {
			// Keep the levels that can be used, in order.
			var ok []filter.Level
			for _, l := range c.DumpLevel {
				if l.Valid() && !slices.Contains(ok, l) {
					ok = append(ok, l)
				}
			}
			if len(ok) == 0 {
				ok = slices.Clone(d.DumpLevel)
			}
			c.DumpLevel = ok
		},
	},
	enumKey("compress", func(c *Config) *Compression { return &c.Compress }, CompressZstd, CompressLZO, CompressZlib, CompressSnappy, CompressNone),
	enumKey("format", func(c *Config) *Format { return &c.Format }, FormatKdump, FormatELF),
	enumKey("failure_action", func(c *Config) *Action { return &c.FailureAction }, ActionReboot, ActionPoweroff, ActionHalt, ActionFallback, ActionShell),
	stringKey("fallback_target", func(c *Config) *string { return &c.FallbackTarget }, checkTargetValue),
	enumKey("final_action", func(c *Config) *Action { return &c.FinalAction }, ActionReboot, ActionPoweroff, ActionHalt),
	boolKey("shell", func(c *Config) *bool { return &c.Shell }),
	durationKey("shell_timeout", func(c *Config) *time.Duration { return &c.ShellTimeout }),
	{
		name: "keep",
		fromTOML: func(c *Config, v any) error {
			n, ok := v.(int64)
			if !ok {
				return typeErr("an integer", v)
			}
			c.Keep = clampInt(n)
			return nil
		},
		fromText: func(c *Config, s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return valueErr("%q is not an integer", s)
			}
			c.Keep = n
			return nil
		},
		check: func(c *Config) error {
			if c.Keep < 0 {
				return valueErr("%d is negative; 0 keeps every dump", c.Keep)
			}
			return nil
		},
		toTOML: func(c *Config) string { return strconv.Itoa(c.Keep) },
		reset:  func(c, d *Config) { c.Keep = d.Keep },
	},
	sizeKey("max_size", func(c *Config) *size.Size { return &c.MaxSize }, MinMaxSize),
	{
		name: "modules",
		fromTOML: func(c *Config, v any) error {
			ss, err := tomlStrings(v, "a list of module names")
			if err != nil {
				return err
			}
			c.Modules = ss
			return nil
		},
		fromText: func(c *Config, s string) error {
			c.Modules = nil
			if s == "" {
				return nil
			}
			for _, f := range strings.Split(s, ",") {
				c.Modules = append(c.Modules, strings.TrimSpace(f))
			}
			return nil
		},
		check: func(c *Config) error {
			for _, m := range c.Modules {
				if !moduleName.MatchString(m) {
					return valueErr("%q is not a kernel module name (letters, digits, _ and -; no path, no .ko)", m)
				}
			}
			return nil
		},
		toTOML: func(c *Config) string {
			parts := make([]string, len(c.Modules))
			for i, m := range c.Modules {
				parts[i] = quote(m)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
		reset: func(c, d *Config) {
			// A bad name costs only itself: the others may be the
			// target's driver.
			c.Modules = slices.DeleteFunc(c.Modules, func(m string) bool { return !moduleName.MatchString(m) })
		},
	},
	durationKey("time_budget", func(c *Config) *time.Duration { return &c.TimeBudget }),
	durationKey("device_timeout", func(c *Config) *time.Duration { return &c.DeviceTimeout }),
	pathListKey("pre_hooks", func(c *Config) *[]string { return &c.PreHooks }),
	pathListKey("post_hooks", func(c *Config) *[]string { return &c.PostHooks }),
	stringKey("failure_hook", func(c *Config) *string { return &c.FailureHook }, checkHookPath),
	durationKey("hook_timeout", func(c *Config) *time.Duration { return &c.HookTimeout }),
	enumKey("hook_failure", func(c *Config) *HookFailure { return &c.HookFailure }, HookContinue, HookFail),
	stringKey("kernel_args", func(c *Config) *string { return &c.KernelArgs }, checkPrintable),
	{
		name: "capture_cpus",
		fromTOML: func(c *Config, v any) error {
			switch v := v.(type) {
			case int64:
				return setCaptureCPUs(c, clampInt(v))
			case string:
				return captureCPUsFromText(c, v)
			}
			return typeErr(`"auto" or a number of CPUs`, v)
		},
		fromText: captureCPUsFromText,
		check: func(c *Config) error {
			if c.CaptureCPUs < 0 || c.CaptureCPUs > MaxCaptureCPUs {
				return valueErr("%d is out of range 1..%d", c.CaptureCPUs, MaxCaptureCPUs)
			}
			return nil
		},
		toTOML: func(c *Config) string {
			if c.CaptureCPUs == CaptureCPUsAuto {
				return quote("auto")
			}
			return strconv.Itoa(c.CaptureCPUs)
		},
		reset: func(c, d *Config) { c.CaptureCPUs = d.CaptureCPUs },
	},
	boolKey("dmesg", func(c *Config) *bool { return &c.Dmesg }),
	boolKey("progress", func(c *Config) *bool { return &c.Progress }),
	stringKey("ssh_key", func(c *Config) *string { return &c.SSHKey }, checkAbsFile),
	stringKey("known_hosts", func(c *Config) *string { return &c.KnownHosts }, checkAbsFile),
	stringKey("s3_endpoint", func(c *Config) *string { return &c.S3Endpoint }, checkS3Endpoint),
	stringKey("s3_region", func(c *Config) *string { return &c.S3Region }, checkS3Region),
	stringKey("s3_credentials", func(c *Config) *string { return &c.S3Credentials }, checkAbsFile),
	stringKey("ca_file", func(c *Config) *string { return &c.CAFile }, func(s string) error {
		if s == "" {
			return nil
		}
		return checkAbsFile(s)
	}),
	stringKey("ip", func(c *Config) *string { return &c.IP }, checkIPValue),
	stringKey("gateway", func(c *Config) *string { return &c.Gateway }, checkGateway),
	{
		name: "dns",
		fromTOML: func(c *Config, v any) error {
			ss, err := tomlStrings(v, "a list of IP addresses")
			if err != nil {
				return err
			}
			c.DNS = ss
			return nil
		},
		fromText: func(c *Config, s string) error {
			c.DNS = nil
			for _, f := range strings.Split(s, ",") {
				if f = strings.TrimSpace(f); f != "" {
					c.DNS = append(c.DNS, f)
				}
			}
			return nil
		},
		check: func(c *Config) error {
			for _, a := range c.DNS {
				if _, err := netip.ParseAddr(a); err != nil {
					return valueErr("%s is not an IP address", quote(a))
				}
			}
			return nil
		},
		toTOML: func(c *Config) string {
			parts := make([]string, len(c.DNS))
			for i, m := range c.DNS {
				parts[i] = quote(m)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
		reset: func(c, d *Config) {
			c.DNS = slices.DeleteFunc(c.DNS, func(a string) bool { _, err := netip.ParseAddr(a); return err != nil })
		},
	},
	stringKey("test_panic", func(c *Config) *string { return &c.TestPanic }, checkTestPanic),
}

// captureCPUsFromText reads capture_cpus as the command line (and a
// TOML string) writes it: "auto" or a number.
func captureCPUsFromText(c *Config, s string) error {
	if s == "auto" {
		c.CaptureCPUs = CaptureCPUsAuto
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return valueErr("%s is not \"auto\" or a number of CPUs 1..%d", quote(s), MaxCaptureCPUs)
	}
	return setCaptureCPUs(c, n)
}

// setCaptureCPUs sets an explicit count; 0 would read back as "auto", so
// it is refused rather than taken for it.
func setCaptureCPUs(c *Config, n int) error {
	if n == 0 {
		return valueErr("0 CPUs: give 1..%d, or \"auto\"", MaxCaptureCPUs)
	}
	c.CaptureCPUs = n
	return nil
}

func lookupKey(name string) *keyDef {
	for i := range keyDefs {
		if keyDefs[i].name == name {
			return &keyDefs[i]
		}
	}
	return nil
}

var (
	moduleName    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	testPanicName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

func stringKey(name string, field func(*Config) *string, check func(string) error) keyDef {
	return keyDef{
		name: name,
		fromTOML: func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return typeErr("a string", v)
			}
			*field(c) = s
			return nil
		},
		fromText: func(c *Config, s string) error { *field(c) = s; return nil },
		check:    func(c *Config) error { return check(*field(c)) },
		toTOML:   func(c *Config) string { return quote(MaskSecrets(*field(c))) },
		reset:    func(c, d *Config) { *field(c) = *field(d) },
	}
}

func enumKey[T ~string](name string, field func(*Config) *T, allowed ...T) keyDef {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	check := oneOf(names...)
	k := parsedKey(name, "a string", func(c *Config, s string) error { *field(c) = T(s); return nil })
	k.check = func(c *Config) error { return check(string(*field(c))) }
	k.toTOML = func(c *Config) string { return quote(string(*field(c))) }
	k.reset = func(c, d *Config) { *field(c) = *field(d) }
	return k
}

func durationKey(name string, field func(*Config) *time.Duration) keyDef {
	set := func(c *Config, s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return valueErr("%q is not a duration such as \"90s\" or \"10m\"", s)
		}
		*field(c) = d
		return nil
	}
	k := parsedKey(name, "a duration string such as \"90s\" or \"10m\"", set)
	k.check = func(c *Config) error {
		if d := *field(c); d <= 0 {
			return valueErr("%s is not positive", formatDuration(d))
		}
		return nil
	}
	k.toTOML = func(c *Config) string { return quote(formatDuration(*field(c))) }
	k.reset = func(c, d *Config) { *field(c) = *field(d) }
	return k
}

// parsedKey is a key whose TOML value is a string that set parses, and
// that takes the same text from the command line.
func parsedKey(name, what string, set func(*Config, string) error) keyDef {
	return keyDef{
		name: name,
		fromTOML: func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return typeErr(what, v)
			}
			return set(c, s)
		},
		fromText: set,
	}
}

// sizeKey is a size such as "10G" (internal/size), at least min; "" or
// 0 is none.
func sizeKey(name string, field func(*Config) *size.Size, min size.Size) keyDef {
	set := func(c *Config, s string) error {
		if strings.TrimSpace(s) == "" || strings.TrimSpace(s) == "0" {
			*field(c) = 0
			return nil
		}
		v, err := size.Parse(s)
		if err != nil {
			return valueErr("%s is not a size such as \"10G\" or \"512M\": %v", quote(s), err)
		}
		*field(c) = v
		return nil
	}
	k := parsedKey(name, "a size string such as \"10G\"", set)
	k.check = func(c *Config) error {
		if v := *field(c); v != 0 && v < min {
			return valueErr("%s is smaller than a dump's headers may be; give at least %s, or \"\" for no limit", v, min)
		}
		return nil
	}
	k.toTOML = func(c *Config) string { return quote(exactSize(*field(c))) }
	k.reset = func(c, d *Config) { *field(c) = *field(d) }
	return k
}

// exactSize writes n in the largest binary unit that divides it, so that
// it reads back the same: "10G", "1025M", "4097B"; "" for 0.
func exactSize(n size.Size) string {
	if n == 0 {
		return ""
	}
	for _, u := range []struct {
		name string
		mult size.Size
	}{{"E", 1 << 60}, {"P", 1 << 50}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n%u.mult == 0 {
			return strconv.FormatUint(uint64(n/u.mult), 10) + u.name
		}
	}
	return strconv.FormatUint(uint64(n), 10) + "B"
}

// pathListKey is a list of absolute file paths (hooks): a TOML array of
// strings, or comma-separated on the command line.
func pathListKey(name string, field func(*Config) *[]string) keyDef {
	return keyDef{
		name: name,
		fromTOML: func(c *Config, v any) error {
			ss, err := tomlStrings(v, "a list of absolute file paths")
			if err != nil {
				return err
			}
			*field(c) = ss
			return nil
		},
		fromText: func(c *Config, s string) error {
			*field(c) = nil
			for _, f := range strings.Split(s, ",") {
				if f = strings.TrimSpace(f); f != "" {
					*field(c) = append(*field(c), f)
				}
			}
			return nil
		},
		check: func(c *Config) error {
			for i, p := range *field(c) {
				if err := checkHookPath(p); err != nil {
					return err
				}
				if slices.Contains((*field(c))[:i], p) {
					return valueErr("%s is listed twice", quote(p))
				}
			}
			return nil
		},
		toTOML: func(c *Config) string {
			parts := make([]string, len(*field(c)))
			for i, p := range *field(c) {
				parts[i] = quote(p)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
		reset: func(c, d *Config) {
			// A bad path costs only itself.
			var ok []string
			for _, p := range *field(c) {
				if checkHookPath(p) == nil && !slices.Contains(ok, p) {
					ok = append(ok, p)
				}
			}
			*field(c) = ok
		},
	}
}

// MinMaxSize is the smallest max_size: below it a dump's headers and
// bitmaps may not fit.
const MinMaxSize = 1 << 20

// checkHookPath checks a hook's path: absolute, clean, printable, no
// comma (the command line separates hooks with commas). "" is none.
func checkHookPath(p string) error {
	if p == "" {
		return nil
	}
	if err := checkAbsFile(p); err != nil {
		return err
	}
	if path.Clean(p) != p || strings.Contains(p, ",") {
		return valueErr("%s is not a clean absolute path (no \"..\", \"//\" or comma)", quote(p))
	}
	return nil
}

func boolKey(name string, field func(*Config) *bool) keyDef {
	return keyDef{
		name:   name,
		isBool: true,
		fromTOML: func(c *Config, v any) error {
			b, ok := v.(bool)
			if !ok {
				return typeErr("true or false", v)
			}
			*field(c) = b
			return nil
		},
		fromText: func(c *Config, s string) error {
			switch strings.ToLower(s) {
			case "1", "true", "yes", "on", "y":
				*field(c) = true
			case "0", "false", "no", "off", "n":
				*field(c) = false
			default:
				return valueErr("%q is not a boolean (true/false, 1/0, yes/no, on/off)", s)
			}
			return nil
		},
		check:  func(*Config) error { return nil },
		toTOML: func(c *Config) string { return strconv.FormatBool(*field(c)) },
		reset:  func(c, d *Config) { *field(c) = *field(d) },
	}
}

// clampInt keeps an int64 from TOML in int range so that range checks see
// an out-of-range value rather than a wrapped one.
func clampInt(n int64) int {
	const maxInt, minInt = int64(^uint(0) >> 1), -int64(^uint(0)>>1) - 1
	switch {
	case n > maxInt:
		return int(maxInt)
	case n < minInt:
		return int(minInt)
	}
	return int(n)
}

func tomlInts(v any, want string) ([]int, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, typeErr(want, v)
	}
	ns := make([]int, len(list))
	for i, e := range list {
		n, ok := e.(int64)
		if !ok {
			return nil, typeErr(want, v)
		}
		ns[i] = clampInt(n)
	}
	return ns, nil
}

func tomlStrings(v any, want string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, typeErr(want, v)
	}
	if len(list) == 0 {
		return nil, nil // the same as the default, no modules
	}
	ss := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, typeErr(want, v)
		}
		ss[i] = s
	}
	return ss, nil
}

// tomlTypeName names the TOML type of a decoded value for error messages.
func tomlTypeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %s", quote(v))
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return "an array with " + tomlTypeName(e)
			}
		}
		return "an array of strings"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("a TOML %T", v)
}

func oneOf(allowed ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(allowed, s) {
			return nil
		}
		var q []string
		for _, a := range allowed {
			q = append(q, quote(a))
		}
		return valueErr("%s is not one of %s", quote(s), strings.Join(q, ", "))
	}
}

func checkPrintable(s string) error {
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) && r != ' ' {
			return valueErr("%s holds a control or invalid character", quote(s))
		}
	}
	return nil
}

func checkDumpPath(p string) error {
	if err := checkPrintable(p); err != nil {
		return err
	}
	if !strings.HasPrefix(p, "/") {
		return valueErr("%s is not absolute; it names a directory from the root of the target filesystem", quote(p))
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return valueErr("%s has a \"..\" element", quote(p))
		}
	}
	if len(path.Clean(p)) > 1024 {
		return valueErr("path is longer than 1024 bytes")
	}
	return nil
}

func checkTargetValue(s string) error {
	if s == "" {
		return nil
	}
	_, err := ParseTarget(s)
	return err
}

func checkAbsFile(p string) error {
	if err := checkPrintable(p); err != nil {
		return err
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return valueErr("%s is not an absolute file path", quote(p))
	}
	return nil
}

// ParseStaticIP parses a static ip value: addresses with prefix lengths,
// comma-separated, at most one IPv4 and one IPv6.
func ParseStaticIP(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil || p.Addr().Zone() != "" {
			return nil, valueErr("%s is not \"dhcp\", \"dhcp6\" or an address with its prefix length such as \"192.0.2.5/24\" or \"2001:db8::5/64\"", quote(f))
		}
		out = append(out, p)
	}
	if !onePerFamily(len(out), func(i int) netip.Addr { return out[i].Addr() }) {
		return nil, valueErr("%s: at most one IPv4 and one IPv6 address", quote(s))
	}
	return out, nil
}

// onePerFamily reports whether n addresses hold at most one IPv4 and one
// IPv6.
func onePerFamily(n int, at func(int) netip.Addr) bool {
	v4, v6 := 0, 0
	for i := range n {
		if at(i).Is4() {
			v4++
		} else {
			v6++
		}
	}
	return v4 <= 1 && v6 <= 1
}

func checkIPValue(s string) error {
	if s == IPDHCP || s == IPDHCP6 {
		return nil
	}
	_, err := ParseStaticIP(s)
	return err
}

// ParseGateways parses gateway: at most one IPv4 and one IPv6 address,
// comma-separated; "" is none.
func ParseGateways(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, valueErr("%s is not an IP address", quote(f))
		}
		out = append(out, a)
	}
	if !onePerFamily(len(out), func(i int) netip.Addr { return out[i] }) {
		return nil, valueErr("%s: at most one IPv4 and one IPv6 gateway", quote(s))
	}
	return out, nil
}

func checkGateway(s string) error {
	_, err := ParseGateways(s)
	return err
}

func checkTestPanic(s string) error {
	if s == "" || testPanicName.MatchString(s) {
		return nil
	}
	return valueErr("%s is not a test panic point name such as \"capture\"", quote(s))
}

// formatDuration prints d the way a person would write it in the file:
// "10m" rather than time.Duration's "10m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r) // invalid UTF-8 already decoded to U+FFFD
		}
	}
	b.WriteByte('"')
	return b.String()
}
