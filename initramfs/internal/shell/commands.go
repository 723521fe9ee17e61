package shell

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/internal/config"
	"mvdan.cc/sh/v3/interp"
)

// A call is one run of a command: its arguments (without its name) and
// its standard streams, as the interpreter hands them over (a pipe, a
// redirected file, the console).
type call struct {
	ctx  context.Context
	args []string
	in   io.Reader // nil: nothing
	out  io.Writer
	errw io.Writer
	dir  string // the shell's current directory
}

// path resolves a path argument against the current directory.
func (c *call) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.dir, p)
}

// usageError makes a command exit 2 with its usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode is a command's own exit status, said already.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

type command struct {
	name, args, help string
	run              func(s *session, c *call) error
}

// commandList is filled by init: the commands refer to it (help).
var commandList []command

func init() {
	commandList = []command{
		{"help", "", "this list", cmdHelp},
		{"ls", "[-l] [PATH...]", "list directories", cmdLs},
		{"cat", "[FILE...]", "print files (or the input)", cmdCat},
		{"head", "[-n N] [FILE]", "the first N lines (10)", cmdHead},
		{"tail", "[-n N] [FILE]", "the last N lines (10)", cmdTail},
		{"grep", "[-i] [-v] [-c] REGEXP [FILE...]", "lines matching a Go regular expression", cmdGrep},
		{"devices", "", "block devices: size, filesystem, LABEL, UUID, where mounted", cmdDevices},
		{"mount", "[-t TYPE] [-o OPTIONS] [-r] DEVICE [DIR]", "mount a device (LABEL=…, UUID=…, /dev/…) on DIR (/mnt/NAME); alone: the mounts", cmdMount},
		{"umount", "DIR", "unmount", cmdUmount},
		{"ip", "[addr|route|link]", "network interfaces and their addresses, routes", cmdIP},
		{"dmesg", "[-k]", "the crashed kernel's log; -k: this (the capture) kernel's", cmdDmesg},
		{"info", "", "the crash: kernel, time, panic, memory; and the configuration", cmdInfo},
		{"save", "[-d LEVELS] [-c CODEC] [-f FORMAT] [-m MAX_SIZE] [-p PATH] [DEST]",
			"save the dump to DEST (a target: LABEL=…, UUID=…, /dev/…, raw:…, ssh://…, nfs://…; or a mounted directory); alone: the configured targets",
			cmdSave},
		{"sync", "", "flush every filesystem", cmdSync},
		{"reboot", "", "leave the console and reboot", leave(config.ActionReboot)},
		{"poweroff", "", "leave the console and power off", leave(config.ActionPoweroff)},
		{"halt", "", "leave the console and halt", leave(config.ActionHalt)},
	}
}

// helpName is what help is run as, past the interpreter's own help.
const helpName = "\x00help"

func lookup(name string) *command {
	if name == helpName {
		name = "help"
	}
	for i := range commandList {
		if commandList[i].name == name {
			return &commandList[i]
		}
	}
	return nil
}

// commands is the interpreter's exec handler: gokdump's commands by
// name, programs by path (a hook packed in the image, say).
func (s *session) commands(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		hc := interp.HandlerCtx(ctx)
		cmd := lookup(args[0])
		if cmd == nil {
			if strings.Contains(args[0], "/") {
				return next(ctx, args)
			}
			fmt.Fprintf(hc.Stderr, "%s: not a command here (help lists them; a program runs by its path)\n", args[0])
			return interp.ExitStatus(127)
		}
		c := &call{ctx: ctx, args: args[1:], in: hc.Stdin, out: hc.Stdout, errw: hc.Stderr, dir: hc.Dir}
		err := cmd.run(s, c)
		var lv *leaveError
		var code exitCode
		var ue *usageError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &lv):
			return err
		case errors.As(err, &code):
			return interp.ExitStatus(code)
		case errors.As(err, &ue):
			fmt.Fprintf(c.errw, "%s: %s\nusage: %s %s\n", cmd.name, ue.msg, cmd.name, cmd.args)
			return interp.ExitStatus(2)
		case c.ctx.Err() != nil:
			fmt.Fprintf(c.errw, "%s: stopped\n", cmd.name)
			return interp.ExitStatus(130)
		}
		fmt.Fprintf(c.errw, "%s: %v\n", cmd.name, err)
		return interp.ExitStatus(1)
	}
}

