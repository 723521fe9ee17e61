package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestStatusCommand(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		ready bool
		want  []string
	}{
		{
			"ready",
			map[string]string{
				"sys/kernel/kexec_crash_size":   "134217728\n",
				"sys/kernel/kexec_crash_loaded": "1\n",
				"sys/kernel/security/lockdown":  "[none] integrity confidentiality\n",
				"proc/cmdline":                  "console=ttyS0 crashkernel=128M\n",
			},
			true,
			[]string{"reserved:       128.0 MiB (134217728 bytes)", "boot parameter: crashkernel=128M", "capture kernel: loaded", "lockdown:       none", "a crash now would be caught"},
		},
		{
			"not loaded",
			map[string]string{
				"sys/kernel/kexec_crash_size":         "134217728\n",
				"sys/kernel/kexec_crash_loaded":       "0\n",
				"proc/cmdline":                        "crashkernel=128M\n",
				"proc/sys/kernel/kexec_load_disabled": "1\n",
			},
			false,
			[]string{"capture kernel: not loaded", "kexec:          disabled until reboot", "problem:        no capture kernel loaded"},
		},
		{
			"nothing reserved",
			map[string]string{
				"sys/kernel/kexec_crash_size":   "0\n",
				"sys/kernel/kexec_crash_loaded": "0\n",
				"proc/cmdline":                  "root=/dev/vda\n",
			},
			false,
			[]string{"reserved:       none", "boot parameter: not on the kernel command line", "problem:        no memory reserved"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kexecFixture(t, tt.files)
			var out bytes.Buffer
			err := runStatus(&out, false, &configFlag{path: statusConfigPath})
			if tt.ready != (err == nil) || (err != nil && !errors.Is(err, errNotCaught)) {
				t.Fatalf("runStatus() = %v, ready %v", err, tt.ready)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}

			out.Reset()
			err = runStatus(&out, true, &configFlag{path: statusConfigPath})
			if tt.ready != (err == nil) {
				t.Fatalf("runStatus(json) = %v", err)
			}
			var j map[string]any
			if err := json.Unmarshal(out.Bytes(), &j); err != nil {
				t.Fatalf("%v:\n%s", err, out.String())
			}
			if j["ready"] != tt.ready || j["supported"] != true {
				t.Errorf("json %v", j)
			}
			if p, ok := j["problems"].([]any); !ok || (len(p) == 0) != tt.ready {
				t.Errorf("problems %#v", j["problems"])
			}
		})
	}
}

func TestStatusJSONFields(t *testing.T) {
	kexecFixture(t, map[string]string{
		"sys/kernel/kexec_crash_size":   "268435456",
		"sys/kernel/kexec_crash_loaded": "1",
		"proc/cmdline":                  "crashkernel=256M,high crashkernel=72M,low",
	})
	var out bytes.Buffer
	if err := runStatus(&out, true, &configFlag{path: statusConfigPath}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		CrashSize   uint64   `json:"crash_size"`
		Loaded      bool     `json:"loaded"`
		Crashkernel []string `json:"crashkernel"`
		Ready       bool     `json:"ready"`
		Problems    []string `json:"problems"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.CrashSize != 256<<20 || !got.Loaded || !got.Ready || got.Problems == nil || len(got.Problems) != 0 ||
		strings.Join(got.Crashkernel, " ") != "256M,high 72M,low" {
		t.Errorf("got %+v from\n%s", got, out.String())
	}
}

func TestStatusErrors(t *testing.T) {
	kexecFixture(t, map[string]string{"proc/cmdline": ""})
	if err := runStatus(io.Discard, false, &configFlag{path: statusConfigPath}); err == nil || errors.Is(err, errNotCaught) || !strings.Contains(err.Error(), "sysfs") {
		t.Errorf("no sysfs: %v", err)
	}
	var stderr bytes.Buffer
	if rc := run([]string{"status", "extra"}, io.Discard, &stderr); rc != 2 || !strings.Contains(stderr.String(), "takes no arguments") {
		t.Errorf("status extra: rc %d, stderr %q", rc, stderr.String())
	}
}

// A config named on the command line must exist; the default one may not.
func TestStatusExplicitConfig(t *testing.T) {
	kexecFixture(t, map[string]string{
		"sys/kernel/kexec_crash_size":   "134217728",
		"sys/kernel/kexec_crash_loaded": "1",
		"proc/cmdline":                  "crashkernel=128M",
	})
	var out bytes.Buffer
	missing := statusConfigPath + ".typo"
	err := runStatus(&out, false, &configFlag{path: missing, set: true})
	if !errors.Is(err, errNotCaught) || !strings.Contains(out.String(), "problem:        config: open "+missing+": no such file") {
		t.Errorf("err %v:\n%s", err, out.String())
	}
	out.Reset()
	err = runStatus(&out, false, &configFlag{path: missing})
	if !errors.Is(err, errNotCaught) || !strings.Contains(out.String(), "problem:        there is no config file "+missing+", so no dump target") ||
		!strings.Contains(out.String(), "config:         "+missing+" (does not exist") {
		t.Errorf("missing default: err %v:\n%s", err, out.String())
	}
}
