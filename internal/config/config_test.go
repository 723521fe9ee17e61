package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/filter"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fields returns c without its sources, for comparing values.
func fields(c *Config) Config {
	n := *c.Clone()
	n.src = nil
	return n
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for _, k := range Keys() {
		if got := c.Source(k); got != SourceDefault {
			t.Errorf("Source(%q) = %q, want default", k, got)
		}
	}
	if c.Source("nonsense") != "" {
		t.Errorf("Source of an unknown key is not empty")
	}
	want := Config{Path: "/var/crash", DumpLevel: []filter.Level{31}, Compress: CompressZstd, Format: FormatKdump,
		FailureAction: ActionReboot, FinalAction: ActionReboot, TimeBudget: 10 * time.Minute,
		ShellTimeout: 5 * time.Minute, HookTimeout: time.Minute, HookFailure: HookContinue,
		DeviceTimeout: 30 * time.Second, Dmesg: true, Progress: true,
		SSHKey: DefaultSSHKey, KnownHosts: DefaultKnownHosts, IP: IPDHCP,
		S3Region: DefaultS3Region, S3Credentials: DefaultS3Credentials}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v, want %+v", c, want)
	}
}

// TestParseKeys sets each key on line 3 of a file and checks the value
// and its recorded source.
func TestParseKeys(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(c *Config) bool
	}{
		{"target", `"UUID=0b3c2d4e-1111-2222-3333-444455556666"`, func(c *Config) bool { return c.Target == "UUID=0b3c2d4e-1111-2222-3333-444455556666" }},
		{"target", `"LABEL=GOKDUMP"`, func(c *Config) bool { return c.Target == "LABEL=GOKDUMP" }},
		{"target", `"PARTUUID=1234abcd-02"`, func(c *Config) bool { return c.Target == "PARTUUID=1234abcd-02" }},
		{"target", `"PARTLABEL=dumps"`, func(c *Config) bool { return c.Target == "PARTLABEL=dumps" }},
		{"target", `"/dev/nvme0n1p3"`, func(c *Config) bool { return c.Target == "/dev/nvme0n1p3" }},
		{"target", `"raw:/dev/vdb"`, func(c *Config) bool { return c.Target == "raw:/dev/vdb" }},
		{"target", `"raw:PARTLABEL=crash"`, func(c *Config) bool { return c.Target == "raw:PARTLABEL=crash" }},
		{"fstype", `"xfs"`, func(c *Config) bool { return c.FSType == "xfs" }},
		{"fstype", `""`, func(c *Config) bool { return c.FSType == "" }},
		{"mount_options", `"noatime,data=ordered"`, func(c *Config) bool { return c.MountOptions == "noatime,data=ordered" }},
		{"path", `"/crash/dumps"`, func(c *Config) bool { return c.Path == "/crash/dumps" }},
		{"path", `"/"`, func(c *Config) bool { return c.Path == "/" }},
		{"dump_level", `0`, func(c *Config) bool { return reflect.DeepEqual(c.DumpLevel, []filter.Level{0}) }},
		{"dump_level", `17`, func(c *Config) bool { return reflect.DeepEqual(c.DumpLevel, []filter.Level{17}) }},
		{"dump_level", `[1, 31]`, func(c *Config) bool { return reflect.DeepEqual(c.DumpLevel, []filter.Level{1, 31}) }},
		{"compress", `"snappy"`, func(c *Config) bool { return c.Compress == CompressSnappy }},
		{"compress", `"none"`, func(c *Config) bool { return c.Compress == CompressNone }},
		{"compress", `"zlib"`, func(c *Config) bool { return c.Compress == CompressZlib }},
		{"format", `"elf"`, func(c *Config) bool { return c.Format == FormatELF }},
		{"failure_action", `"poweroff"`, func(c *Config) bool { return c.FailureAction == ActionPoweroff }},
		{"failure_action", `"fallback"`, func(c *Config) bool { return c.FailureAction == ActionFallback }},
		{"fallback_target", `"LABEL=SPARE"`, func(c *Config) bool { return c.FallbackTarget == "LABEL=SPARE" }},
		{"final_action", `"halt"`, func(c *Config) bool { return c.FinalAction == ActionHalt }},
		{"failure_action", `"shell"`, func(c *Config) bool { return c.FailureAction == ActionShell }},
		{"shell", `true`, func(c *Config) bool { return c.Shell }},
		{"shell_timeout", `"90s"`, func(c *Config) bool { return c.ShellTimeout == 90*time.Second }},
		{"max_size", `"10G"`, func(c *Config) bool { return c.MaxSize == 10<<30 }},
		{"max_size", `"1.5GiB"`, func(c *Config) bool { return c.MaxSize == 3<<29 }},
		{"max_size", `""`, func(c *Config) bool { return c.MaxSize == 0 }},
		{"pre_hooks", `["/etc/gokdump/hooks/a", "/usr/local/bin/b"]`, func(c *Config) bool {
			return reflect.DeepEqual(c.PreHooks, []string{"/etc/gokdump/hooks/a", "/usr/local/bin/b"})
		}},
		{"post_hooks", `["/etc/gokdump/hooks/notify"]`, func(c *Config) bool { return reflect.DeepEqual(c.PostHooks, []string{"/etc/gokdump/hooks/notify"}) }},
		{"failure_hook", `"/etc/gokdump/hooks/alarm"`, func(c *Config) bool { return c.FailureHook == "/etc/gokdump/hooks/alarm" }},
		{"hook_timeout", `"10s"`, func(c *Config) bool { return c.HookTimeout == 10*time.Second }},
		{"hook_failure", `"fail"`, func(c *Config) bool { return c.HookFailure == HookFail }},
		{"keep", `3`, func(c *Config) bool { return c.Keep == 3 }},
		{"modules", `["virtio_blk", "nvme-core"]`, func(c *Config) bool { return reflect.DeepEqual(c.Modules, []string{"virtio_blk", "nvme-core"}) }},
		{"modules", `[]`, func(c *Config) bool { return len(c.Modules) == 0 }},
		{"time_budget", `"1h30m"`, func(c *Config) bool { return c.TimeBudget == 90*time.Minute }},
		{"device_timeout", `"2m"`, func(c *Config) bool { return c.DeviceTimeout == 2*time.Minute }},
		{"kernel_args", `"sysctl.vm.overcommit_memory=1 loglevel=7"`, func(c *Config) bool { return c.KernelArgs == "sysctl.vm.overcommit_memory=1 loglevel=7" }},
		{"capture_cpus", `"auto"`, func(c *Config) bool { return c.CaptureCPUs == CaptureCPUsAuto }},
		{"capture_cpus", `4`, func(c *Config) bool { return c.CaptureCPUs == 4 }},
		{"capture_cpus", `"2"`, func(c *Config) bool { return c.CaptureCPUs == 2 }},
		{"dmesg", `false`, func(c *Config) bool { return !c.Dmesg }},
		{"progress", `false`, func(c *Config) bool { return !c.Progress }},
		{"test_panic", `"capture"`, func(c *Config) bool { return c.TestPanic == "capture" }},
		{"target", `"ssh://kdump@dumps.example.com:2222/var/crash"`, func(c *Config) bool { return c.Target == "ssh://kdump@dumps.example.com:2222/var/crash" }},
		{"target", `"nfs.example.com:/export/crash"`, func(c *Config) bool { return c.Target == "nfs.example.com:/export/crash" }},
		{"ssh_key", `"/root/.ssh/kdump_ed25519"`, func(c *Config) bool { return c.SSHKey == "/root/.ssh/kdump_ed25519" }},
		{"known_hosts", `"/etc/gokdump/hosts"`, func(c *Config) bool { return c.KnownHosts == "/etc/gokdump/hosts" }},
		{"s3_endpoint", `"s3.example.com:9000"`, func(c *Config) bool { return c.S3Endpoint == "s3.example.com:9000" }},
		{"s3_region", `"eu-west-3"`, func(c *Config) bool { return c.S3Region == "eu-west-3" }},
		{"s3_credentials", `"/etc/gokdump/s3"`, func(c *Config) bool { return c.S3Credentials == "/etc/gokdump/s3" }},
		{"ca_file", `"/etc/gokdump/ca.pem"`, func(c *Config) bool { return c.CAFile == "/etc/gokdump/ca.pem" }},
		{"target", `"s3://crash-dumps/fleet/eu"`, func(c *Config) bool { return c.Target == "s3://crash-dumps/fleet/eu" }},
		{"ip", `"192.0.2.5/24,2001:db8::5/64"`, func(c *Config) bool { return c.IP == "192.0.2.5/24,2001:db8::5/64" }},
		{"ip", `"dhcp6"`, func(c *Config) bool { return c.IP == IPDHCP6 }},
		{"gateway", `"192.0.2.1"`, func(c *Config) bool { return c.Gateway == "192.0.2.1" }},
		{"dns", `["192.0.2.53", "2001:db8::53"]`, func(c *Config) bool { return reflect.DeepEqual(c.DNS, []string{"192.0.2.53", "2001:db8::53"}) }},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.key] = true
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			doc := "# gokdump\n\n" + tt.key + " = " + tt.value + "\n"
			c, err := Parse([]byte(doc), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("value not set: %+v", fields(c))
			}
			if got := c.Source(tt.key); got != "t.toml:3" {
				t.Errorf("Source(%q) = %q, want t.toml:3", tt.key, got)
			}
			for _, k := range Keys() {
				if k != tt.key && c.Source(k) != SourceDefault {
					t.Errorf("Source(%q) = %q, want default", k, c.Source(k))
				}
			}
		})
	}
	for _, k := range Keys() {
		if !seen[k] {
			t.Errorf("key %q has no test", k)
		}
	}
}

