package kexec

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

func TestReadStatus(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string // sys/... and proc/...
		want     Status
		ready    bool
		problems []string // substrings, one per problem
	}{
		{
			name: "ready",
			files: map[string]string{
				"sys/kernel/kexec_crash_size":         "134217728\n",
				"sys/kernel/kexec_crash_loaded":       "1\n",
				"sys/kernel/security/lockdown":        "[none] integrity confidentiality\n",
				"proc/cmdline":                        "root=/dev/vda1 console=ttyS0 crashkernel=128M\n",
				"proc/sys/kernel/kexec_load_disabled": "0\n",
			},
			want:  Status{Supported: true, CrashSize: 128 << 20, Loaded: true, Crashkernel: []string{"128M"}, Lockdown: "none"},
			ready: true,
		},
		{
			name: "reserved, not loaded",
			files: map[string]string{
				"sys/kernel/kexec_crash_size":   "268435456\n",
				"sys/kernel/kexec_crash_loaded": "0\n",
				"proc/cmdline":                  "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M quiet\n",
			},
			want:     Status{Supported: true, CrashSize: 256 << 20, Crashkernel: []string{"1G-4G:192M,4G-64G:256M,64G-:512M"}},
			problems: []string{"no capture kernel loaded"},
		},
		{
			name: "no crashkernel=",
			files: map[string]string{
				"sys/kernel/kexec_crash_size":   "0\n",
				"sys/kernel/kexec_crash_loaded": "0\n",
				"proc/cmdline":                  "root=/dev/vda1\n",
			},
			want:     Status{Supported: true},
			problems: []string{"add crashkernel=", "no capture kernel loaded"},
		},
		{
			name: "reservation failed",
			files: map[string]string{
				"sys/kernel/kexec_crash_size":   "0\n",
				"sys/kernel/kexec_crash_loaded": "0\n",
				"proc/cmdline":                  "crashkernel=512M,high crashkernel=72M,low\n",
			},
			want:     Status{Supported: true, Crashkernel: []string{"512M,high", "72M,low"}},
			problems: []string{"crashkernel=512M,high crashkernel=72M,low is on the kernel command line but no memory was reserved", "no capture kernel loaded"},
		},
		{
			name: "disabled and locked down",
			files: map[string]string{
				"sys/kernel/kexec_crash_size":         "134217728\n",
				"sys/kernel/kexec_crash_loaded":       "0\n",
				"sys/kernel/security/lockdown":        "none [integrity] confidentiality\n",
				"proc/cmdline":                        `"crashkernel=128M" -- crashkernel=1G`,
				"proc/sys/kernel/kexec_load_disabled": "1\n",
			},
			want:     Status{Supported: true, CrashSize: 128 << 20, Crashkernel: []string{"128M"}, Lockdown: "integrity", KexecLoadDisabled: true},
			problems: []string{"kexec_load_disabled is set"},
		},
		{
			name: "no crash dump support",
			files: map[string]string{
				"sys/kernel/mm/x": "",
				"proc/cmdline":    "console=ttyS0\n",
			},
			want:     Status{},
			problems: []string{"no crash dump support"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fixture.Tree(t, tt.files)
			s, err := ReadStatus(filepath.Join(root, "sys"), filepath.Join(root, "proc"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, tt.want) {
				t.Errorf("got  %+v\nwant %+v", s, tt.want)
			}
			if s.Ready() != tt.ready {
				t.Errorf("Ready() = %v", s.Ready())
			}
			p := s.Problems()
			if len(p) != len(tt.problems) {
				t.Fatalf("Problems() = %q, want %d", p, len(tt.problems))
			}
			for i := range p {
				if !strings.Contains(p[i], tt.problems[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, p[i], tt.problems[i])
				}
			}
		})
	}
}

func TestReadStatusErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no sysfs", map[string]string{"proc/cmdline": "x"}, "sysfs mounted"},
		{"bad size", map[string]string{"sys/kernel/kexec_crash_size": "lots\n", "proc/cmdline": ""}, "kexec_crash_size"},
		{"negative size", map[string]string{"sys/kernel/kexec_crash_size": "-1\n", "proc/cmdline": ""}, "kexec_crash_size"},
		{"bad loaded", map[string]string{"sys/kernel/kexec_crash_size": "0", "sys/kernel/kexec_crash_loaded": "yes", "proc/cmdline": ""}, "kexec_crash_loaded"},
		{"no loaded", map[string]string{"sys/kernel/kexec_crash_size": "0", "proc/cmdline": ""}, ""},
		{"no cmdline", map[string]string{"sys/kernel/kexec_crash_size": "0", "sys/kernel/kexec_crash_loaded": "0"}, "command line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fixture.Tree(t, tt.files)
			_, err := ReadStatus(filepath.Join(root, "sys"), filepath.Join(root, "proc"))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParseLockdown(t *testing.T) {
	for in, want := range map[string]string{
		"[none] integrity confidentiality\n": "none",
		"none integrity [confidentiality]":   "confidentiality",
		"none integrity confidentiality":     "",
		"[]":                                 "",
		"":                                   "",
	} {
		if got := parseLockdown(in); got != want {
			t.Errorf("parseLockdown(%q) = %q, want %q", in, got, want)
		}
	}
}
