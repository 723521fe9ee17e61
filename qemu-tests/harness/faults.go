package harness

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Outcome is what the capture /init reported on the console through its
// machine-readable lines (README, "Output"), and when.
type Outcome struct {
	// Status is "saved", "INCOMPLETE" or "FAILED"; "" when no result
	// line came.
	Status string
	Path   string
	Bytes  int64
	Level  int
	Format string
	Reason string // INCOMPLETE and FAILED
	// Code is the result line's status=N: 0 saved, 3 incomplete, 1
	// failed (gokdump save's exit codes); -1 when the line has none.
	Code int
	// Leftovers are the dumps LEFTOVER lines named.
	Leftovers []string
	// Action is the final action the ACTION line named.
	Action string
	// CaptureStart is the capture init's first line; At the result
	// line's arrival, ActionAt the ACTION line's.
	CaptureStart, At, ActionAt time.Duration
	// Kernel is what the capture kernel printed last about its end:
	// "Power down", "Restarting system", "System halted" or "".
	Kernel string
}

var (
	savedLineRE      = regexp.MustCompile(`^gokdump: saved (\S+) bytes=(\d+) seconds=[0-9.]+ level=(\d+) format=(\S+)`)
	incompleteLineRE = regexp.MustCompile(`^gokdump: INCOMPLETE (\S+) bytes=(\d+) seconds=[0-9.]+ level=(\d+) format=(\S+): (.*)$`)
	failedLineRE     = regexp.MustCompile(`^gokdump: FAILED (.*)$`)
	leftoverLineRE   = regexp.MustCompile(`^gokdump: LEFTOVER (\S+) `)
	actionLineRE     = regexp.MustCompile(`^gokdump: ACTION (\S+)$`)
	statusCodeRE     = regexp.MustCompile(` status=(\d+)$`)
	captureLineRE    = regexp.MustCompile(`^gokdump: \[`)
	kernelEndRE      = regexp.MustCompile(`reboot: (Power down|Restarting system|System halted)`)
)

// Outcome parses the capture's result lines from the log. Only the
// capture kernel's part counts: lines after the first capture line.
func (r *Run) Outcome() Outcome {
	o := Outcome{Code: -1}
	capture := false
	for _, l := range r.Log {
		text := l.Text
		// A progress line rewritten with \r arrives as one line: its last
		// segment is what a terminal would show.
		if i := strings.LastIndexByte(text, '\r'); i >= 0 {
			text = text[i+1:]
		}
		if !capture && captureLineRE.MatchString(text) {
			capture, o.CaptureStart = true, l.At
		}
		if !capture {
			continue
		}
		// Every result line ends with its status code.
		code := -1
		if m := statusCodeRE.FindStringSubmatchIndex(text); m != nil && !leftoverLineRE.MatchString(text) {
			code, _ = strconv.Atoi(text[m[2]:m[3]])
			text = text[:m[0]]
		}
		if m := savedLineRE.FindStringSubmatch(text); m != nil {
			o.Status, o.Path, o.Format, o.At, o.Code = "saved", m[1], m[4], l.At, code
			o.Bytes, _ = strconv.ParseInt(m[2], 10, 64)
			o.Level, _ = strconv.Atoi(m[3])
		} else if m := incompleteLineRE.FindStringSubmatch(text); m != nil {
			o.Status, o.Path, o.Format, o.Reason, o.At, o.Code = "INCOMPLETE", m[1], m[4], m[5], l.At, code
			o.Bytes, _ = strconv.ParseInt(m[2], 10, 64)
			o.Level, _ = strconv.Atoi(m[3])
		} else if m := failedLineRE.FindStringSubmatch(text); m != nil {
			o.Status, o.Reason, o.At, o.Code = "FAILED", m[1], l.At, code
		} else if m := leftoverLineRE.FindStringSubmatch(text); m != nil {
			o.Leftovers = append(o.Leftovers, m[1])
		} else if m := actionLineRE.FindStringSubmatch(text); m != nil {
			o.Action, o.ActionAt = m[1], l.At
		} else if m := kernelEndRE.FindStringSubmatch(text); m != nil {
			o.Kernel = m[1]
		}
	}
	return o
}

// String is the outcome in one line, for test logs.
func (o Outcome) String() string {
	s := o.Status
	if s == "" {
		s = "no result line"
	}
	if o.Path != "" {
		s += " " + o.Path
	}
	if o.Status == "saved" || o.Status == "INCOMPLETE" {
		s += fmt.Sprintf(" (%d bytes, level %d, %s)", o.Bytes, o.Level, o.Format)
	}
	if o.Reason != "" {
		s += ": " + o.Reason
	}
	if o.Code >= 0 {
		s += fmt.Sprintf(" (status=%d)", o.Code)
	}
	if len(o.Leftovers) > 0 {
		s += fmt.Sprintf("; leftovers %v", o.Leftovers)
	}
	return s + fmt.Sprintf("; action %q at %.1fs (capture from %.1fs), kernel %q",
		o.Action, o.ActionAt.Seconds(), o.CaptureStart.Seconds(), o.Kernel)
}

// ExtractFrom copies a file out of an ext4 image with debugfs (no root
// needed) into dst, created 0600 (debugfs would leave it to the umask):
// a dump holds the guest's secrets.
func ExtractFrom(img, path, dst string) error {
	if f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		return err
	} else {
		f.Close()
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return err
	}
	cmd := exec.Command("debugfs", "-R", fmt.Sprintf("dump %s %s", path, dst), img)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs dump %s: %v\n%s", path, err, b)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() == 0 {
		return fmt.Errorf("debugfs could not extract %s from %s (%v)", path, img, err)
	}
	return nil
}

// Entry is a directory entry of an ext4 image.
type Entry struct {
	Mode uint32
	Size int64
}

// LsFrom lists a directory of an ext4 image with debugfs: name → entry.
func LsFrom(img, dir string) (map[string]Entry, error) {
	b, err := exec.Command("debugfs", "-R", "ls -p "+dir, img).Output()
	if err != nil {
		return nil, fmt.Errorf("debugfs ls %s: %v", dir, err)
	}
	// Lines: /inode/mode/uid/gid/name/size/
	out := map[string]Entry{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." {
			continue
		}
		var e Entry
		fmt.Sscanf(f[2], "%o", &e.Mode)
		e.Size, _ = strconv.ParseInt(f[6], 10, 64)
		out[f[5]] = e
	}
	return out, nil
}