func TestParseLines(t *testing.T) {
	// The line finder must not be fooled by key-like text inside a
	// multi-line string, by quoted keys, or by keys that differ in case.
	doc := `target = """
path = "/not/this"
"""
"path" = "/var/dumps"
  keep=2 # indented, no spaces
dump_level = [
  1,
  31,
]
`
	_, err := Parse([]byte(doc), "f")
	if err == nil || !strings.Contains(err.Error(), "f:1: target:") {
		t.Errorf("multi-line target: error %v, want it on line 1", err)
	}
	doc = strings.Replace(doc, "target", "bogus", 1)
	_, err = Parse([]byte(doc), "f")
	if err == nil || !strings.Contains(err.Error(), "f:1: bogus: unknown key") {
		t.Errorf("multi-line unknown key: error %v, want it on line 1", err)
	}
	doc = strings.Replace(doc, "bogus = \"\"\"\npath = \"/not/this\"\n", "kernel_args = \"\"\"\npath = \"/not/this\" \\\n", 1)
	c, err := Parse([]byte(doc), "f")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kernel_args": "f:1", "path": "f:4", "keep": "f:5", "dump_level": "f:6", "dmesg": "default"}
	for k, w := range want {
		if got := c.Source(k); got != w {
			t.Errorf("Source(%q) = %q, want %q", k, got, w)
		}
	}
	if c.Path != "/var/dumps" || c.KernelArgs != "path = \"/not/this\" " {
		t.Errorf("values: path %q kernel_args %q", c.Path, c.KernelArgs)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		is   error
		want []string // substrings of the message
	}{
		{"unknown key", "keep = 1\n\ndump_levle = 3\n", ErrUnknownKey, []string{"t.toml:3", "dump_levle", "did you mean dump_level?"}},
		{"unknown key, case", "target = \"LABEL=a\"\nTarget = \"LABEL=b\"\n", ErrUnknownKey, []string{"t.toml:2", "Target", "did you mean target?"}},
		{"unknown table", "keep = 1\n[capture]\ntarget = \"LABEL=x\"\n", ErrUnknownKey, []string{"t.toml:2", "capture"}},
		{"unknown dotted", "keep = 1\nx.y = 1\n", ErrUnknownKey, []string{"t.toml:2", "x"}},
		{"syntax", "keep = 1\ntarget = \n", ErrSyntax, []string{"t.toml:2"}},
		{"syntax duplicate", "keep = 1\nkeep = 2\n", ErrSyntax, []string{"t.toml:2", "keep"}},
		{"keep string", "\nkeep = \"3\"\n", ErrType, []string{"t.toml:2", "keep", `want an integer, got the string "3"`}},
		{"keep negative", "keep = -1\n", ErrValue, []string{"t.toml:1", "keep", "negative"}},
		{"keep float", "keep = 1.5\n", ErrType, []string{"t.toml:1", "keep", "float"}},
		{"level high", "# c\ndump_level = 40\n", ErrValue, []string{"t.toml:2", "dump_level", "40 is out of range 0..31"}},
		{"level negative", "dump_level = -1\n", ErrValue, []string{"t.toml:1", "dump_level", "-1 is out of range"}},
		{"level huge", "dump_level = 9223372036854775807\n", ErrValue, []string{"t.toml:1", "dump_level", "out of range"}},
		{"level in list", "dump_level = [1, 32]\n", ErrValue, []string{"t.toml:1", "dump_level", "32 is out of range"}},
		{"level empty list", "dump_level = []\n", ErrValue, []string{"dump_level", "empty"}},
		{"level twice", "dump_level = [31, 31]\n", ErrValue, []string{"dump_level", "31 is listed twice"}},
		{"level string", "dump_level = \"31\"\n", ErrType, []string{"dump_level", "want an integer 0..31 or a list of them"}},
		{"level mixed list", "dump_level = [1, \"31\"]\n", ErrType, []string{"dump_level"}},
		{"duration words", "\n\n\ntime_budget = \"10 minutes\"\n", ErrValue, []string{"t.toml:4", "time_budget", `"10 minutes" is not a duration`}},
		{"duration int", "time_budget = 600\n", ErrType, []string{"t.toml:1", "time_budget", "the integer 600"}},
		{"duration negative", "device_timeout = \"-5s\"\n", ErrValue, []string{"device_timeout", "not positive"}},
		{"duration zero", "device_timeout = \"0s\"\n", ErrValue, []string{"device_timeout", "0s is not positive"}},
		{"bad failure action", "failure_action = \"explode\"\n", ErrValue, []string{"t.toml:1", "failure_action", `"explode" is not one of "reboot", "poweroff", "halt", "fallback"`}},
		{"fallback as final", "final_action = \"fallback\"\n", ErrValue, []string{"final_action", `"fallback" is not one of`}},
		{"action type", "final_action = true\n", ErrType, []string{"final_action", "the boolean true"}},
		{"compress", "compress = \"lz4\"\n", ErrValue, []string{"compress", `"lz4"`}},
		{"format", "format = \"ELF\"\n", ErrValue, []string{"format", `"ELF" is not one of "kdump", "elf"`}},
		{"fstype", "fstype = \"ntfs\"\n", ErrValue, []string{"fstype", `"ntfs"`}},
		{"target kind", "target = \"FOO=bar\"\n", ErrValue, []string{"t.toml:1", "target", "unknown kind"}},
		{"target bare", "target = \"sda1\"\n", ErrValue, []string{"target", "/dev path"}},
		{"target uuid", "target = \"UUID=not-hex\"\n", ErrValue, []string{"target", "hex"}},
		{"target raw uuid", "target = \"raw:UUID=abcd\"\n", ErrValue, []string{"target", "raw device has no filesystem"}},
		{"target table", "target = {uuid = \"x\"}\n", ErrType, []string{"target", "a table"}},
		{"fallback target", "fallback_target = \"LABEL=\"\n", ErrValue, []string{"fallback_target", "empty LABEL"}},
		{"path relative", "path = \"var/crash\"\n", ErrValue, []string{"path", "not absolute"}},
		{"path dotdot", "path = \"/var/../etc\"\n", ErrValue, []string{"path", `".."`}},
		{"modules string", "modules = \"virtio_blk\"\n", ErrType, []string{"modules", "want a list of module names"}},
		{"modules ints", "modules = [1]\n", ErrType, []string{"modules", "integer 1"}},
		{"modules path", "modules = [\"kernel/drivers/virtio_blk.ko\"]\n", ErrValue, []string{"modules", "not a kernel module name"}},
		{"dmesg string", "dmesg = \"yes\"\n", ErrType, []string{"dmesg", "want true or false"}},
		{"test_panic", "test_panic = \"Capture!\"\n", ErrValue, []string{"test_panic"}},
		{"kernel_args control", "kernel_args = \"a\\u0007b\"\n", ErrValue, []string{"kernel_args", "control"}},
		{"capture_cpus zero", "capture_cpus = 0\n", ErrValue, []string{"capture_cpus", `0 CPUs: give 1..64, or "auto"`}},
		{"capture_cpus negative", "capture_cpus = -2\n", ErrValue, []string{"capture_cpus", "-2 is out of range 1..64"}},
		{"capture_cpus too many", "capture_cpus = 65\n", ErrValue, []string{"capture_cpus", "65 is out of range 1..64"}},
		{"capture_cpus huge", "capture_cpus = 9223372036854775807\n", ErrValue, []string{"capture_cpus", "out of range 1..64"}},
		{"capture_cpus word", "capture_cpus = \"all\"\n", ErrValue, []string{"capture_cpus", `"all" is not "auto" or a number of CPUs 1..64`}},
		{"capture_cpus bool", "capture_cpus = true\n", ErrType, []string{"capture_cpus", "the boolean true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "t.toml")
			if err == nil {
				t.Fatalf("no error; got %+v", fields(c))
			}
			if c != nil {
				t.Errorf("config returned with an error")
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %q is not a *config.Error", err)
			}
		})
	}
}

