// Command gokdump builds, loads and inspects Linux crash dumps: the capture
// initramfs (build), the capture kernel (load, unload, status) and the dumps
// it saves (save, info, dmesg).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// A command is one subcommand. Each lives in its own file and registers
// itself from init, so the files do not step on each other.
type command struct {
	name  string
	args  string // argument synopsis for usage, after the flags
	short string // one line for the command list
	long  string // more for the command's usage, such as its exit codes
	// run parses args with fs (already named and wired to usage) and runs.
	setup func(fs *flag.FlagSet) func(args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("gokdump: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// Exit codes, the same for every command (README, "Exit codes").
const (
	exitOK         = 0 // done; a dump saved is complete
	exitFailed     = 1 // failed: nothing saved (status: a crash would not be caught)
	exitUsage      = 2 // the command line is wrong; nothing was done
	exitIncomplete = 3 // a dump was saved, but it is incomplete (flagged so, readable)
	exitNoDump     = 4 // savecore: no dump stream on the device, nothing to recover
)

const exitCodesHelp = `exit codes: 0 done (a dump saved is complete); 1 failed, nothing saved; 2 the
command line is wrong, nothing done; 3 saved, but the dump is incomplete
(flagged so, readable); 4 savecore found no dump to recover`

var (
	// errUsage asks main to print the command's usage and exit 2.
	errUsage = errors.New("usage")
	// errIncomplete is wrapped by a command that saved a dump flagged
	// incomplete: exit 3.
	errIncomplete = errors.New("saved, but incomplete")
	// errNoDump is wrapped by savecore when there is no dump to recover:
	// exit 4.
	errNoDump = errors.New("nothing to recover")
)

// usageError is a flag value or argument that cannot work: exit 2, with
// the message and not the whole usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitCode maps what a command returned to the process's exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errNoDump):
		return exitNoDump
	case errors.Is(err, errIncomplete):
		return exitIncomplete
	}
	return exitFailed
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fs := newFlagSet(c, stderr)
				c.setup(fs)
				fs.SetOutput(stdout)
				fs.Usage()
				return 0
			}
		}
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gokdump: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	fs := newFlagSet(c, stderr)
	do := c.setup(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	err := do(fs.Args())
	if err == errUsage {
		fs.Usage()
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "gokdump %s: %v\n", c.name, err)
		if code := exitCode(err); code == exitUsage {
			fmt.Fprintf(stderr, "'gokdump help %s' shows its flags.\n", c.name)
		}
	}
	return exitCode(err)
}

func newFlagSet(c *command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gokdump "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: gokdump %s [flags] %s\n\n%s\n", c.name, c.args, c.short)
		if c.long != "" {
			fmt.Fprintf(w, "\n%s\n", c.long)
		}
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gokdump COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w, "\n'gokdump help COMMAND' shows a command's flags.")
	fmt.Fprintln(w, "\n"+exitCodesHelp)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
