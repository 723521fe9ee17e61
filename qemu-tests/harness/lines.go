package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

// Line is a kernel line the tests crash and how scripts/fetch-kernel gets
// it.
type Line struct {
	// Name is what fetch-kernel takes: a line (6.1, 6.19) or "latest".
	Name string
	// Dbg: the line has a -dbg package; a test that asks for the debug
	// vmlinux fails without it (other lines get it when there is one).
	Dbg bool
	// PoolFallback: the archive's index lists the kernel but not all of
	// its packages; the rest come from the pool, unverified (see
	// fetch-kernel --pool-fallback).
	PoolFallback bool
	// Need are the dump readers that must read this line's dumps: the
	// tests fail when one does not. The others are tried, and the kernel
	// table says which could.
	Need []matrix.Reader
	// SameClasses are the makedumpfiles that must find the same page
	// classes at -d 31 as gokdump, and keep the same pages.
	SameClasses []matrix.Reader
}

// Matrix is the kernel matrix, oldest first: Debian 12's two lines, the
// newest line of trixie-backports whose packages are all in the archive's
// pool, and the newest kernel Debian serves. Every line gets the crash,
// filter and readers tests; a new line is one more entry here.
var Matrix = []Line{
	{Name: "6.1", Dbg: true, Need: matrix.Readers, SameClasses: []matrix.Reader{matrix.MDFOld, matrix.MDFNew}},
	// Debian 12's makedumpfile 1.7.2 misses user memory in transparent
	// huge pages from 6.12 on (Debian's kernels have THP always on).
	{Name: "6.12", Dbg: true, Need: []matrix.Reader{matrix.DrgnOld, matrix.DrgnNew, matrix.MDFOld, matrix.MDFNew, matrix.CrashNew},
		SameClasses: []matrix.Reader{matrix.MDFNew}},
	{Name: "6.19", Dbg: true, PoolFallback: true, Need: []matrix.Reader{matrix.DrgnNew, matrix.MDFNew, matrix.CrashNew},
		SameClasses: []matrix.Reader{matrix.MDFNew}},
	{Name: "latest", Dbg: true, Need: []matrix.Reader{matrix.DrgnNew, matrix.MDFNew, matrix.CrashNew}},
}

// Needs reports whether the line's dumps must be read by rd.
func (l Line) Needs(rd matrix.Reader) bool { return slices.Contains(l.Need, rd) }

// EnvLines, when set, replaces the matrix with the lines it names (space
// or comma separated, in order): to run a subset, or a line the matrix
// lacks (fetched with --dbg-optional).
const EnvLines = "GOKDUMP_LINES"

// Lines returns the matrix: Matrix, or the lines $GOKDUMP_LINES names.
func Lines() []Line {
	v := os.Getenv(EnvLines)
	if strings.TrimSpace(v) == "" {
		return Matrix
	}
	var out []Line
	for _, name := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, LineNamed(name))
	}
	return out
}

// LineNamed returns the matrix entry of a line name, or a Line of that
// name that takes the debug vmlinux when there is one and needs sid's
// readers only.
func LineNamed(name string) Line {
	if i := slices.IndexFunc(Matrix, func(l Line) bool { return l.Name == name }); i >= 0 {
		return Matrix[i]
	}
	return Line{Name: name, Need: []matrix.Reader{matrix.DrgnNew, matrix.MDFNew}}
}

// Oldest and Newest are the ends of the matrix, for tests that run on two
// lines only.
func Oldest() Line { l := Lines(); return l[0] }
func Newest() Line { l := Lines(); return l[len(l)-1] }

// fetchArgs are the arguments of scripts/fetch-kernel for the line.
func (l Line) fetchArgs(dbg bool) []string {
	args := []string{l.Name}
	switch {
	case dbg && l.Dbg:
		args = append(args, "--dbg")
	case dbg:
		args = append(args, "--dbg-optional")
	}
	if l.PoolFallback {
		args = append(args, "--pool-fallback")
	}
	return args
}

// Versions of the dump readers, for the kernel table.
var (
	versionsOnce sync.Once
	versions     map[matrix.Reader]string
	sidRoot      string
	sidErr       error
)

// ReaderVersions returns the versions of the dump readers: Debian's
// installed packages, and (building it when missing, about a minute) the
// sid tree's. The error is about the sid tree; the host's are "" when not
// installed.
func ReaderVersions(root string) (map[matrix.Reader]string, error) {
	versionsOnce.Do(func() {
		versions = map[matrix.Reader]string{}
		for rd, pkg := range map[matrix.Reader]string{matrix.DrgnOld: "python3-drgn",
			matrix.MDFOld: "makedumpfile", matrix.CrashOld: "crash"} {
			out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
			if err == nil {
				versions[rd] = upstream(string(out))
			}
		}
		kv, out, err := runKeyValues(exec.Command(filepath.Join(root, "scripts", "sid-root")))
		if err != nil || kv["ROOT"] == "" {
			sidErr = fmt.Errorf("scripts/sid-root: %v\n%s", err, out)
			return
		}
		sidRoot = kv["ROOT"]
		versions[matrix.DrgnNew] = kv["DRGN"]
		versions[matrix.MDFNew] = kv["MAKEDUMPFILE"]
		versions[matrix.CrashNew] = kv["CRASH"]
	})
	return versions, sidErr
}

// upstream returns the upstream part of a Debian version: 1:1.7.2-1 is
// 1.7.2, 0.0.22-1+b1 is 0.0.22.
func upstream(v string) string {
	v = strings.TrimSpace(v)
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	if i := strings.IndexAny(v, "+~"); i > 0 {
		v = v[:i]
	}
	return v
}

// SidCommand returns a command that runs args in the sid tree (scripts/
// sid-run), with each of binds (files or directories) at the same path
// inside. ReaderVersions must have succeeded.
func SidCommand(root string, binds []string, args ...string) *exec.Cmd {
	a := []string{"--root", sidRoot}
	for _, b := range binds {
		a = append(a, "--bind", b)
	}
	a = append(a, "--")
	return exec.Command(filepath.Join(root, "scripts", "sid-run"), append(a, args...)...)
}