func TestParseManyErrors(t *testing.T) {
	doc := "keep = -1\ncompress = \"lz4\"\nbogus = 1\n"
	_, err := Parse([]byte(doc), "t.toml")
	for _, w := range []string{"t.toml:1: keep", "t.toml:2: compress", "t.toml:3: bogus: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
	// Many unknown keys are counted, not all named.
	var b strings.Builder
	for i := range 25 {
		b.WriteString("k" + strings.Repeat("x", i) + " = 1\n")
	}
	_, err = Parse([]byte(b.String()), "t.toml")
	if err == nil || !strings.Contains(err.Error(), "15 more unknown keys") {
		t.Errorf("error %v does not count the rest", err)
	}
}

func TestCmdline(t *testing.T) {
	doc := `dump_level = [1, 31]
target = "LABEL=FROMFILE"
keep = 5
kernel_args = "quiet"
`
	c, err := Parse([]byte(doc), "/etc/gokdump.toml")
	if err != nil {
		t.Fatal(err)
	}
	cmdline := `BOOT_IMAGE=/vmlinuz root=/dev/sda1 irqpoll gokdump.dump_level=17 gokdump.target=UUID=AB12-CD34 ` +
		`gokdump.kernel_args="loglevel=7 nokaslr" gokdump.dmesg gokdump.progress=0 gokdump.device-timeout=1m ` +
		`gokdump.modules=virtio_blk,nvme gokdump.keep=1 gokdump.keep=2 elfcorehdr=0x1000 -- gokdump.compress=none`
	if err := c.ApplyCmdline(cmdline); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DumpLevel = []filter.Level{17}
	want.Target = "UUID=AB12-CD34"
	want.Keep = 2
	want.KernelArgs = "loglevel=7 nokaslr"
	want.Dmesg = true
	want.Progress = false
	want.DeviceTimeout = time.Minute
	want.Modules = []string{"virtio_blk", "nvme"}
	want.Compress = CompressNone
	if got := fields(c); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	for k, w := range map[string]string{
		"dump_level": "cmdline", "target": "cmdline", "keep": "cmdline", "kernel_args": "cmdline",
		"dmesg": "cmdline", "progress": "cmdline", "device_timeout": "cmdline", "modules": "cmdline",
		"compress": "cmdline", "path": "default", "format": "default",
	} {
		if got := c.Source(k); got != w {
			t.Errorf("Source(%q) = %q, want %q", k, got, w)
		}
	}

	// Bad overrides are reported and skipped; good ones still apply and
	// the file's values survive under the bad ones.
	c, _ = Parse([]byte(doc), "/etc/gokdump.toml")
	err = c.ApplyCmdline("gokdump.dump_level=1,x gokdump.keep=-3 gokdump.bogus=1 gokdump.target gokdump.format=elf gokdump.time_budget=soon")
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		"cmdline: gokdump.dump_level:", "cmdline: gokdump.keep: -3 is negative", "gokdump.bogus: unknown key",
		"gokdump.target: needs a value", `gokdump.time_budget: "soon" is not a duration`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if !errors.Is(err, ErrValue) || !errors.Is(err, ErrUnknownKey) {
		t.Errorf("error %v is not ErrValue and ErrUnknownKey", err)
	}
	if !reflect.DeepEqual(c.DumpLevel, []filter.Level{1, 31}) || c.Keep != 5 || c.Target != "LABEL=FROMFILE" {
		t.Errorf("a bad override changed a value: %+v", fields(c))
	}
	if c.Source("keep") != "/etc/gokdump.toml:3" || c.Source("dump_level") != "/etc/gokdump.toml:1" {
		t.Errorf("a bad override changed a source: keep %q dump_level %q", c.Source("keep"), c.Source("dump_level"))
	}
	if c.Format != FormatELF || c.Source("format") != SourceCmdline {
		t.Errorf("good override next to bad ones not applied")
	}
}

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc\n", []string{"a", "b", "c"}},
		{`x="a b" y`, []string{"x=a b", "y"}},
		{`"x=a b" y`, []string{"x=a b", "y"}},
		{`x="" y`, []string{"x=", "y"}},
		{`x="unterminated y`, []string{"x=unterminated y"}},
	}
	for _, tt := range tests {
		if got := splitCmdline(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		cmdline string
		want    []string // substrings; none means valid
	}{
		{"defaults", "", "", nil},
		{"fallback needs target", "\nfailure_action = \"fallback\"\n", "",
			[]string{"t.toml:2: failure_action", "needs fallback_target"}},
		{"fallback from cmdline", "failure_action = \"fallback\"\n", "gokdump.fallback_target=LABEL=SPARE", nil},
		{"fallback same", "target = \"LABEL=A\"\nfailure_action = \"fallback\"\nfallback_target = \"LABEL=A\"\n", "",
			[]string{"t.toml:3: fallback_target", "same as target"}},
		{"fallback target unused", "target = \"LABEL=A\"\nfallback_target = \"LABEL=A\"\n", "", nil},
		{"device timeout", "time_budget = \"20s\"\n", "",
			[]string{"default: device_timeout", "30s is longer than time_budget (20s)"}},
		{"device timeout cmdline", "", "gokdump.device_timeout=11m",
			[]string{"cmdline: gokdump.device_timeout", "11m is longer"}},
		{"elf default compress", "format = \"elf\"\n", "", nil},
		{"elf explicit compress", "format = \"elf\"\ncompress = \"zlib\"\n", "",
			[]string{"t.toml:2: compress", `format "elf" is not compressed`}},
		{"elf no compress", "format = \"elf\"\ncompress = \"none\"\n", "", nil},
		{"raw elf", "target = \"raw:/dev/vdb\"\nformat = \"elf\"\n", "",
			[]string{"t.toml:2: format", "raw device (target)"}},
		{"raw elf fallback", "target = \"LABEL=A\"\nformat = \"elf\"\nfailure_action = \"fallback\"\nfallback_target = \"raw:/dev/vdb\"\n", "",
			[]string{"format", "raw device (fallback_target)"}},
		{"raw fstype", "target = \"raw:/dev/vdb\"\nfstype = \"ext4\"\npath = \"/x\"\n", "",
			[]string{"t.toml:2: fstype: does not apply", "t.toml:3: path: does not apply"}},
		{"raw with mounted fallback", "target = \"raw:/dev/vdb\"\nfailure_action = \"fallback\"\nfallback_target = \"LABEL=A\"\npath = \"/x\"\n", "", nil},
		{"nfs fstype", "target = \"nfs://srv/export\"\nfstype = \"ext4\"\n", "",
			[]string{"t.toml:2: fstype: does not apply: every target is a network target"}},
		{"nfs with disk fallback fstype", "target = \"nfs://srv/export\"\nfstype = \"ext4\"\nfailure_action = \"fallback\"\nfallback_target = \"LABEL=A\"\n", "", nil},
		{"gateway with dhcp", "target = \"ssh://srv/d\"\ngateway = \"192.0.2.1\"\n", "",
			[]string{"t.toml:2: gateway: goes with a static ip"}},
		{"static", "target = \"ssh://srv/d\"\nip = \"192.0.2.5/24\"\ngateway = \"192.0.2.1\"\ndns = [\"192.0.2.53\"]\n", "", nil},
		{"hooks", "pre_hooks = [\"/h/a\"]\nhook_timeout = \"5s\"\nhook_failure = \"fail\"\n", "", nil},
		{"hook timeout", "failure_hook = \"/h/a\"\ntime_budget = \"20s\"\n", "",
			[]string{"default: hook_timeout", "1m is longer than time_budget (20s)"}},
		{"hook keys without hooks", "hook_timeout = \"5s\"\nhook_failure = \"fail\"\n", "",
			[]string{"t.toml:1: hook_timeout: does not apply", "t.toml:2: hook_failure: does not apply"}},
		{"hooks from cmdline", "", "gokdump.post_hooks=/h/a,/h/b gokdump.hook_failure=fail", nil},
		{"shell from cmdline", "failure_action = \"shell\"\n", "gokdump.shell gokdump.shell_timeout=30s", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ApplyCmdline(tt.cmdline); err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error")
			}
			if !errors.Is(err, ErrValue) {
				t.Errorf("%v is not ErrValue", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// A value set in the struct directly is checked too.
	c := Default()
	c.DumpLevel = []filter.Level{99}
	c.Compress = "brotli"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "default: dump_level: 99 is out of range") || !strings.Contains(err.Error(), `"brotli"`) {
		t.Errorf("Validate = %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tt := range []struct {
		in  string
		raw bool
		ok  bool
	}{
		{"UUID=abcd", false, true},
		{"raw:/dev/sdb", true, true},
		{"raw:PARTUUID=0a0b0c0d-01", true, true},
		{"raw:LABEL=x", false, false},
		{"raw:", false, false},
		{"", false, false},
		{"LABEL", false, false},
	} {
		got, err := ParseTarget(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseTarget(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrValue) {
				t.Errorf("ParseTarget(%q) error %v is not ErrValue", tt.in, err)
			}
			continue
		}
		if got.Raw != tt.raw || got.String() != tt.in {
			t.Errorf("ParseTarget(%q) = %+v (%q)", tt.in, got, got.String())
		}
	}
}

func TestParseNetworkTarget(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Target
		str  string // String(), when it differs from in
	}{
		{"ssh://dumps.example.com", Target{Kind: KindSSH, Host: "dumps.example.com", Port: 22, User: "root"}, "ssh://root@dumps.example.com"},
		{"ssh://kdump@10.0.2.100:2222/var/crash", Target{Kind: KindSSH, Host: "10.0.2.100", Port: 2222, User: "kdump", Dir: "/var/crash"}, ""},
		{"ssh://kdump@[2001:db8::1]:22/d", Target{Kind: KindSSH, Host: "2001:db8::1", Port: 22, User: "kdump", Dir: "/d"}, "ssh://kdump@[2001:db8::1]/d"},
		{"ssh://u@h/", Target{Kind: KindSSH, Host: "h", Port: 22, User: "u"}, "ssh://u@h"},
		{"nfs://nfs.example.com/export/crash", Target{Kind: KindNFS, Host: "nfs.example.com", Dir: "/export/crash"}, ""},
		{"nfs.example.com:/export/crash", Target{Kind: KindNFS, Host: "nfs.example.com", Dir: "/export/crash"}, "nfs://nfs.example.com/export/crash"},
		{"10.0.2.100:/", Target{Kind: KindNFS, Host: "10.0.2.100", Dir: "/"}, "nfs://10.0.2.100/"},
		{"[2001:db8::2]:/x", Target{Kind: KindNFS, Host: "2001:db8::2", Dir: "/x"}, "nfs://[2001:db8::2]/x"},
	} {
		got, err := ParseTarget(tt.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseTarget(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("ParseTarget(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
		if again, err := ParseTarget(got.String()); err != nil || again != got {
			t.Errorf("%q does not parse back: %+v, %v", got.String(), again, err)
		}
		if !got.Network() {
			t.Errorf("%q is not a network target", tt.in)
		}
	}
	for _, bad := range []string{
		"ssh://", "ssh://user:secret@host/d", "ssh://host:0/d", "ssh://host:99999/d", "ssh://ho st/d",
		"ssh://host/a/../b", "ssh://host/d?x=1", "ssh://@host/d", "nfs://host", "nfs://host:2049/x",
		"nfs://u@host/x", "nfs:///x", "host:/a/../b", "[::ffff:1.2.3.4]:/x", "bad_host:/x",
	} {
		_, err := ParseTarget(bad)
		if err == nil || !errors.Is(err, ErrValue) {
			t.Errorf("ParseTarget(%q) = %v, want ErrValue", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	// Device specs are not taken for host:/path.
	for _, in := range []string{"LABEL=a:/b", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"} {
		if got, err := ParseTarget(in); err != nil || got.Network() {
			t.Errorf("ParseTarget(%q) = %+v, %v; want a block target", in, got, err)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"ssh://u@h:22/d", "nfs://h/e", "h:/e", "[::1]:/e", "raw:/dev/x", "LABEL=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTarget(s)
		if err != nil {
			return
		}
		again, err := ParseTarget(got.String())
		if err != nil || again != got {
			t.Fatalf("%q parses as %+v, whose String %q parses as %+v, %v", s, got, got.String(), again, err)
		}
	})
}

func TestWriteTOML(t *testing.T) {
	doc := `# test
target = "PARTLABEL=crash \"dumps\""
dump_level = [1, 31]
modules = ["virtio_blk"]
time_budget = "1h30m"
capture_cpus = 4
`
	c, err := Parse([]byte(doc), "/etc/gokdump.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyCmdline("gokdump.keep=3 gokdump.device_timeout=1500ms"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.WriteTOML(&out); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "show.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("WriteTOML:\n%s\nwant:\n%s", out.String(), want)
	}
	// What it writes reads back to the same values.
	back, err := Parse(out.Bytes(), "out")
	if err != nil {
		t.Fatalf("reparse: %v", err)
	}
	if !reflect.DeepEqual(fields(back), fields(c)) {
		t.Errorf("round trip:\n got %+v\nwant %+v", fields(back), fields(c))
	}
}

func TestFormatDuration(t *testing.T) {
	for d, w := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s",
		1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s", 0: "0s",
	} {
		if got := formatDuration(d); got != w {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, w)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("formatDuration(%v) does not parse back: %v %v", d, back, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(filepath.Join(dir, "missing.toml"))
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if d := Default(); !reflect.DeepEqual(*c, d) {
		t.Errorf("missing file gave %+v", c)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile of a missing file: %v", err)
	}

	p := filepath.Join(dir, "gokdump.toml")
	if err := os.WriteFile(p, []byte("\nkeep = 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, load := range []func(string) (*Config, error){Load, LoadFile} {
		c, err = load(p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Keep != 4 || c.Source("keep") != p+":2" {
			t.Errorf("keep %d from %q", c.Keep, c.Source("keep"))
		}
	}

	if err := os.WriteFile(p, bytes.Repeat([]byte("# padding\n"), maxFileSize/10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
	if _, err := Load(dir); err == nil {
		t.Errorf("Load of a directory did not fail")
	}
}

// TestSampleFile checks configs/gokdump.toml: it parses, it documents
// every key, and the defaults it shows, once uncommented, are the real
// defaults.
func TestSampleFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "gokdump.toml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "gokdump.toml")
	if err != nil {
		t.Fatal(err)
	}
	if d := Default(); !reflect.DeepEqual(*c, d) {
		t.Errorf("sample sets values: %+v", c)
	}
	setting := regexp.MustCompile(`(?m)^#\s?([a-z0-9_]+ = .*)$`)
	uncommented := setting.ReplaceAll(data, []byte("$1"))
	c, err = Parse(uncommented, "uncommented")
	if err != nil {
		t.Fatalf("uncommented sample: %v", err)
	}
	for _, k := range Keys() {
		if !strings.HasPrefix(c.Source(k), "uncommented:") {
			t.Errorf("sample does not show key %q", k)
		}
	}
	if got, want := fields(c), Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("sample's defaults differ:\n got %+v\nwant %+v", got, want)
	}
}

// FuzzParse parses the first 512 bytes of its input and checks that what
// WriteTOML makes of the result parses to the same. The cut keeps the
// fuzzer's minimizing of new inputs short (its runs grow with the square
// of the length); a config's structure shows in fewer bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("keep = 1\ndump_level = [1, 31]\n"))
	f.Add([]byte("target = \"raw:/dev/vdb\"\n[x]\ny = 1\n"))
	f.Add([]byte("a.b.c = 1\n\"A\" = 2\na = 3\n"))
	f.Add([]byte("capture_cpus = \"auto\"\n"))
	f.Add([]byte("capture_cpus = 3\nkeep = 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:min(len(data), 512)]
		c, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := c.WriteTOML(&out); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out.Bytes(), "out")
		if err != nil {
			t.Fatalf("reparse of %q: %v", out.String(), err)
		}
		if !reflect.DeepEqual(fields(back), fields(c)) {
			t.Fatalf("round trip differs:\n%+v\n%+v", fields(back), fields(c))
		}
	})
}

func TestTargets(t *testing.T) {
	c := Default()
	_, err := c.Targets()
	if !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "default: target") || !strings.Contains(err.Error(), "gokdump.target=") {
		t.Errorf("empty target: %v", err)
	}
	if err := c.ApplyCmdline("gokdump.target=LABEL=A gokdump.fallback_target=raw:PARTLABEL=spare"); err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets()
	if err != nil || len(ts) != 1 || ts[0].String() != "LABEL=A" || ts[0].Raw {
		t.Errorf("without fallback: %+v, %v", ts, err)
	}
	c.FailureAction = ActionFallback
	ts, err = c.Targets()
	if err != nil || len(ts) != 2 || ts[1].String() != "raw:PARTLABEL=spare" || !ts[1].Raw || ts[1].Spec.Value != "spare" {
		t.Errorf("with fallback: %+v, %v", ts, err)
	}
	c.Target = "bogus"
	if _, err := c.Targets(); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "cmdline: gokdump.target") {
		t.Errorf("bad target: %v", err)
	}
}

func TestSanitize(t *testing.T) {
	d := Default()
	for _, tc := range []struct {
		name string
		set  func(c *Config)
		keys []string
		ok   func(c *Config) bool
	}{
		{"clean", func(c *Config) {}, nil, func(c *Config) bool { return reflect.DeepEqual(c, &d) }},
		{"bad enums", func(c *Config) {
			c.Compress, c.FailureAction, c.FinalAction, c.Format = "lz4", "explode", ActionFallback, "tar"
		},
			[]string{"compress", "format", "failure_action", "final_action"},
			func(c *Config) bool {
				return c.Compress == d.Compress && c.FailureAction == d.FailureAction && c.FinalAction == d.FinalAction && c.Format == d.Format
			}},
		{"levels keep the good ones", func(c *Config) { c.DumpLevel = []filter.Level{99, 1, -3, 1, 31} }, []string{"dump_level"},
			func(c *Config) bool { return reflect.DeepEqual(c.DumpLevel, []filter.Level{1, 31}) }},
		{"no good level", func(c *Config) { c.DumpLevel = []filter.Level{32} }, []string{"dump_level"},
			func(c *Config) bool { return reflect.DeepEqual(c.DumpLevel, d.DumpLevel) }},
		{"durations", func(c *Config) { c.TimeBudget, c.DeviceTimeout = -1, 0 }, []string{"time_budget", "device_timeout"},
			func(c *Config) bool { return c.TimeBudget == d.TimeBudget && c.DeviceTimeout == d.DeviceTimeout }},
		{"device timeout past the budget", func(c *Config) { c.TimeBudget, c.DeviceTimeout = 30*time.Second, time.Hour }, []string{"device_timeout"},
			func(c *Config) bool { return c.DeviceTimeout == 30*time.Second }},
		{"path", func(c *Config) { c.Path = "relative/../x" }, []string{"path"}, func(c *Config) bool { return c.Path == d.Path }},
		{"modules keep the good ones", func(c *Config) { c.Modules = []string{"nvme", "../evil.ko", "virtio_blk"} }, []string{"modules"},
			func(c *Config) bool { return reflect.DeepEqual(c.Modules, []string{"nvme", "virtio_blk"}) }},
		{"hooks keep the good ones", func(c *Config) { c.PostHooks = []string{"/h/a", "relative", "/h/a", "/h/../b", "/h/c"} }, []string{"post_hooks"},
			func(c *Config) bool { return reflect.DeepEqual(c.PostHooks, []string{"/h/a", "/h/c"}) }},
		{"hook timeout past the budget", func(c *Config) { c.PreHooks, c.TimeBudget = []string{"/h/a"}, 30*time.Second },
			[]string{"hook_timeout"}, func(c *Config) bool { return c.HookTimeout == 30*time.Second }},
		{"tiny max_size", func(c *Config) { c.MaxSize = 4096 }, []string{"max_size"}, func(c *Config) bool { return c.MaxSize == 0 }},
		{"capture_cpus out of range", func(c *Config) { c.CaptureCPUs = 1000 }, []string{"capture_cpus"},
			func(c *Config) bool { return c.CaptureCPUs == CaptureCPUsAuto }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c)
			keys := c.Sanitize()
			if !reflect.DeepEqual(keys, tc.keys) {
				t.Errorf("changed %q, want %q", keys, tc.keys)
			}
			if !tc.ok(&c) {
				t.Errorf("after Sanitize: %+v", c)
			}
			for _, k := range keyDefs {
				if err := k.check(&c); err != nil {
					t.Errorf("%s still fails its check: %v", k.name, err)
				}
			}
		})
	}
}

// TestLoadPartial: the capture's load keeps every good key of a file with
// bad ones (the target above all), and falls back to the defaults when
// the file cannot be parsed at all; the error is returned either way.
func TestLoadPartial(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gokdump.toml")
	os.WriteFile(p, []byte("target = \"LABEL=DUMP\"\ndump_level = [1, \"x\"]\ncompress = \"rar\"\nkeep = 2\nbogus = 1\n"), 0o644)
	c, err := LoadPartial(p)
	if c == nil || err == nil {
		t.Fatalf("LoadPartial = %v, %v; want a config and an error", c, err)
	}
	for _, key := range []string{"dump_level", "compress", "bogus"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	d := Default()
	if c.Target != "LABEL=DUMP" || c.Keep != 2 || !reflect.DeepEqual(c.DumpLevel, d.DumpLevel) {
		t.Errorf("good keys lost or bad ones half-set: target %q keep %d dump_level %v", c.Target, c.Keep, c.DumpLevel)
	}
	if keys := c.Sanitize(); !reflect.DeepEqual(keys, []string{"compress"}) || c.Compress != d.Compress {
		t.Errorf("Sanitize changed %q, compress %q", keys, c.Compress)
	}
	if _, err := Load(p); err == nil {
		t.Error("Load accepted the bad file")
	}

	os.WriteFile(p, []byte("target = \"LABEL=DUMP\"\nkeep = [\n"), 0o644)
	c, err = LoadPartial(p)
	if c == nil || !errors.Is(err, ErrSyntax) || !reflect.DeepEqual(*c, d) {
		t.Errorf("syntax error: %+v, %v; want the defaults and ErrSyntax", c, err)
	}
	c, err = LoadPartial(dir)
	if c == nil || err == nil {
		t.Errorf("unreadable file: %v, %v", c, err)
	}
}

// TestSet: a key set from text as the console's save flags set it, with
// its source; a bad value changes nothing.
func TestSet(t *testing.T) {
	c := Default()
	if err := c.Set("dump-level", "1,31", "console"); err != nil || !reflect.DeepEqual(c.DumpLevel, []filter.Level{1, 31}) || c.Source("dump_level") != "console" {
		t.Errorf("Set dump-level: %v, %v from %q", err, c.DumpLevel, c.Source("dump_level"))
	}
	if err := c.Set("max_size", "2G", "console"); err != nil || c.MaxSize != 2<<30 {
		t.Errorf("Set max_size: %v, %v", err, c.MaxSize)
	}
	err := c.Set("compress", "lz4", "console")
	if !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "config: console: compress:") || c.Compress != CompressZstd {
		t.Errorf("Set compress lz4: %v, compress %q", err, c.Compress)
	}
	if err := c.Set("nope", "1", "console"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Set of an unknown key: %v", err)
	}
}

func TestCaptureCPUs(t *testing.T) {
	const gib = 1 << 30
	for _, tt := range []struct {
		setting int
		ram     uint64
		want    int
	}{
		{CaptureCPUsAuto, 0, 1},
		{CaptureCPUsAuto, 4 * gib, 1},
		{CaptureCPUsAuto, 32 * gib, 1},
		{CaptureCPUsAuto, 60 * gib, 1},
		// MemTotal of a 64 GiB machine is a little less than 64 GiB.
		{CaptureCPUsAuto, 62*gib + 800<<20, 2},
		{CaptureCPUsAuto, 64 * gib, 2},
		{CaptureCPUsAuto, 96 * gib, 3},
		{CaptureCPUsAuto, 250 * gib, 8},
		{CaptureCPUsAuto, 4 << 40, 8},
		{CaptureCPUsAuto, 1<<64 - 1, 8},
		{1, 4 << 40, 1},
		{3, 1 * gib, 3},
	} {
		c := Default()
		c.CaptureCPUs = tt.setting
		if got := c.CaptureCPUsFor(tt.ram); got != tt.want {
			t.Errorf("capture_cpus %d, %d bytes of RAM: %d CPUs, want %d", tt.setting, tt.ram, got, tt.want)
		}
	}
	// From the command line, as gokdump load's checks apply it.
	c := Default()
	if err := c.ApplyCmdline("gokdump.capture_cpus=3"); err != nil || c.CaptureCPUs != 3 {
		t.Errorf("gokdump.capture_cpus=3: %d, %v", c.CaptureCPUs, err)
	}
	if err := c.ApplyCmdline("gokdump.capture-cpus=auto"); err != nil || c.CaptureCPUs != CaptureCPUsAuto {
		t.Errorf("gokdump.capture-cpus=auto: %d, %v", c.CaptureCPUs, err)
	}
	if err := c.ApplyCmdline("gokdump.capture_cpus=0"); err == nil || c.CaptureCPUs != CaptureCPUsAuto {
		t.Errorf("gokdump.capture_cpus=0: %d, %v; want an error and the value kept", c.CaptureCPUs, err)
	}
}
