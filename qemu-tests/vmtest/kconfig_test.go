package vmtest

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
)

func TestParseKConfig(t *testing.T) {
	tests := []struct {
		name, in string
		want     KConfig
		err      error
	}{
		{"options", "# comment\nCONFIG_A=y\nCONFIG_B=m\n\nCONFIG_C=\"x=y\"\n# CONFIG_D is not set\n",
			KConfig{"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": `"x=y"`}, nil},
		{"only unset", "# CONFIG_D is not set\n", KConfig{}, nil},
		{"empty", "", nil, ErrNotKConfig},
		{"comments only", "# hello\n", nil, ErrNotKConfig},
		{"not a config", "[section]\nkey = 1\n", nil, ErrNotKConfig},
		{"binary", "\x7fELF\x02\x01\x01", nil, ErrNotKConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKConfig(strings.NewReader(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if tt.err == nil && !equalConfigs(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func equalConfigs(a, b KConfig) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCheckConfigEachOption: the testdata configuration has every option
// a built-in x86 kernel needs; without any one of them (every option of a
// choice) the check fails and names exactly that one, in the report and in
// its text.
func TestCheckConfigEachOption(t *testing.T) {
	c, err := ReadKConfig("testdata/kdump-amd64.config")
	if err != nil {
		t.Fatal(err)
	}
	f := ConfigFor{Arch: "amd64", Disk: "nvme", Crash: guest.CrashSysrq}
	if r := CheckConfig(c, f); !r.OK() || len(r.Warnings) != 0 {
		t.Fatalf("testdata config: missing %v, warnings %v", r.Missing, r.Warnings)
	}
	for _, q := range Requirements(f) {
		opt := q.Options[0]
		t.Run(opt, func(t *testing.T) {
			without := KConfig{}
			for k, v := range c {
				without[k] = v
			}
			if q.Absent {
				without[opt] = "y"
			} else {
				// A choice is missing when none of it is set.
				for _, o := range q.Options {
					delete(without, o)
				}
			}
			r := CheckConfig(without, f)
			var text bytes.Buffer
			r.WriteText(&text)
			switch {
			case q.Warn:
				if !r.OK() || !slices.Equal(r.Warnings, []string{opt}) || !strings.Contains(text.String(), "WARN "+opt) {
					t.Errorf("missing %v, warnings %v\n%s", r.Missing, r.Warnings, text.String())
				}
			case !slices.Equal(r.Missing, []string{opt}):
				t.Errorf("missing %v, want [%s]", r.Missing, opt)
			case !strings.Contains(text.String(), "MISS "+opt) || !strings.Contains(text.String(), "missing for kdump: "+opt+"\n"):
				t.Errorf("the text does not name %s:\n%s", opt, text.String())
			}
		})
	}
}

// TestCheckConfigModules: a driver that is a module passes only when the
// modules are given; the console never does.
func TestCheckConfigModules(t *testing.T) {
	c, err := ReadKConfig("testdata/kdump-amd64.config")
	if err != nil {
		t.Fatal(err)
	}
	virtio := ConfigFor{Arch: "amd64", Disk: "virtio"}
	if r := CheckConfig(c, virtio); !slices.Equal(r.Missing, []string{"CONFIG_VIRTIO_BLK"}) {
		t.Errorf("virtio without modules: missing %v", r.Missing)
	}
	virtio.Modules = true
	if r := CheckConfig(c, virtio); !r.OK() {
		t.Errorf("virtio with modules: missing %v", r.Missing)
	}
	c["CONFIG_SERIAL_8250"] = "m"
	if r := CheckConfig(c, virtio); !slices.Equal(r.Missing, []string{"CONFIG_SERIAL_8250"}) {
		t.Errorf("a modular console: missing %v", r.Missing)
	}
}

// TestCheckConfigCrashMethods: what each --crash needs.
func TestCheckConfigCrashMethods(t *testing.T) {
	c, err := ReadKConfig("testdata/kdump-amd64.config")
	if err != nil {
		t.Fatal(err)
	}
	delete(c, "CONFIG_MAGIC_SYSRQ")
	for crash, missing := range map[string][]string{
		guest.CrashSysrq:      {"CONFIG_MAGIC_SYSRQ"},
		guest.CrashPanic:      {},
		guest.CrashOops:       {"CONFIG_LKDTM"},
		guest.CrashBUG:        {"CONFIG_LKDTM", "CONFIG_BUG"},
		guest.CrashSoftlockup: {"CONFIG_LKDTM", "CONFIG_SOFTLOCKUP_DETECTOR"},
	} {
		if r := CheckConfig(c, ConfigFor{Arch: "amd64", Crash: crash}); !slices.Equal(r.Missing, missing) {
			t.Errorf("--crash %s: missing %v, want %v", crash, r.Missing, missing)
		}
	}
	c["CONFIG_LKDTM"], c["CONFIG_BUG"] = "m", "y"
	if r := CheckConfig(c, ConfigFor{Arch: "amd64", Crash: guest.CrashBUG, Modules: true}); !r.OK() {
		t.Errorf("--crash bug with LKDTM a module: missing %v", r.Missing)
	}
}

func TestCheckConfigArch(t *testing.T) {
	c, err := ReadKConfig("testdata/kdump-amd64.config")
	if err != nil {
		t.Fatal(err)
	}
	r := CheckConfig(c, ConfigFor{Arch: "arm64"})
	if !slices.Equal(r.Missing, []string{"CONFIG_ARM64"}) || !strings.Contains(r.Items[0].Why, "configuration is for amd64") {
		t.Errorf("an x86 config for an arm64 kernel: %+v", r)
	}
}

// debianConfigs returns the configurations of the Debian kernels the QEMU
// tests fetch: /boot/config-* of the older packages, the modules
// directory's config of the split ones.
func debianConfigs(t *testing.T) []string {
	t.Helper()
	cache := fixture.CacheDir(t)
	boot, _ := filepath.Glob(filepath.Join(cache, "kernels", "*", "root", "boot", "config-*"))
	split, _ := filepath.Glob(filepath.Join(cache, "kernels", "*", "root", "usr", "lib", "modules", "*", "config"))
	all := append(boot, split...)
	if len(all) == 0 {
		fixture.Missing(t, "no Debian kernel configurations in %s: scripts/fetch-kernel 6.1 fetches one", filepath.Join(cache, "kernels"))
	}
	return all
}

var debianArch = regexp.MustCompile(`-(amd64|arm64)$`)

// TestCheckConfigDebian checks the configurations of Debian's kernels:
// the amd64 ones have everything kdump needs for --disk nvme (built in)
// and for virtio with their modules, but not virtio without them, nor
// LKDTM for --crash oops; Debian's arm64 kernels lack CONFIG_KEXEC_FILE
// (their kexec is kexec_load only) and pass with their modules. A copy without CONFIG_CRASH_DUMP
// fails naming it.
func TestCheckConfigDebian(t *testing.T) {
	for _, path := range debianConfigs(t) {
		rel := filepath.Base(path)
		if rel == "config" {
			rel = filepath.Base(filepath.Dir(path))
		}
		rel = strings.TrimPrefix(rel, "config-")
		m := debianArch.FindStringSubmatch(rel)
		if m == nil {
			continue
		}
		arch := m[1]
		t.Run(rel, func(t *testing.T) {
			c, err := ReadKConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Arch() != arch {
				t.Fatalf("Arch() = %q, want %s", c.Arch(), arch)
			}
			check := func(f ConfigFor, want ...string) {
				t.Helper()
				f.Arch = arch
				r := CheckConfig(c, f)
				if !slices.Equal(r.Missing, want) {
					t.Errorf("%+v: missing %v, want %v", f, r.Missing, want)
				}
			}
			if arch == "arm64" {
				// kexec_load only: the loader's classic path.
				if c["CONFIG_KEXEC_FILE"] == "y" || c["CONFIG_KEXEC"] != "y" {
					t.Errorf("KEXEC_FILE %q, KEXEC %q: Debian's arm64 kernels have kexec_load only", c["CONFIG_KEXEC_FILE"], c["CONFIG_KEXEC"])
				}
				check(ConfigFor{Disk: "nvme", Modules: true})
				check(ConfigFor{Disk: "virtio", Modules: true})
				return
			}
			check(ConfigFor{Disk: "nvme"})
			check(ConfigFor{Disk: "nvme", Modules: true})
			check(ConfigFor{Disk: "virtio", Modules: true})
			// virtio_blk is a module in every line, virtio_pci up to 6.1.
			virtio := []string{"CONFIG_VIRTIO_BLK"}
			if c["CONFIG_VIRTIO_PCI"] == "m" {
				virtio = append(virtio, "CONFIG_VIRTIO_PCI")
			}
			check(ConfigFor{Disk: "virtio", Crash: guest.CrashPanic}, virtio...)
			check(ConfigFor{Disk: "nvme", Crash: guest.CrashOops, Modules: true}, "CONFIG_LKDTM")

			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cut := regexp.MustCompile(`(?m)^CONFIG_CRASH_DUMP=y$`).ReplaceAll(b, []byte("# CONFIG_CRASH_DUMP is not set"))
			if bytes.Equal(cut, b) {
				t.Fatal("no CONFIG_CRASH_DUMP=y to take out")
			}
			c, err = ParseKConfig(bytes.NewReader(cut))
			if err != nil {
				t.Fatal(err)
			}
			r := CheckConfig(c, ConfigFor{Arch: arch, Modules: true})
			var text bytes.Buffer
			r.WriteText(&text)
			if !slices.Equal(r.Missing, []string{"CONFIG_CRASH_DUMP"}) || !strings.Contains(text.String(), "missing for kdump: CONFIG_CRASH_DUMP") {
				t.Errorf("without CONFIG_CRASH_DUMP: missing %v\n%s", r.Missing, text.String())
			}
		})
	}
}

// TestFindKConfig: where builds and distributions leave a kernel's
// configuration.
func TestFindKConfig(t *testing.T) {
	const rel = "6.1.0-57-cloud-amd64"
	tests := []struct {
		name    string
		files   map[string]string
		kernel  string
		modules string
		want    string
	}{
		{"debian boot", map[string]string{"boot/vmlinuz-" + rel: "k", "boot/config-" + rel: "c"},
			"boot/vmlinuz-" + rel, "", "boot/config-" + rel},
		{"split package", map[string]string{"usr/lib/modules/" + rel + "/vmlinuz": "k", "usr/lib/modules/" + rel + "/config": "c"},
			"usr/lib/modules/" + rel + "/vmlinuz", "usr/lib/modules/" + rel, "usr/lib/modules/" + rel + "/config"},
		{"modules build link", map[string]string{"img/bzImage": "k", "lib/modules/" + rel + "/build/.config": "c"},
			"img/bzImage", "lib/modules/" + rel, "lib/modules/" + rel + "/build/.config"},
		{"source tree", map[string]string{"linux/arch/x86/boot/bzImage": "k", "linux/.config": "c"},
			"linux/arch/x86/boot/bzImage", "", "linux/.config"},
		{"none", map[string]string{"img/bzImage": "k", "img/.config": "c"}, "img/bzImage", "", ""},
		{"another release's", map[string]string{"boot/vmlinuz-" + rel: "k", "boot/config-6.1.0-56-cloud-amd64": "c"},
			"boot/vmlinuz-" + rel, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fixture.Tree(t, tt.files)
			mods := ""
			if tt.modules != "" {
				mods = filepath.Join(root, tt.modules)
			}
			got := FindKConfig(filepath.Join(root, tt.kernel), rel, mods)
			want := ""
			if tt.want != "" {
				want = filepath.Join(root, tt.want)
			}
			if got != want {
				t.Errorf("FindKConfig = %q, want %q", got, want)
			}
		})
	}
}

func FuzzParseKConfig(f *testing.F) {
	f.Add([]byte("CONFIG_A=y\n# CONFIG_B is not set\n"))
	if b, err := os.ReadFile("testdata/kdump-amd64.config"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseKConfig(bytes.NewReader(b))
		if err != nil {
			return
		}
		for k := range c {
			if !strings.HasPrefix(k, "CONFIG_") {
				t.Fatalf("option %q", k)
			}
		}
		CheckConfig(c, ConfigFor{Disk: "virtio", Crash: guest.CrashSoftlockup, Modules: true})
	})
}

// TestKdumpFragment: configs/kdump.config, the fragment README's CI job
// and make test-kernel build with, has every option a run without
// --modules needs, on its own and merged after the dedicated capture
// kernel's fragment (what make test-kernel builds).
func TestKdumpFragment(t *testing.T) {
	frag, err := ReadKConfig(filepath.Join("..", "..", "configs", "kdump.config"))
	if err != nil {
		t.Fatal(err)
	}
	capture, err := ReadKConfig(filepath.Join("..", "..", "configs", "capture-kernel.config"))
	if err != nil {
		t.Fatal(err)
	}
	merged := KConfig{}
	maps.Copy(merged, capture)
	maps.Copy(merged, frag)
	for name, c := range map[string]KConfig{"kdump.config": frag, "capture-kernel.config + kdump.config": merged} {
		for _, disk := range []string{"nvme", "virtio"} {
			for _, crash := range []string{guest.CrashSysrq, guest.CrashPanic} {
				r := CheckConfig(c, ConfigFor{Arch: "amd64", Disk: disk, Crash: crash})
				if !r.OK() || len(r.Warnings) > 0 {
					t.Errorf("%s, --disk %s --crash %s: missing %q, warnings %q", name, disk, crash, r.Missing, r.Warnings)
				}
			}
		}
	}
	// Without the fragment the dedicated capture kernel cannot be the
	// first kernel: the check says so rather than booting it.
	alone := maps.Clone(capture)
	alone["CONFIG_X86_64"] = "y" // what CONFIG_64BIT=y gives
	r := CheckConfig(alone, ConfigFor{Arch: "amd64"})
	if !slices.Contains(r.Missing, "CONFIG_KEXEC_FILE") || !slices.Contains(r.Missing, "CONFIG_MAGIC_SYSRQ") {
		t.Errorf("capture-kernel.config alone: missing %q, want CONFIG_KEXEC_FILE and CONFIG_MAGIC_SYSRQ", r.Missing)
	}
}

// TestCheckConfigKexec: either system call will do, kexec_file_load or
// kexec_load (the loader falls back to it: Debian's arm64 kernels have
// only that); a kernel with neither cannot load a capture kernel.
func TestCheckConfigKexec(t *testing.T) {
	base, err := ReadKConfig("testdata/kdump-amd64.config")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, file, classic string
		missing             []string
		item                string // the option the report names
	}{
		{"both", "y", "y", nil, "CONFIG_KEXEC_FILE"},
		{"file only", "y", "", nil, "CONFIG_KEXEC_FILE"},
		{"classic only", "", "y", nil, "CONFIG_KEXEC"},
		{"neither", "", "", []string{"CONFIG_KEXEC_FILE"}, "CONFIG_KEXEC_FILE"},
		{"classic a module", "", "m", []string{"CONFIG_KEXEC_FILE"}, "CONFIG_KEXEC_FILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := maps.Clone(base)
			c["CONFIG_KEXEC_FILE"], c["CONFIG_KEXEC"] = tt.file, tt.classic
			r := CheckConfig(c, ConfigFor{Arch: "amd64"})
			if !slices.Equal(r.Missing, tt.missing) {
				t.Errorf("missing %q, want %q", r.Missing, tt.missing)
			}
			if r.Items[0].Option != tt.item {
				t.Errorf("the first item is %+v, want %s", r.Items[0], tt.item)
			}
		})
	}
}