// flags parses a command's flags; the arguments left are returned.
func flags(c *call, define func(fs *flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(c.args); err != nil {
		return nil, usagef("%v", err)
	}
	return fs.Args(), nil
}

func leave(a config.Action) func(*session, *call) error {
	return func(s *session, c *call) error {
		if len(c.args) > 0 {
			return usagef("takes no arguments")
		}
		return &leaveError{action: a}
	}
}

func cmdHelp(s *session, c *call) error {
	fmt.Fprintln(c.out, "gokdump's console: a POSIX shell (pipes, variables, if, for, > and <) with these commands:")
	for _, cmd := range commandList {
		fmt.Fprintf(c.out, "  %-9s %s\n", cmd.name, cmd.args)
		fmt.Fprintf(c.out, "            %s\n", cmd.help)
	}
	fmt.Fprintf(c.out, "and echo, printf, cd, pwd, test, exit. exit or ^D takes final_action (%s); ^C stops a command.\n", s.cfg.FinalAction)
	return nil
}

// ctxReader stops reading once ctx is done (^C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// each opens the inputs a command names, its standard input for none
// or "-". Each is read by f in turn; an input that cannot be opened is
// said and the others are read.
func (c *call) each(names []string, f func(name string, r io.Reader) error) error {
	if len(names) == 0 {
		names = []string{"-"}
	}
	failed := false
	for _, n := range names {
		if n == "-" {
			in := c.in
			if in == nil {
				in = strings.NewReader("")
			}
			if err := f("-", ctxReader{c.ctx, in}); err != nil {
				return err
			}
			continue
		}
		file, err := os.Open(c.path(n))
		if err != nil {
			fmt.Fprintf(c.errw, "%v\n", err)
			failed = true
			continue
		}
		err = f(n, ctxReader{c.ctx, file})
		file.Close()
		if err != nil {
			return err
		}
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

func cmdCat(s *session, c *call) error {
	return c.each(c.args, func(_ string, r io.Reader) error {
		_, err := io.Copy(c.out, r)
		return err
	})
}

// lineCount parses -n N (or -N) for head and tail.
func lineCount(c *call) (int, []string, error) {
	n := 10
	args := slices.Clone(c.args)
	if len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' && args[0][1] >= '0' && args[0][1] <= '9' {
		args = append([]string{"-n", args[0][1:]}, args[1:]...)
	}
	c2 := *c
	c2.args = args
	rest, err := flags(&c2, func(fs *flag.FlagSet) { fs.IntVar(&n, "n", 10, "") })
	if err != nil {
		return 0, nil, err
	}
	if n < 0 {
		return 0, nil, usagef("-n %d: not a count of lines", n)
	}
	if len(rest) > 1 {
		return 0, nil, usagef("one file at most")
	}
	return n, rest, nil
}

// scanner reads lines of up to 1 MiB (a longer one is cut).
func scanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return sc
}

func cmdHead(s *session, c *call) error {
	n, rest, err := lineCount(c)
	if err != nil {
		return err
	}
	return c.each(rest, func(_ string, r io.Reader) error {
		sc := scanner(r)
		for i := 0; i < n && sc.Scan(); i++ {
			fmt.Fprintf(c.out, "%s\n", sc.Bytes())
		}
		return nil
	})
}

func cmdTail(s *session, c *call) error {
	n, rest, err := lineCount(c)
	if err != nil {
		return err
	}
	return c.each(rest, func(_ string, r io.Reader) error {
		// The last n lines, in a ring: the input may be the whole log.
		ring := make([][]byte, n)
		i := 0
		sc := scanner(r)
		for sc.Scan() {
			if n > 0 {
				ring[i%n] = append(ring[i%n][:0], sc.Bytes()...)
			}
			i++
		}
		for k := max(0, i-n); k < i; k++ {
			fmt.Fprintf(c.out, "%s\n", ring[k%n])
		}
		return sc.Err()
	})
}

func cmdGrep(s *session, c *call) error {
	var fold, invert, count bool
	rest, err := flags(c, func(fs *flag.FlagSet) {
		fs.BoolVar(&fold, "i", false, "")
		fs.BoolVar(&invert, "v", false, "")
		fs.BoolVar(&count, "c", false, "")
	})
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("no REGEXP")
	}
	expr := rest[0]
	if fold {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return usagef("%v", err)
	}
	files := rest[1:]
	matched := 0
	err = c.each(files, func(name string, r io.Reader) error {
		sc := scanner(r)
		n := 0
		for sc.Scan() {
			if re.Match(sc.Bytes()) == invert {
				continue
			}
			n++
			if count {
				continue
			}
			if len(files) > 1 {
				fmt.Fprintf(c.out, "%s:", name)
			}
			fmt.Fprintf(c.out, "%s\n", sc.Bytes())
		}
		if count {
			if len(files) > 1 {
				fmt.Fprintf(c.out, "%s:", name)
			}
			fmt.Fprintf(c.out, "%d\n", n)
		}
		matched += n
		return sc.Err()
	})
	if err == nil && matched == 0 {
		return exitCode(1)
	}
	return err
}

