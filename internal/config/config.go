package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/size"
)

// DefaultPath is where the host's CLI and the capture init look for the
// configuration.
const DefaultPath = "/etc/gokdump.toml"

// Compression is how kdump-format dumps compress their pages.
type Compression string

const (
	CompressZstd   Compression = "zstd"
	CompressLZO    Compression = "lzo"
	CompressZlib   Compression = "zlib"
	CompressSnappy Compression = "snappy"
	CompressNone   Compression = "none"
)

// Format is the file format of a saved dump.
type Format string

const (
	// FormatKdump is makedumpfile's kdump-compressed format.
	FormatKdump Format = "kdump"
	// FormatELF is an ELF core file like /proc/vmcore itself.
	FormatELF Format = "elf"
)

// Action is what the capture init does when it is done or has failed.
type Action string

const (
	ActionReboot   Action = "reboot"
	ActionPoweroff Action = "poweroff"
	ActionHalt     Action = "halt"
	// ActionFallback, for failure_action only, retries the dump on
	// fallback_target; if that fails too, final_action is taken.
	ActionFallback Action = "fallback"
	// ActionShell, for failure_action only, opens the operator's console
	// (a shell with gokdump's commands); leaving it, or shell_timeout
	// without a keystroke, takes final_action.
	ActionShell Action = "shell"
)

// HookFailure is what a pre hook that fails does to the capture.
type HookFailure string

const (
	// HookContinue logs the failure and goes on with the dump.
	HookContinue HookFailure = "continue"
	// HookFail stops the capture: nothing is saved, failure_action.
	HookFail HookFailure = "fail"
)

// Where the image (and gokdump propagate on the host) keeps the SSH key
// and the pinned host keys.
const (
	DefaultSSHKey     = "/etc/gokdump/id_ed25519"
	DefaultKnownHosts = "/etc/gokdump/known_hosts"
	// DefaultS3Credentials is where the image (and the host) keeps the
	// keys of an s3 target; DefaultS3Region the region signed for when
	// s3_region says none.
	DefaultS3Credentials = "/etc/gokdump/s3-credentials"
	DefaultS3Region      = "us-east-1"
)

// Values of ip that ask a DHCP server.
const (
	IPDHCP  = "dhcp"
	IPDHCP6 = "dhcp6"
)

// CaptureCPUsAuto is capture_cpus = "auto": the count follows the
// machine's memory (CPUsForRAM).
const CaptureCPUsAuto = 0

// MaxCaptureCPUs bounds capture_cpus: every CPU costs the capture kernel
// memory out of the reservation, and past a few the save is bound by the
// disk, not by compression.
const MaxCaptureCPUs = 64

// CPUsPerRAM and MaxAutoCPUs are capture_cpus = "auto"'s rule: one CPU
// per CPUsPerRAM of the machine's memory, at least one, at most
// MaxAutoCPUs. Below 64 GiB it is one CPU, as kdump has always booted
// its capture kernel; a machine with more memory gets its dump saved
// sooner for what a few more CPUs cost in the reservation (gokdump
// estimate counts it).
const (
	CPUsPerRAM  = 32 << 30
	MaxAutoCPUs = 8
)

// CPUsForRAM is how many CPUs "auto" gives a machine with ram bytes of
// memory (MemTotal). MemTotal falls short of the memory installed by what
// firmware and the kernel keep, a few percent: it is counted up by a
// sixteenth, so that a 64 GiB machine gets its two.
func CPUsForRAM(ram uint64) int {
	ram = min(ram, 1<<60) // no overflow below
	return int(max(1, min((ram+ram/16)/CPUsPerRAM, MaxAutoCPUs)))
}

// CaptureCPUsFor is the number of CPUs the capture kernel of a machine
// with ram bytes of memory brings up: capture_cpus, or "auto"'s.
func (c *Config) CaptureCPUsFor(ram uint64) int {
	if c.CaptureCPUs == CaptureCPUsAuto {
		return CPUsForRAM(ram)
	}
	return c.CaptureCPUs
}

