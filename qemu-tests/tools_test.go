package qemutests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/guest"
	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

// The dump readers of the kernel table: Debian 12's drgn, makedumpfile and
// crash on the host, and sid's newer ones in the tree of scripts/sid-root
// (through scripts/sid-run, which sees only the paths bound into it).

// readerCmd returns the command running args with reader rd: on the host,
// or in the sid tree with binds visible. Sid's readers call Missing when
// the tree cannot be built.
func readerCmd(t *testing.T, rd matrix.Reader, binds []string, args ...string) *exec.Cmd {
	t.Helper()
	if isSid(rd) {
		if _, err := harness.ReaderVersions(repoRoot); err != nil {
			fixture.Missing(t, "no sid tree for the newer readers: %v", err)
		}
		return harness.SidCommand(repoRoot, binds, args...)
	}
	switch rd {
	case matrix.MDFOld:
		args[0] = fixture.NeedTool(t, "makedumpfile")
	case matrix.CrashOld:
		args[0] = fixture.NeedTool(t, "crash")
	case matrix.DrgnOld:
		fixture.NeedDrgn(t)
	}
	return exec.Command(args[0], args[1:]...)
}

// resolved returns path with its symbolic links resolved: scripts/sid-run
// binds a path where it resolves to, so that is the name that works inside
// (a cache reached through a link, as in a git worktree).
func resolved(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func isSid(rd matrix.Reader) bool {
	return rd == matrix.DrgnNew || rd == matrix.MDFNew || rd == matrix.CrashNew
}

// output runs cmd with a time limit and returns what it printed.
func output(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return b.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return b.Bytes(), fmt.Errorf("still running after %v: killed", limit)
	}
}

// verdicts collects what the readers did with a run's dumps, for the
// kernel table, and fails the test where the line needs a reader that did
// not read it.
type verdicts struct {
	t    *testing.T
	line harness.Line
	rec  *matrix.Record
}

func newVerdicts(t *testing.T, r *harness.Run, rec *matrix.Record) *verdicts {
	if rec.Readers == nil {
		rec.Readers, rec.Notes = map[matrix.Reader]string{}, map[matrix.Reader]string{}
	}
	return &verdicts{t: t, line: harness.LineNamed(r.Spec.Line), rec: rec}
}

// set records rd's result on what: ok, or not with why.
func (v *verdicts) set(rd matrix.Reader, what string, ok bool, why string) bool {
	v.t.Helper()
	switch {
	case ok:
		if v.rec.Readers[rd] == "" || v.rec.Readers[rd] == matrix.CannotRead {
			v.rec.Readers[rd] = matrix.OK
		}
	case v.line.Needs(rd):
		v.t.Errorf("%s (needed on %s) on %s: %s", rd, v.line.Name, what, why)
		v.rec.Readers[rd] = matrix.Fail
		v.note(rd, what+": "+firstLine(why))
	default:
		v.t.Logf("%s cannot read %s (%s): %s", rd, what, v.line.Name, why)
		if v.rec.Readers[rd] != matrix.Fail {
			v.rec.Readers[rd] = matrix.CannotRead
		}
		v.note(rd, what+": "+firstLine(why))
	}
	return ok
}

func (v *verdicts) note(rd matrix.Reader, s string) {
	if !strings.Contains(v.rec.Notes[rd], s) {
		v.rec.Notes[rd] = strings.TrimPrefix(v.rec.Notes[rd]+"; "+s, "; ")
	}
}

// firstLine shortens a reader's complaint for the table's notes.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 160 {
		s = s[:160] + " …"
	}
	return s
}

