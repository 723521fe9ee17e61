package vmtest

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/qemu-tests/internal/vm"
)

// TestStage1Paths: for each directory (beside the program, the install
// prefix's lib/gokdump, /usr/lib/gokdump) the host's name first, then the
// architecture's subdirectory, as make and make install lay them out.
func TestStage1Paths(t *testing.T) {
	for _, tt := range []struct {
		exe, arch string
		want      []string
	}{
		{"/opt/gk/bin/gokdump", "arm64", []string{
			"/opt/gk/bin/gokdump-vmtest-init", "/opt/gk/bin/arm64/gokdump-vmtest-init",
			"/opt/gk/lib/gokdump/vmtest-init", "/opt/gk/lib/gokdump/arm64/vmtest-init",
			"/usr/lib/gokdump/vmtest-init", "/usr/lib/gokdump/arm64/vmtest-init"}},
		{"/opt/gk/bin/gokdump", "amd64", []string{
			"/opt/gk/bin/gokdump-vmtest-init", "/opt/gk/bin/amd64/gokdump-vmtest-init",
			"/opt/gk/lib/gokdump/vmtest-init", "/opt/gk/lib/gokdump/amd64/vmtest-init",
			"/usr/lib/gokdump/vmtest-init", "/usr/lib/gokdump/amd64/vmtest-init"}},
		{"", "arm64", []string{"/usr/lib/gokdump/vmtest-init", "/usr/lib/gokdump/arm64/vmtest-init"}},
	} {
		t.Run(tt.exe+"-"+tt.arch, func(t *testing.T) {
			got := Stage1Paths(tt.exe, tt.arch)
			for i := range got {
				got[i] = filepath.Clean(got[i])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Stage1Paths(%q, %q) =\n%q\nwant\n%q", tt.exe, tt.arch, got, tt.want)
			}
		})
	}
}

// tinyELF is an ELF executable header for machine m and nothing else:
// enough for builder.CheckInit.
func tinyELF(m elf.Machine) []byte {
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, h)
	return b.Bytes()
}

// TestFindStage1Installed: the installed stage-1 init of the kernel's
// architecture is found where make (bin/ and bin/<goarch>/) and make
// install (lib/gokdump/ and lib/gokdump/<goarch>/) put it; one of the
// other machine in the host's place is passed over, not taken.
func TestFindStage1Installed(t *testing.T) {
	amd, arm := tinyELF(elf.EM_X86_64), tinyELF(elf.EM_AARCH64)
	for _, tt := range []struct {
		name  string
		files map[string][]byte // under the prefix
		arch  string
		want  string // found, under the prefix
	}{
		{"bin host", map[string][]byte{"bin/gokdump-vmtest-init": amd, "bin/arm64/gokdump-vmtest-init": arm}, "amd64", "bin/gokdump-vmtest-init"},
		{"bin arm64", map[string][]byte{"bin/gokdump-vmtest-init": amd, "bin/arm64/gokdump-vmtest-init": arm}, "arm64", "bin/arm64/gokdump-vmtest-init"},
		{"bin an arm64 host", map[string][]byte{"bin/gokdump-vmtest-init": arm, "bin/amd64/gokdump-vmtest-init": amd}, "arm64", "bin/gokdump-vmtest-init"},
		{"lib arm64", map[string][]byte{"lib/gokdump/vmtest-init": amd, "lib/gokdump/arm64/vmtest-init": arm}, "arm64", "lib/gokdump/arm64/vmtest-init"},
		{"bin before lib", map[string][]byte{"bin/arm64/gokdump-vmtest-init": arm, "lib/gokdump/arm64/vmtest-init": arm}, "arm64", "bin/arm64/gokdump-vmtest-init"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := t.TempDir()
			for p, b := range tt.files {
				p = filepath.Join(prefix, p)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, b, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// src is no checkout: nothing could be compiled.
			path, how, err := findStage1(context.Background(), "", filepath.Join(prefix, "bin", "gokdump"), t.TempDir(), tt.arch, t.TempDir())
			want := filepath.Join(prefix, tt.want)
			if err != nil || path != want || how != want+" (installed)" {
				t.Errorf("findStage1: %q %q %v, want %s", path, how, err, want)
			}
		})
	}
	// Only the other machine's: an error naming where it looked and
	// what it passed over.
	prefix := t.TempDir()
	os.MkdirAll(filepath.Join(prefix, "bin"), 0o755)
	os.WriteFile(filepath.Join(prefix, "bin", "gokdump-vmtest-init"), amd, 0o755)
	_, _, err := findStage1(context.Background(), "", filepath.Join(prefix, "bin", "gokdump"), t.TempDir(), "arm64", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "arm64/gokdump-vmtest-init") || !strings.Contains(err.Error(), "want EM_AARCH64") {
		t.Errorf("findStage1 with an amd64 init only: %v", err)
	}
}

// TestLoaded: the system call and the capture command line come from
// the stage-1 init's line; none without it.
func TestLoaded(t *testing.T) {
	for _, tt := range []struct {
		line, syscall, cmdline string
	}{
		{"stage1: [  12.34] capture kernel loaded with kexec_load in 0.512s (crash size 134217728 bytes), cmdline: console=ttyAMA0 reset_devices nr_cpus=1",
			"kexec_load", "console=ttyAMA0 reset_devices nr_cpus=1"},
		{"stage1: [   3.10] capture kernel loaded with kexec_file_load in 0.080s (crash size 134217728 bytes), cmdline: console=ttyS0 irqpoll nr_cpus=1",
			"kexec_file_load", "console=ttyS0 irqpoll nr_cpus=1"},
		{"stage1: [   3.10] FAILED: load capture kernel: kexec: no crash kernel memory", "", ""},
	} {
		l := vmLog(tt.line)
		if s, c := loaded(l); s != tt.syscall || c != tt.cmdline {
			t.Errorf("%q: %q %q, want %q %q", tt.line, s, c, tt.syscall, tt.cmdline)
		}
	}
}

func vmLog(lines ...string) vm.Log {
	var l vm.Log
	for _, s := range lines {
		l = append(l, vm.Line{Text: s})
	}
	return l
}
