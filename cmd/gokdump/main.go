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
	// setup defines the command's flags on fs and returns what runs it
	// once they are parsed.
	setup func(fs *flag.FlagSet) func(args []string, s streams) error
}

// streams are where a command reads and writes: run's, never os.Stdout
// directly, so that tests see everything a command prints.
type streams struct {
	in       io.Reader
	out, err io.Writer
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
	exitSetup      = 5 // vmtest: the test could not run; nothing is known of the kernel
)

const exitCodesHelp = `exit codes: 0 done (a dump saved is complete); 1 failed, nothing saved; 2 the
command line is wrong, nothing done; 3 saved, but the dump is incomplete
(flagged so, readable); 4 savecore found no dump to recover; 5 vmtest could
not run its test (a tool, file or build missing)`

var (
	// errIncomplete is wrapped by a command that saved a dump flagged
	// incomplete: exit 3.
	errIncomplete = errors.New("saved, but incomplete")
	// errNoDump is wrapped by savecore when there is no dump to recover:
	// exit 4.
	errNoDump = errors.New("nothing to recover")
)

// usageError is a flag value or argument that cannot work: exit 2, with
// the message and a pointer to the command's help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// needArgs checks that args are exactly the arguments names: a usage
// error saying which is missing or too many otherwise.
func needArgs(args []string, names ...string) error {
	switch {
	case len(args) < len(names):
		return usagef("missing %s", strings.Join(names[len(args):], " "))
	case len(args) > len(names) && len(names) == 0:
		return usagef("takes no arguments, got %q", args)
	case len(args) > len(names):
		return usagef("takes %s, got %d arguments: %q", strings.Join(names, " "), len(args), args)
	}
	return nil
}

// exitCode maps what a command returned to the process's exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errNoDump):
		return exitNoDump
	case errors.Is(err, errSetup):
		return exitSetup
	case errors.Is(err, errIncomplete):
		return exitIncomplete
	}
	return exitFailed
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, streams{os.Stdin, stdout, stderr})
}

func runWith(args []string, s streams) int {
	if len(args) == 0 {
		usage(s.err)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) == 1 {
			usage(s.out)
			return exitOK
		}
		c, ok := commands[args[1]]
		if !ok {
			fmt.Fprintf(s.err, "gokdump help: no command %q; 'gokdump help' lists them\n", args[1])
			return exitUsage
		}
		fs := newFlagSet(c, s.out)
		c.setup(fs)
		fs.Usage()
		return exitOK
	case "-V", "-version", "--version":
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(s.err, "gokdump: unknown command %q; 'gokdump help' lists them\n", args[0])
		return exitUsage
	}
	fs := newFlagSet(c, s.err)
	do := c.setup(fs)
	fs.SetOutput(io.Discard) // parse errors are printed below, briefly
	if err := fs.Parse(interspersed(fs, args[1:])); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(s.out)
			fs.Usage()
			return exitOK
		}
		printError(s.err, c.name, usagef("%s", strings.Replace(err.Error(), "flag provided but not defined", "unknown flag", 1)))
		return exitUsage
	}
	fs.SetOutput(s.err)
	err := do(fs.Args(), s)
	if err != nil {
		printError(s.err, c.name, err)
	}
	return exitCode(err)
}

// interspersed reorders args so that the flags come first and the
// arguments after a "--", as flag.Parse wants them: `info DUMP --json`
// and `save OUT -d 1` mean what they say. A flag that takes a value takes
// the next word with it; "--" ends the flags, and "-" is an argument
// (standard output or input).
func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse says it is unknown
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), rest...)
}

func newFlagSet(c *command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gokdump "+c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: gokdump %s [flags] %s\n\n%s\n", c.name, c.args, c.short)
		if c.long != "" {
			fmt.Fprintf(w, "\n%s\n", c.long)
		}
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(w, "\nflags (before or after the arguments):")
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
	fmt.Fprintln(w, "\n'gokdump help COMMAND' shows a command's flags; 'gokdump --version' the version.")
	fmt.Fprintln(w, "\n"+exitCodesHelp)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