// drgnRead opens a dump with drgn rd and the debug vmlinux and checks that
// it reads init_task, the release, the task list and, in the kernel log,
// the run's kmsg marker and the panic. Without a vmlinux it falls back to
// drgnPhys. It returns whether drgn read all that, and if not why.
func drgnRead(t *testing.T, rd matrix.Reader, r *harness.Run, file string) (bool, string) {
	t.Helper()
	if r.Kernel.VMLinux == "" {
		return drgnPhys(t, rd, r, file)
	}
	file, vmlinux := resolved(t, file), resolved(t, r.Kernel.VMLinux)
	testdata := resolved(t, filepath.Join(repoRoot, "qemu-tests", "testdata"))
	out, err := output(readerCmd(t, rd, []string{filepath.Dir(file), vmlinux, testdata},
		"/usr/bin/python3", "-m", "drgn", "-q", "-c", file, "-s", vmlinux,
		filepath.Join(testdata, "drgn_check.py"), guest.Marker("KMSG", r.ID, 0)), 5*time.Minute)
	if err != nil {
		return false, failed("drgn", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	tasks, _ := strconv.Atoi(got["tasks"])
	switch {
	case got["comm"] != "swapper/0":
		return false, fmt.Sprintf("init_task.comm = %q\n%s", got["comm"], out)
	case got["release"] != r.Kernel.KVer:
		return false, fmt.Sprintf("release %q, want %q", got["release"], r.Kernel.KVer)
	case tasks < 10:
		return false, fmt.Sprintf("%d tasks\n%s", tasks, out)
	case got["marker"] != "True" || got["panic"] != "True":
		return false, fmt.Sprintf("the kernel log lacks the kmsg marker or the panic\n%s", out)
	}
	return true, ""
}

// drgnPhys has drgn rd open a dump without debug symbols and read the
// run's kmsg marker at the physical address where our reader found it:
// the check there is when a line has no -dbg package.
func drgnPhys(t *testing.T, rd matrix.Reader, r *harness.Run, file string) (bool, string) {
	t.Helper()
	marker := guest.Marker("KMSG", r.ID, 0)
	phys, err := harness.FindMarker(file, marker)
	if err != nil {
		t.Fatal(err)
	}
	file = resolved(t, file)
	testdata := resolved(t, filepath.Join(repoRoot, "qemu-tests", "testdata"))
	out, err := output(readerCmd(t, rd, []string{filepath.Dir(file), testdata},
		"/usr/bin/python3", filepath.Join(testdata, "drgn_phys.py"), file, fmt.Sprintf("%#x", phys), marker), 2*time.Minute)
	if err != nil {
		return false, failed("drgn_phys.py", err, out)
	}
	if !bytes.Contains(out, []byte("phys True")) {
		return false, fmt.Sprintf("the marker is not at %#x for drgn:\n%s", phys, out)
	}
	return true, ""
}

// mdfDmesg runs makedumpfile rd --dump-dmesg on a dump and returns the
// log without caller ids.
func mdfDmesg(t *testing.T, rd matrix.Reader, file string) ([]byte, error) {
	t.Helper()
	file = resolved(t, file)
	out := fmt.Sprintf("%s.%s.dmesg", file, rd)
	defer os.Remove(out)
	b, err := output(readerCmd(t, rd, []string{filepath.Dir(file)}, "makedumpfile", "--dump-dmesg", file, out), 5*time.Minute)
	if err != nil {
		return nil, errors.New(failed("makedumpfile --dump-dmesg", err, b))
	}
	b, err = os.ReadFile(out)
	return withoutCallerID(b), err
}

// callerID is the caller id makedumpfile 1.7.8 prints after each record's
// time ("[    0.000000] [      T0] Linux version …"): the kernel itself
// prints it only with CONFIG_PRINTK_CALLER, which Debian does not set, and
// gokdump dmesg, like makedumpfile 1.7.2, does not.
var callerID = regexp.MustCompile(`(?m)^(\[ *[0-9]+\.[0-9]+\]) \[ *[TC][0-9]+\]`)

// withoutCallerID removes the caller ids from makedumpfile's log, and as
// much of the indent of a record's further lines, which makedumpfile
// aligns under the text after the caller id.
func withoutCallerID(b []byte) []byte {
	var out []byte
	cut := 0
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if m := callerID.FindSubmatchIndex(line); m != nil {
			cut = m[1] - m[3]
			line = append(line[:m[3]:m[3]], line[m[1]:]...)
		} else if len(line) > 0 && line[0] == '[' {
			cut = 0
		} else if cut > 0 && len(line) >= cut && len(bytes.TrimLeft(line[:cut], " ")) == 0 {
			line = line[cut:]
		}
		out = append(out, line...)
	}
	return out
}

// mdfRun runs makedumpfile rd with args on files in dir.
func mdfRun(t *testing.T, rd matrix.Reader, dir string, args ...string) ([]byte, error) {
	t.Helper()
	dir = resolved(t, dir)
	b, err := output(readerCmd(t, rd, []string{dir}, append([]string{"makedumpfile"}, args...)...), 5*time.Minute)
	if err != nil {
		return b, errors.New(failed("makedumpfile "+strings.Join(args, " "), err, b))
	}
	return b, nil
}

// crashRead runs crash rd on a dump, as README shows it: `sys` must name
// the release and the panic, `log` hold the run's kmsg marker.
func crashRead(t *testing.T, rd matrix.Reader, r *harness.Run, file string) (bool, string) {
	t.Helper()
	file, vmlinux := resolved(t, file), resolved(t, r.Kernel.VMLinux)
	cmd := readerCmd(t, rd, []string{filepath.Dir(file), vmlinux}, "crash", "-s", vmlinux, file)
	cmd.Stdin = strings.NewReader("sys\nlog\nq\n")
	out, err := output(cmd, 5*time.Minute)
	if err != nil && len(bytes.TrimSpace(out)) == 0 {
		// crash -s dies without a word; -d 1 says why.
		cmd := readerCmd(t, rd, []string{filepath.Dir(file), vmlinux}, "crash", "-d", "1", "-s", vmlinux, file)
		cmd.Stdin = strings.NewReader("q\n")
		dbg, _ := output(cmd, 5*time.Minute)
		var said []string
		for _, l := range strings.Split(string(dbg), "\n") {
			if strings.HasPrefix(l, "crash: ") && strings.Contains(l, "error") {
				said = append(said, l)
			}
		}
		out = []byte(strings.Join(said, "\n"))
	}
	if err != nil {
		return false, failed("crash", err, out)
	}
	for _, s := range []string{"RELEASE: " + r.Kernel.KVer, "PANIC: \"Kernel panic - not syncing: sysrq triggered crash",
		guest.Marker("KMSG", r.ID, 0)} {
		if !bytes.Contains(out, []byte(s)) {
			return false, fmt.Sprintf("crash printed no %q:\n%s", s, lastLines(out, 5))
		}
	}
	return true, ""
}

// failed describes a reader that failed: its error and the gist of what
// it said first (for the kernel table's notes), then the last lines of its
// output.
func failed(what string, err error, out []byte) string {
	return fmt.Sprintf("%s: %v: %s\n%s", what, err, gist(out), lastLines(out, 15))
}

// gist is the line of a reader's output that says what went wrong: crash's
// first complaint, an error, or else the last line (a Python exception).
func gist(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "crash: ") || strings.Contains(strings.ToLower(l), "error") {
			return strings.TrimSpace(l)
		}
	}
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return "(no output)"
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestWithoutCallerID: caller ids go, and so does their width from the
// indent of a record's further lines (a 6.12 guest's "Unstable clock
// detected" record has three).
func TestWithoutCallerID(t *testing.T) {
	in := "[    5.898786] [      T1] Unstable clock detected, switching\n" +
		"                          If you want to keep using the local clock, then add:\n" +
		"                            \"trace_clock=local\"\n" +
		"[    5.998837] [      T1] Freeing unused decrypted memory: 2028K\n" +
		"[    6.000000] no caller id\n" +
		"                          kept as it is\n"
	want := "[    5.898786] Unstable clock detected, switching\n" +
		"               If you want to keep using the local clock, then add:\n" +
		"                 \"trace_clock=local\"\n" +
		"[    5.998837] Freeing unused decrypted memory: 2028K\n" +
		"[    6.000000] no caller id\n" +
		"                          kept as it is\n"
	if got := string(withoutCallerID([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
