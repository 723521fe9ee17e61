package collect

import (
	"fmt"
	"strings"

	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/config"
)

// Status is how a capture ended.
type Status string

const (
	// StatusSaved: the whole dump is on the target.
	StatusSaved Status = "saved"
	// StatusIncomplete: part of the dump is on the target, readable and
	// flagged incomplete (the target filled, or the dump could not be
	// finished).
	StatusIncomplete Status = "incomplete"
	// StatusFailed: no dump was saved.
	StatusFailed Status = "failed"
	// StatusLeft: the operator's console was left; Result.Action says
	// for what. (Each dump saved there had its own result line.)
	StatusLeft Status = "left"
)

// The codes of the three outcomes, printed as status=N at the end of the
// result line. They are `gokdump save`'s exit codes, so that a script
// reads a capture and a save alike.
const (
	CodeSaved      = 0
	CodeFailed     = 1
	CodeIncomplete = 3
)

// Code is the status's code; an unknown status is a failure.
func (s Status) Code() int {
	switch s {
	case StatusSaved:
		return CodeSaved
	case StatusIncomplete:
		return CodeIncomplete
	}
	return CodeFailed
}

// Result is how the capture went: what the result line says.
type Result struct {
	Status Status `json:"status"`
	// Path is the dump as seen on the target filesystem, or raw:DEVICE.
	Path   string       `json:"path,omitempty"`
	Bytes  int64        `json:"bytes,omitempty"`
	Level  filter.Level `json:"level"`
	Format string       `json:"format,omitempty"`
	// Reason says why the dump is incomplete or the capture failed.
	Reason string `json:"reason,omitempty"`
	// Action is what the operator's console was left for (StatusLeft).
	Action config.Action `json:"action,omitempty"`
}

// Failedf returns a failed Result.
func Failedf(format string, args ...any) Result {
	return Result{Status: StatusFailed, Reason: fmt.Sprintf(format, args...)}
}

// Line is the result line without its "gokdump: " prefix, seconds after
// the capture began. README ("Console output") documents it:
//
//	saved PATH bytes=N seconds=S level=L format=F status=0
//	INCOMPLETE PATH bytes=N seconds=S level=L format=F: REASON; the dump is readable, flagged incomplete status=3
//	FAILED REASON status=1
//
// status=N always ends the line; REASON is one line.
func (r Result) Line(seconds float64) string {
	reason := oneLine(r.Reason)
	switch r.Status {
	case StatusSaved:
		return fmt.Sprintf("saved %s bytes=%d seconds=%.2f level=%d format=%s status=%d",
			r.Path, r.Bytes, seconds, r.Level, r.Format, CodeSaved)
	case StatusIncomplete:
		return fmt.Sprintf("INCOMPLETE %s bytes=%d seconds=%.2f level=%d format=%s: %s; the dump is readable, flagged incomplete status=%d",
			r.Path, r.Bytes, seconds, r.Level, r.Format, reason, CodeIncomplete)
	}
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Sprintf("FAILED %s status=%d", reason, CodeFailed)
}

// oneLine folds a multi-line message into one line: a reason may hold
// several (joined errors, the list of devices seen).
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n\t", "; ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// Action is the action that follows res: final_action after a dump, saved
// or incomplete; failure_action after a failure, or final_action when it
// is "fallback" (the fallback target was tried and failed too), as
// configs/gokdump.toml documents.
func Action(cfg *config.Config, res Result) config.Action {
	if res.Status == StatusSaved || res.Status == StatusIncomplete {
		return cfg.FinalAction
	}
	return FailureAction(cfg)
}

// FailureAction is the action taken when nothing could be saved.
func FailureAction(cfg *config.Config) config.Action {
	if cfg.FailureAction == config.ActionFallback {
		return cfg.FinalAction
	}
	return cfg.FailureAction
}

// Finish prints res's result line, then "ACTION a", and carries out the
// action a that follows it. In the capture kernel it does not return.
func Finish(env *Env, cfg *config.Config, res Result) {
	PrintResult(env, res)
	Act(env, Action(cfg, res))
}

// PrintResult prints res's result line.
func PrintResult(env *Env, res Result) {
	env.Console.Result("%s", res.Line(env.since(env.Console.Start()).Seconds()))
}

// Act announces an action and takes it.
func Act(env *Env, a config.Action) {
	env.Console.Result("ACTION %s", a)
	env.Act(a)
}
