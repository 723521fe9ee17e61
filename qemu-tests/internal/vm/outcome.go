package vm

import (
	"fmt"
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

// ParseOutcome parses the capture's result lines from a log. Only the
// capture kernel's part counts: lines after the first capture line.
func ParseOutcome(log Log) Outcome {
	o := Outcome{Code: -1}
	capture := false
	for _, l := range log {
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

// Phase is a named point of a crash cycle, as the console shows it.
type Phase struct {
	Name string
	At   time.Duration // since QEMU started
}

// Names of the points of a crash cycle, in order.
const (
	PhaseStage1  = "stage1 init"           // the first kernel ran the stage-1 init
	PhaseLoaded  = "capture kernel loaded" // through gokdump's loader
	PhaseCrash   = "crash"                 // the stage-1 init crashes the kernel now
	PhaseCapture = "capture init"          // the capture kernel ran gokdump's init
	PhaseSaved   = "dump saved"            // the capture's result line
	PhaseExit    = "qemu exit"
)

var phaseMarks = []struct {
	name string
	re   *regexp.Regexp
}{
	{PhaseStage1, regexp.MustCompile(`stage1: \[.*\] start`)},
	{PhaseLoaded, regexp.MustCompile(`capture kernel loaded`)},
	{PhaseCrash, regexp.MustCompile(`stage1: \[.*\] crashing now`)},
	{PhaseCapture, regexp.MustCompile(`gokdump: \[`)},
	{PhaseSaved, regexp.MustCompile(`gokdump: saved`)},
}

// Phases extracts the points of a crash cycle the log reached, in order,
// ending with QEMU's exit at elapsed.
func Phases(log Log, elapsed time.Duration) []Phase {
	var out []Phase
	for _, m := range phaseMarks {
		if l, _, ok := log.Find(m.re); ok {
			out = append(out, Phase{m.name, l.At})
		}
	}
	return append(out, Phase{PhaseExit, elapsed})
}

// PhaseReport formats Phases with the time each took.
func PhaseReport(log Log, elapsed time.Duration) string {
	var b strings.Builder
	prev := time.Duration(0)
	var crash time.Duration
	for _, p := range Phases(log, elapsed) {
		fmt.Fprintf(&b, "  %-22s at %6.2fs (+%5.2fs)\n", p.Name, p.At.Seconds(), (p.At - prev).Seconds())
		prev = p.At
		if p.Name == PhaseCrash {
			crash = p.At
		}
	}
	if crash > 0 {
		fmt.Fprintf(&b, "  panic → QEMU exit: %.2fs\n", (elapsed - crash).Seconds())
	}
	return b.String()
}

// DiedBeforeStage1 reports whether the first kernel panicked before the
// stage-1 init printed its first line, and the panic line. TCG does this
// now and then (an IRETQ in text_poke_early faulting with garbage flags,
// seen on 6.12): nothing of the cycle ran, and booting again is fair.
func DiedBeforeStage1(log Log) (string, bool) {
	for _, l := range log {
		if strings.HasPrefix(l.Text, "stage1: ") {
			return "", false
		}
		if strings.Contains(l.Text, "Kernel panic - not syncing") {
			return strings.TrimSpace(l.Text), true
		}
	}
	return "", false
}
