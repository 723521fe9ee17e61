package printk

import "strings"

// panicMarkers begin the lines the kernel prints when it dies or is about
// to: panic(), BUG() and oopses, faults, and the sysrq crash trigger.
var panicMarkers = []string{
	"Kernel panic - not syncing:",
	"BUG:",
	"kernel BUG at",
	"Oops",
	"general protection fault",
	"Unable to handle kernel", // arm64, arm, powerpc page faults
	"sysrq: Trigger a crash",
	"sysrq: SysRq : Trigger a crash", // older kernels' wording
	"SysRq : Trigger a crash",
}

const panicPrefix = "Kernel panic - not syncing:"

// Bounds of the story Panic tells, in records.
const (
	panicGap    = 150  // at most this far between the lines of one incident
	panicBack   = 1000 // at most this far back from the last line
	panicBefore = 5    // lines shown before the first line of the incident
	panicAfter  = 100  // lines shown after the last (the call trace)
)

func isPanicLine(text string) bool {
	for _, m := range panicMarkers {
		if strings.HasPrefix(text, m) {
			return true
		}
	}
	return false
}

// Panic tells why the kernel died. It finds the last line that announces
// a panic, BUG, oops, fault or sysrq crash, and the lines of the same
// incident before it (each within panicGap records of the next), and
// returns a reason and the records around them: a few before the first,
// and the call trace after the last. The reason is the panic() message,
// unless that only says "Fatal exception" after an oops: then it is the
// incident's first line (the BUG or fault that caused it). Panic returns
// "" and nil when the log holds no such line. context is a slice of
// l.Records.
func (l *Log) Panic() (reason string, context []Record) {
	recs := l.Records
	last := -1
	for i := len(recs) - 1; i >= 0; i-- {
		if isPanicLine(recs[i].Text) {
			last = i
			break
		}
	}
	if last < 0 {
		return "", nil
	}
	first := last
	for i := last - 1; i >= 0 && first-i <= panicGap && last-i <= panicBack; i-- {
		if isPanicLine(recs[i].Text) {
			first = i
		}
	}
	reason = recs[first].Text
	for i := last; i >= first; i-- {
		t := recs[i].Text
		if msg, ok := strings.CutPrefix(t, panicPrefix); ok {
			if !strings.HasPrefix(strings.TrimSpace(msg), "Fatal exception") {
				reason = t
			}
			break
		}
	}
	from := max(first-panicBefore, 0)
	to := min(last+1+panicAfter, len(recs))
	return reason, recs[from:to:to]
}
