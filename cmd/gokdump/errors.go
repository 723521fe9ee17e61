package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/capture/vmcore"
)

// Errors are printed in one style: a first line in the user's terms, and
// the chain of what failed where on a second line, "detail: …", when it
// says more. A command gives the first line with explain at the place it
// knows what was being done; printError finds it there.

// explainedError is an error with a sentence for the user in front of it.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *explainedError) Unwrap() error { return e.err }

// explain puts msg, a sentence in the user's terms, in front of err.
func explain(err error, format string, args ...any) error {
	return &explainedError{msg: fmt.Sprintf(format, args...), err: err}
}

// printError prints what a command failed with: the explained first line
// (or the error itself when it is short enough to be one) and the detail.
func printError(w io.Writer, cmd string, err error) {
	first, detail := summarize(err)
	fmt.Fprintf(w, "gokdump %s: %s\n", cmd, first)
	if detail != "" {
		fmt.Fprintf(w, "  detail: %s\n", detail)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "'gokdump help %s' shows its flags and arguments.\n", cmd)
	}
}

// summarize splits err into the line a user reads first and the detail.
func summarize(err error) (first, detail string) {
	var ee *explainedError
	if errors.As(err, &ee) {
		first = ee.msg
		if ee.err != nil {
			detail = ee.err.Error()
		}
		// Context a command added around the explanation stays in front.
		if full := err.Error(); full != ee.Error() {
			if prefix, ok := strings.CutSuffix(full, ee.Error()); ok {
				first = prefix + first
			}
		}
		return first, detail
	}
	return err.Error(), ""
}

// explainOpen says in a user's terms why a dump at path did not open.
func explainOpen(path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return explain(err, "%s does not exist", path)
	case errors.Is(err, fs.ErrPermission):
		return explain(err, "%s cannot be read: permission denied (dumps are 0600, owned by root)", path)
	case errors.Is(err, anydump.ErrFlattened), errors.Is(err, diskdump.ErrFlattened):
		return explain(err, "%s is a flattened stream (makedumpfile -F, a raw device target): "+
			"turn it into a dump first with gokdump savecore %s DIR, or makedumpfile -R", path, path)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return explain(err, "%s is not a crash dump: too short for a dump's header", path)
	case errors.Is(err, anydump.ErrUnknown), errors.Is(err, vmcore.ErrNotELF):
		return explain(err, "%s is not a crash dump: neither an ELF vmcore nor a kdump-compressed file", path)
	case errors.Is(err, diskdump.ErrCorrupt), errors.Is(err, vmcore.ErrCorrupt), errors.Is(err, vmcore.ErrNotCore):
		return explain(err, "%s is damaged: its headers do not read as a dump", path)
	case errors.Is(err, diskdump.ErrUnsupported), errors.Is(err, vmcore.ErrUnsupported):
		return explain(err, "%s is a kind of dump gokdump does not read", path)
	}
	return explain(err, "%s cannot be opened", path)
}

// explainLog says in a user's terms why a dump's kernel log was not read.
func explainLog(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, diskdump.ErrExcluded):
		return explain(err, "the kernel log's pages were left out of this dump (its dump level excluded them)")
	case errors.Is(err, vmcore.ErrHole), errors.Is(err, vmcore.ErrMissing):
		return explain(err, "the kernel log's pages are not in this dump")
	case errors.Is(err, vmcore.ErrNoVMCOREINFO):
		return explain(err, "this dump has no VMCOREINFO: nothing says where the kernel log is")
	case strings.Contains(err.Error(), "VMCOREINFO lacks"):
		return explain(err, "the dump's VMCOREINFO lacks what finding the kernel log takes")
	}
	return explain(err, "the kernel log in this dump cannot be read")
}