func cmdLs(s *session, c *call) error {
	var long bool
	rest, err := flags(c, func(fs *flag.FlagSet) { fs.BoolVar(&long, "l", false, "") })
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		rest = []string{"."}
	}
	failed := false
	for i, p := range rest {
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		full := c.path(p)
		st, err := os.Lstat(full)
		if err != nil {
			fmt.Fprintf(c.errw, "%v\n", err)
			failed = true
			continue
		}
		if !st.IsDir() {
			lsEntry(c.out, filepath.Dir(full), st, long)
			continue
		}
		if len(rest) > 1 {
			if i > 0 {
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "%s:\n", p)
		}
		ents, err := os.ReadDir(full)
		if err != nil {
			fmt.Fprintf(c.errw, "%v\n", err)
			failed = true
		}
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				continue
			}
			lsEntry(c.out, full, info, long)
		}
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

func lsEntry(w io.Writer, dir string, st os.FileInfo, long bool) {
	name := st.Name()
	if !long {
		if st.IsDir() {
			name += "/"
		}
		fmt.Fprintln(w, name)
		return
	}
	if st.Mode()&os.ModeSymlink != 0 {
		if t, err := os.Readlink(filepath.Join(dir, name)); err == nil {
			name += " -> " + t
		}
	}
	fmt.Fprintf(w, "%s %12d %s %s\n", st.Mode(), st.Size(), st.ModTime().UTC().Format("2006-01-02 15:04"), name)
}

func cmdDmesg(s *session, c *call) error {
	var self bool
	rest, err := flags(c, func(fs *flag.FlagSet) { fs.BoolVar(&self, "k", false, "") })
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("takes no arguments")
	}
	if self {
		if s.o.Env.KernelLog == nil {
			return errors.New("this kernel's log cannot be read here")
		}
		b, err := s.o.Env.KernelLog()
		if err != nil {
			return err
		}
		_, err = c.out.Write(b)
		return err
	}
	if err := s.o.Crash.Err(); err != nil {
		return err
	}
	log := s.o.Crash.Log()
	if log == nil {
		return errors.New("the crashed kernel's log could not be read (the console said why when it opened)")
	}
	// It is the crashed kernel's text, escaped where a terminal would act
	// on it (vmcore-dmesg.txt's format).
	_, err = c.out.Write(log)
	return err
}

func cmdInfo(s *session, c *call) error {
	if len(c.args) > 0 {
		return usagef("takes no arguments")
	}
	cfg := s.cfg
	fmt.Fprintf(c.out, "configuration: target %s, dump_level %v, compress %s, format %s, final_action %s, failure_action %s\n",
		orNone(config.MaskSecrets(cfg.Target)), cfg.DumpLevel, cfg.Compress, cfg.Format, cfg.FinalAction, cfg.FailureAction)
	in, err := s.o.Crash.Info()
	if err != nil {
		return err
	}
	p := printk.Printable
	fmt.Fprintf(c.out, "vmcore:         %s, %d MiB\n", s.o.Crash.Vmcore(), in.Size>>20)
	if in.ParseErr != nil {
		fmt.Fprintf(c.out, "                cannot be parsed (%v): save copies it raw\n", in.ParseErr)
		return nil
	}
	fmt.Fprintf(c.out, "crashed kernel: %s (%s), %d CPUs\n", orNone(p(in.Release)), anydump.MachineName(in.Machine), in.CPUs)
	if !in.CrashTime.IsZero() {
		fmt.Fprintf(c.out, "crash time:     %s\n", in.CrashTime.UTC().Format(time.RFC3339))
	}
	if in.Panic != "" {
		fmt.Fprintf(c.out, "panic:          %s\n", p(in.Panic))
	}
	fmt.Fprintf(c.out, "memory:         %d MiB (page frames up to %#x, %d-byte pages)\n", in.MaxPFN*uint64(in.PageSize)>>20, in.MaxPFN, in.PageSize)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func cmdSave(s *session, c *call) error {
	cfg := s.cfg.Clone()
	set := map[string]*string{}
	rest, err := flags(c, func(fs *flag.FlagSet) {
		for _, f := range []struct{ flag, key string }{
			{"d", "dump_level"}, {"c", "compress"}, {"f", "format"}, {"m", "max_size"}, {"p", "path"},
		} {
			v := new(string)
			set[f.key] = v
			fs.Func(f.flag, "", func(x string) error { *v = x; return nil })
		}
	})
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("one DEST at most")
	}
	for key, v := range set {
		if *v == "" {
			continue
		}
		if err := cfg.Set(key, *v, "console"); err != nil {
			return usagef("%v", err)
		}
	}
	dest := ""
	if len(rest) == 1 {
		dest = rest[0]
		if strings.HasPrefix(dest, ".") || !strings.ContainsAny(dest, "=:/") {
			dest = c.path(dest)
		}
	}
	res := s.o.Crash.Save(c.ctx, cfg, dest)
	s.o.Env.Console.Result("%s", res.Line(s.o.Env.Console.Elapsed().Seconds()))
	if code := res.Status.Code(); code != 0 {
		return exitCode(code)
	}
	return nil
}

// writeLines writes lines, each ended.
func writeLines(w io.Writer, lines []string) {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	w.Write(b.Bytes())
}
