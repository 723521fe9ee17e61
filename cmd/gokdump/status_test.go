package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/kexec"
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

// TestStatusReservation: status on fake trees of a kernel with a CMA
// part (as the QEMU CMA test's guest shows it), a kernel that ignores
// ,cma, and one locked down with hotplug updates off; JSON carries the
// same facts.
func TestStatusReservation(t *testing.T) {
	cmaPages := strconv.Itoa((128 << 20) / os.Getpagesize())
	common := map[string]string{
		"sys/kernel/kexec_crash_size":   "83886080\n",
		"sys/kernel/kexec_crash_loaded": "1\n",
		"proc/meminfo":                  "MemTotal:         388488 kB\nCmaTotal:         131072 kB\n",
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
		json  map[string]any
	}{
		{
			"cma",
			map[string]string{
				"proc/cmdline":                              "crashkernel=80M crashkernel=128M,cma\n",
				"proc/sys/kernel/osrelease":                 "7.3.4+deb13-cloud-amd64\n",
				"sys/kernel/mm/cma/crashkernel/total_pages": cmaPages + "\n",
				"sys/kernel/crash_elfcorehdr_size":          "917616\n",
				"sys/devices/system/cpu/crash_hotplug":      "1\n",
				"sys/devices/system/memory/crash_hotplug":   "1\n",
			},
			[]string{
				"reserved:       80.0 MiB (83886080 bytes)",
				"cma part:       128.0 MiB reserved as CMA of 128.0 MiB asked",
				"capture memory: 208.0 MiB",
				"elfcorehdr:     917616 bytes",
				"crash hotplug:  cpu yes, memory yes",
				"note:           what the running system keeps in the CMA part",
				"verdict:        a crash now would be caught",
			},
			map[string]any{"cma_reserved": float64(128 << 20), "cma_requested": float64(128 << 20), "crash_hotplug_cpu": true, "elfcorehdr_size": float64(917616)},
		},
		{
			"cma ignored",
			map[string]string{
				"proc/cmdline":              "crashkernel=80M crashkernel=128M,cma\n",
				"proc/sys/kernel/osrelease": "6.12.118+deb12-cloud-amd64\n",
			},
			[]string{"cma part:       none reserved (128.0 MiB asked with crashkernel=…,cma)", "note:           crashkernel=…,cma asks for 128 MiB, but this kernel (6.12.118+deb12-cloud-amd64) cannot reserve it"},
			map[string]any{"cma_requested": float64(128 << 20), "cma_capable": false},
		},
		{
			"lockdown, hotplug off",
			map[string]string{
				"proc/cmdline":                         "crashkernel=80M\n",
				"sys/kernel/security/lockdown":         "none [integrity] confidentiality\n",
				"sys/devices/system/cpu/crash_hotplug": "0\n",
			},
			[]string{"lockdown:       integrity", "crash hotplug:  cpu no, memory unknown",
				"note:           CPU hotplug does not update the loaded capture's ELF headers",
				"note:           kernel lockdown (integrity): kexec_load of any kernel is refused", "an unsigned one"},
			map[string]any{"lockdown": "integrity", "crash_hotplug_cpu": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(common)
			maps.Copy(files, tt.files)
			kexecFixture(t, files)
			var out bytes.Buffer
			if err := runStatus(&out, false, &configFlag{path: statusConfigPath}); err != nil {
				t.Fatalf("%v:\n%s", err, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tt.name != "cma" && strings.Contains(out.String(), "capture memory:") {
				t.Errorf("a capture memory line without a CMA part:\n%s", out.String())
			}
			out.Reset()
			if err := runStatus(&out, true, &configFlag{path: statusConfigPath}); err != nil {
				t.Fatal(err)
			}
			var j map[string]any
			if err := json.Unmarshal(out.Bytes(), &j); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.json {
				if j[k] != v {
					t.Errorf("json %s = %#v, want %#v", k, j[k], v)
				}
			}
			if n, ok := j["notes"].([]any); !ok || len(n) == 0 {
				t.Errorf("json notes %#v", j["notes"])
			}
		})
	}
}

// TestStatusStaleImage: the loaded image is older than the config (or the
// kernel) it was built from: status says rebuild.
func TestStatusStaleImage(t *testing.T) {
	root := kexecFixture(t, map[string]string{
		"sys/kernel/kexec_crash_size":   "134217728",
		"sys/kernel/kexec_crash_loaded": "1",
		"proc/cmdline":                  "crashkernel=128M",
	})
	kernel, initrd := filepath.Join(root, "vmlinuz"), filepath.Join(root, "capture.img")
	os.WriteFile(kernel, []byte("k"), 0o600)
	os.WriteFile(initrd, []byte("i"), 0o600)
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{kernel, initrd} {
		os.Chtimes(p, old, old)
	}
	fi, _ := os.Stat(initrd)
	write := func() {
		b, _ := json.Marshal(loadState{Kernel: kernel, Initrd: initrd, InitrdTime: fi.ModTime().UTC(), LoadedAt: old, Syscall: kexec.SyscallClassic})
		os.MkdirAll(filepath.Dir(loadStatePath), 0o700)
		os.WriteFile(loadStatePath, b, 0o600)
	}
	write()
	os.Chtimes(statusConfigPath, old.Add(-time.Minute), old.Add(-time.Minute))
	var out bytes.Buffer
	runStatus(&out, false, &configFlag{path: statusConfigPath})
	if strings.Contains(out.String(), "is older than") {
		t.Errorf("an image newer than its inputs is called stale:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "loaded image:   "+initrd+" (loaded "+old.Format(time.RFC3339)+" with kexec_load)") {
		t.Errorf("status does not say which system call loaded the image:\n%s", out.String())
	}
	// The config changes after the image was built.
	os.Chtimes(statusConfigPath, time.Now(), time.Now())
	out.Reset()
	runStatus(&out, false, &configFlag{path: statusConfigPath})
	if !strings.Contains(out.String(), "warning:        "+initrd+" is older than the kernel or "+statusConfigPath+": run gokdump rebuild") {
		t.Errorf("a config newer than the loaded image:\n%s", out.String())
	}
	// So does the kernel (a new package of the same release).
	os.Chtimes(statusConfigPath, old.Add(-time.Minute), old.Add(-time.Minute))
	os.Chtimes(kernel, time.Now(), time.Now())
	out.Reset()
	runStatus(&out, false, &configFlag{path: statusConfigPath})
	if !strings.Contains(out.String(), initrd+" is older than the kernel") {
		t.Errorf("a kernel newer than the loaded image:\n%s", out.String())
	}
}

// TestStatusCaptureCPUs: status shows the loaded capture kernel's CPUs,
// and says to load again when capture_cpus now gives another count.
func TestStatusCaptureCPUs(t *testing.T) {
	root := kexecFixture(t, map[string]string{
		"sys/kernel/kexec_crash_size":   "134217728",
		"sys/kernel/kexec_crash_loaded": "1",
		"proc/cmdline":                  "crashkernel=128M",
		"proc/meminfo":                  "MemTotal:       65011712 kB\n", // 62 GiB: "auto" is 2
	})
	initrd := filepath.Join(root, "capture.img")
	os.WriteFile(initrd, []byte("i"), 0o600)
	fi, _ := os.Stat(initrd)
	b, _ := json.Marshal(loadState{Kernel: "/nonexistent", Initrd: initrd, InitrdTime: fi.ModTime().UTC(), LoadedAt: time.Now(),
		Cmdline: "console=ttyS0 irqpoll nr_cpus=2 disable_cpu_apicid=0 reset_devices"})
	os.MkdirAll(filepath.Dir(loadStatePath), 0o700)
	os.WriteFile(loadStatePath, b, 0o600)

	var out bytes.Buffer
	runStatus(&out, false, &configFlag{path: statusConfigPath})
	if !strings.Contains(out.String(), "capture CPUs:   2 (nr_cpus= of the loaded command line") || strings.Contains(out.String(), "run gokdump load") {
		t.Errorf("loaded as capture_cpus says:\n%s", out.String())
	}
	os.WriteFile(statusConfigPath, []byte("target = \"LABEL=DUMPS\"\ncapture_cpus = 4\n"), 0o600)
	out.Reset()
	runStatus(&out, false, &configFlag{path: statusConfigPath})
	if !strings.Contains(out.String(), "the capture kernel is loaded with nr_cpus=2, but capture_cpus = 4, from "+statusConfigPath+":2 gives 4 now: run gokdump load") {
		t.Errorf("capture_cpus changed since the load:\n%s", out.String())
	}
	out.Reset()
	runStatus(&out, true, &configFlag{path: statusConfigPath})
	if !strings.Contains(out.String(), `"capture_cpus": 2`) {
		t.Errorf("status --json lacks capture_cpus:\n%s", out.String())
	}
}
