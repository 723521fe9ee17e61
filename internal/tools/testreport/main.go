// Command testreport reads `go test -json` and reports the run the way
// `make test` shows it.
//
// Reading standard input (a pipe from go test), it prints the output of
// failed tests and each package's result line as they come. Given
// PHASE=FILE arguments instead (files of go test -json, one per phase of
// the run: qemu, unit, race), it prints the kernel table of the QEMU
// tests' matrix (-results), every skipped test with its reason, the failed
// tests, and a closing "N passed, N failed, N skipped" line; -summary=false
// leaves those out of a standard-input run, for a phase of a longer one.
//
// With -allow FILE, a skip that no line of FILE allows is reported; with
// -strict (CI=true or GOKDUMP_STRICT=1 set it by default), it fails the
// run. FILE's lines are
//
//	PHASE PACKAGE TEST: why it may skip
//
// PHASE names the run's phase (* for any), PACKAGE is the import path
// below the module ("." for the module's root package) and TEST a Go
// regular expression matched against the whole test name (subtests after
// a slash); each may be "*", any. '#' starts a comment.
//
// The exit status is 1 when a test or a package failed, or when -strict
// and a skip the allowlist does not allow; 0 otherwise. Pipe go test into
// it with `set -o pipefail`, so that its own failures (a build error)
// count too.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/matrix"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// skip is a skipped test and why.
type skip struct {
	Phase, Package, Test, Reason string
	Allowed                      string // the allowlist's reason; "" when not allowed
}

type report struct {
	module  string
	verbose bool
	out     io.Writer
	// output of each running test, printed when it fails.
	buf                  map[string][]string
	phase                string
	passed, failed       int
	skips                []skip
	failedTests, badPkgs []string
}

func main() {
	allow := flag.String("allow", "", "allowlist of skips (see the package doc)")
	phase := flag.String("phase", "test", "the phase of a standard-input run, for the allowlist")
	results := flag.String("results", "", "the QEMU tests' results file, printed as the kernel table")
	module := flag.String("module", "github.com/gokdump/gokdump", "module path, cut from package names")
	strict := flag.Bool("strict", os.Getenv("CI") == "true" || os.Getenv("GOKDUMP_STRICT") == "1",
		"fail on a skip the allowlist does not allow")
	verbose := flag.Bool("v", false, "print every test's output as it comes")
	summary := flag.Bool("summary", true, "end a standard-input run with the table, the skips and the counts")
	flag.Parse()
	if err := run(*allow, *phase, *results, *module, *strict, *verbose, *summary, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
}

func run(allow, phase, results, module string, strict, verbose, summary bool, files []string) error {
	var rules []rule
	if allow != "" {
		var err error
		if rules, err = readAllow(allow); err != nil {
			return err
		}
	}
	r := &report{module: module, verbose: verbose, out: os.Stdout}
	if len(files) == 0 {
		if err := r.read(os.Stdin, phase); err != nil {
			return err
		}
	} else {
		// The phases' output was shown as they ran: only the summary now.
		summary, r.out = true, io.Discard
		for _, a := range files {
			ph, file, ok := strings.Cut(a, "=")
			if !ok {
				return fmt.Errorf("argument %q: want PHASE=FILE", a)
			}
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			err = r.read(f, ph)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
		r.out = os.Stdout
	}
	unlisted := r.judgeSkips(rules)
	if !summary {
		if len(r.failedTests) > 0 || len(r.badPkgs) > 0 {
			os.Exit(1)
		}
		return nil
	}
	if results != "" {
		recs, err := matrix.Load(results)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			fmt.Fprintf(r.out, "\nKernel matrix (%s):\n", results)
			matrix.Table(r.out, matrix.Merge(recs))
		}
	}
	if !r.summary(unlisted, allow, strict) {
		os.Exit(1)
	}
	return nil
}

func (r *report) pkg(p string) string {
	if p == r.module {
		return "."
	}
	return strings.TrimPrefix(p, r.module+"/")
}

// read consumes the event stream. Lines that are not JSON (go test's own
// errors before any test ran) are printed as they are.
func (r *report) read(in io.Reader, phase string) error {
	r.phase, r.buf = phase, map[string][]string{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.event(e)
	}
	return sc.Err()
}

func (r *report) event(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "output":
		if r.verbose {
			fmt.Fprint(r.out, e.Output)
			return
		}
		if e.Test == "" {
			// The package's own lines: its result line, build errors,
			// and the output of a test binary that died.
			if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS\n") {
				fmt.Fprint(r.out, e.Output)
			}
			return
		}
		r.buf[key] = append(r.buf[key], e.Output)
	case "pass":
		if e.Test != "" {
			r.passed++
		}
		delete(r.buf, key)
	case "fail":
		if e.Test == "" {
			r.badPkgs = append(r.badPkgs, r.phase+": "+r.pkg(e.Package))
			return
		}
		r.failed++
		r.failedTests = append(r.failedTests, r.phase+": "+r.pkg(e.Package)+" "+e.Test)
		if !r.verbose {
			fmt.Fprint(r.out, strings.Join(r.buf[key], ""))
		}
		delete(r.buf, key)
	case "skip":
		if e.Test == "" {
			return // a package without tests
		}
		r.skips = append(r.skips, skip{Phase: r.phase, Package: r.pkg(e.Package), Test: e.Test, Reason: reason(r.buf[key])})
		delete(r.buf, key)
	}
}