// Config is the effective configuration. The zero value is not useful:
// start from Default, Parse or Load.
type Config struct {
	// Target is the dump device: UUID=…, LABEL=…, PARTUUID=…,
	// PARTLABEL=…, a /dev path, or any of those but UUID/LABEL after
	// "raw:" to write the dump onto the device itself. Empty is allowed
	// here but fails at capture time unless the command line sets it.
	Target string
	// FSType is the target's filesystem; empty detects it from the
	// superblock.
	FSType string
	// MountOptions is passed to mount(2) as its data string.
	MountOptions string
	// Path is the directory on the target that holds one directory per
	// dump.
	Path string
	// DumpLevel lists makedumpfile dump levels to try in order: the first
	// whose dump fits on the target is kept.
	DumpLevel []filter.Level
	// Compress is the page compression of kdump-format dumps.
	Compress Compression
	// Format is the file format of the dump.
	Format Format
	// FailureAction is taken when the dump cannot be saved.
	FailureAction Action
	// FallbackTarget is used, with failure_action = "fallback", when
	// Target is missing or unwritable. Same syntax as Target.
	FallbackTarget string
	// FinalAction is taken once the dump is saved.
	FinalAction Action
	// Shell opens the operator's console before anything is saved
	// (gokdump.shell=1 on the capture command line); ShellTimeout is how
	// long the console waits for a keystroke before it takes
	// final_action.
	Shell        bool
	ShellTimeout time.Duration
	// MaxSize caps the size of the dump file (makedumpfile's -L): the
	// level is chosen to fit, and a dump that would grow past it is cut
	// there, flagged incomplete. 0 is no cap.
	MaxSize size.Size
	// Keep is how many dumps to keep under Path, the new one included;
	// older ones are removed first. 0 keeps all.
	Keep int
	// Modules are kernel modules to load before looking for the target,
	// beyond those the initramfs loads anyway.
	Modules []string
	// TimeBudget bounds the whole capture; a watchdog takes
	// FailureAction when it runs out.
	TimeBudget time.Duration
	// DeviceTimeout bounds the wait for the target device to appear.
	DeviceTimeout time.Duration
	// PreHooks run, in order, before the dump is saved; PostHooks after
	// a dump is saved (whole or incomplete), with the target still
	// mounted; FailureHook when nothing could be saved. Each is a static
	// executable that gokdump build packs into the image at the same
	// path. HookTimeout bounds each run; HookFailure says whether a pre
	// hook that fails stops the capture.
	PreHooks    []string
	PostHooks   []string
	FailureHook string
	HookTimeout time.Duration
	HookFailure HookFailure
	// KernelArgs is appended to the capture kernel's command line when
	// it is loaded.
	KernelArgs string
	// CaptureCPUs is how many CPUs the capture kernel brings up
	// (nr_cpus= on the command line gokdump load derives); the save runs
	// a worker on each. CaptureCPUsAuto (0, "auto") takes CPUsForRAM of
	// the machine's memory.
	CaptureCPUs int
	// Dmesg saves vmcore-dmesg.txt beside the dump.
	Dmesg bool
	// Progress prints progress on the console while saving.
	Progress bool
	// SSHKey is the private key that authenticates an ssh target, in the
	// image as on the host; KnownHosts the file that pins the server's
	// host key.
	SSHKey     string
	KnownHosts string
	// S3Endpoint is the S3-compatible server of an s3:// target:
	// host[:port] or https://host[:port]; always TLS, always verified.
	S3Endpoint string
	// S3Region is the region requests are signed for.
	S3Region string
	// S3Credentials is the file holding the access key and secret (and a
	// session token), in the image (0600) as on the host.
	S3Credentials string
	// CAFile is a PEM bundle of the CAs that may sign the S3 endpoint's
	// certificate; empty means the host's system bundle, packed by build.
	CAFile string
	// IP is how the capture kernel's network is configured: "dhcp",
	// "dhcp6", or static addresses in CIDR form, comma-separated (one
	// IPv4 and one IPv6 at most). Gateway and DNS go with static ones.
	IP      string
	Gateway string
	DNS     []string

	// TestPanic, for tests only, names a place in the capture path where
	// a Go panic is injected ("capture"); empty injects nothing.
	TestPanic string

	// src maps a key to where its value came from; missing means default.
	src map[string]string
}

// Sources recorded for a value that no file or command line set.
const (
	SourceDefault = "default"
	SourceCmdline = "cmdline"
)

// Default returns the configuration used when no file and no command line
// say otherwise.
func Default() Config {
	return Config{
		Path:          "/var/crash",
		DumpLevel:     []filter.Level{filter.MaxLevel},
		Compress:      CompressZstd,
		Format:        FormatKdump,
		FailureAction: ActionReboot,
		FinalAction:   ActionReboot,
		ShellTimeout:  5 * time.Minute,
		HookTimeout:   time.Minute,
		HookFailure:   HookContinue,
		TimeBudget:    10 * time.Minute,
		DeviceTimeout: 30 * time.Second,
		Dmesg:         true,
		Progress:      true,
		SSHKey:        DefaultSSHKey,
		KnownHosts:    DefaultKnownHosts,
		S3Region:      DefaultS3Region,
		S3Credentials: DefaultS3Credentials,
		IP:            IPDHCP,
		CaptureCPUs:   CaptureCPUsAuto,
	}
}

// Keys returns the configuration keys in the order WriteTOML prints them.
func Keys() []string {
	names := make([]string, len(keyDefs))
	for i, k := range keyDefs {
		names[i] = k.name
	}
	return names
}

// Source tells where the value of key came from: "default", "FILE:LINE"
// or "cmdline". It returns "" for a key that does not exist.
func (c *Config) Source(key string) string {
	if lookupKey(key) == nil {
		return ""
	}
	if s, ok := c.src[key]; ok {
		return s
	}
	return SourceDefault
}

func (c *Config) setSource(key, src string) {
	if c.src == nil {
		c.src = make(map[string]string)
	}
	c.src[key] = src
}

// explicit reports whether key was set by a file or the command line.
func (c *Config) explicit(key string) bool {
	_, ok := c.src[key]
	return ok
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.DumpLevel = slices.Clone(c.DumpLevel)
	n.Modules = slices.Clone(c.Modules)
	n.DNS = slices.Clone(c.DNS)
	n.PreHooks = slices.Clone(c.PreHooks)
	n.PostHooks = slices.Clone(c.PostHooks)
	if c.src != nil {
		n.src = make(map[string]string, len(c.src))
		for k, v := range c.src {
			n.src[k] = v
		}
	}
	return &n
}

// maxFileSize bounds the config file Load reads; real ones are a few KiB.
const maxFileSize = 1 << 20

// Load parses the file at path. A missing file is not an error: it yields
// the defaults.
func Load(path string) (*Config, error) {
	c, err := LoadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		d := Default()
		return &d, nil
	}
	return c, err
}

// LoadFile parses the file at path, which must exist: for a path a user
// named, where a typo must not quietly mean the defaults.
func LoadFile(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// LoadPartial is Load for the capture, which must go on whatever the file
// holds: it always returns a Config, as ParsePartial does, with Load's
// error. A file that cannot be read yields the defaults.
func LoadPartial(path string) (*Config, error) {
	d := Default()
	data, err := readFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &d, nil
	case err != nil:
		return &d, err
	}
	return ParsePartial(data, path)
}

// readFile reads a config file of at most maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