// reason is what a skipped test logged, without go test's own lines.
func reason(out []string) string {
	var lines []string
	for _, o := range out {
		for _, l := range strings.Split(strings.TrimRight(o, "\n"), "\n") {
			t := strings.TrimSpace(l)
			if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
				continue
			}
			lines = append(lines, t)
		}
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " ")
}

// rule is an allowlist line.
type rule struct {
	phase, pkg *regexp.Regexp
	test       *regexp.Regexp
	why        string
	src        string
}

func readAllow(path string) ([]rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rules []rule
	for n, l := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		head, why, ok := strings.Cut(l, ": ")
		f := strings.Fields(head)
		if !ok || len(f) != 3 || strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("%s:%d: want PHASE PACKAGE TEST: why it may skip", path, n+1)
		}
		var re [3]*regexp.Regexp
		for i, s := range f {
			if s == "*" {
				s = ".*"
			}
			if re[i], err = regexp.Compile("^(?:" + s + ")$"); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n+1, err)
			}
		}
		rules = append(rules, rule{re[0], re[1], re[2], strings.TrimSpace(why), fmt.Sprintf("%s:%d", path, n+1)})
	}
	return rules, nil
}

// judgeSkips marks the skips the rules allow and returns how many are not.
func (r *report) judgeSkips(rules []rule) int {
	n := 0
	for i := range r.skips {
		s := &r.skips[i]
		for _, ru := range rules {
			if ru.phase.MatchString(s.Phase) && ru.pkg.MatchString(s.Package) && ru.test.MatchString(s.Test) {
				s.Allowed = ru.why
				break
			}
		}
		if s.Allowed == "" {
			n++
		}
	}
	return n
}

func (r *report) summary(unlisted int, allow string, strict bool) bool {
	w := r.out
	if len(r.skips) > 0 {
		fmt.Fprintf(w, "\nSkipped tests (%d):\n", len(r.skips))
		slices.SortFunc(r.skips, func(a, b skip) int {
			return strings.Compare(a.Phase+" "+a.Package+" "+a.Test, b.Phase+" "+b.Package+" "+b.Test)
		})
		for _, s := range r.skips {
			mark := "  allowed"
			if s.Allowed == "" {
				mark = "  NOT ALLOWED"
				if allow == "" {
					mark = " "
				}
			}
			fmt.Fprintf(w, "%s  %s %s %s: %s\n", mark, s.Phase, s.Package, s.Test, s.Reason)
		}
	}
	ok := len(r.failedTests) == 0 && len(r.badPkgs) == 0
	if len(r.failedTests) > 0 {
		fmt.Fprintf(w, "\nFailed tests:\n  %s\n", strings.Join(r.failedTests, "\n  "))
	}
	if len(r.badPkgs) > 0 {
		fmt.Fprintf(w, "\nFailed packages: %s\n", strings.Join(slices.Compact(r.badPkgs), " "))
	}
	if unlisted > 0 && allow != "" {
		err := errors.New("skips that " + allow + " does not allow: a test that did not run hides what it checks")
		if strict {
			fmt.Fprintf(w, "\n%d %v\n", unlisted, err)
			ok = false
		} else {
			fmt.Fprintf(w, "\n%d %v (not failing: not strict, set GOKDUMP_STRICT=1)\n", unlisted, err)
		}
	}
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", r.passed, r.failed, len(r.skips))
	return ok
}
