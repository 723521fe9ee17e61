package vmtest

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strconv"
)

// JUnit XML, as CI systems read it (Jenkins, GitLab, GitHub test
// reporters): <testsuites> holding one <testsuite> per run, with
// <properties> and <testcase>s. A testcase fails with <failure>, could not
// run with <error>, and was not run with <skipped>.
type (
	junitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Skipped  int          `xml:"skipped,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string          `xml:"name,attr"`
		Tests      int             `xml:"tests,attr"`
		Failures   int             `xml:"failures,attr"`
		Errors     int             `xml:"errors,attr"`
		Skipped    int             `xml:"skipped,attr"`
		Time       string          `xml:"time,attr"`
		Timestamp  string          `xml:"timestamp,attr"`
		Hostname   string          `xml:"hostname,attr"`
		Properties []junitProperty `xml:"properties>property"`
		Cases      []junitCase     `xml:"testcase"`
		SystemOut  string          `xml:"system-out,omitempty"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      string        `xml:"time,attr"`
		Skipped   *junitMessage `xml:"skipped"`
		Error     *junitMessage `xml:"error"`
		Failure   *junitMessage `xml:"failure"`
	}
	junitMessage struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr,omitempty"`
		Text    string `xml:",chardata"`
	}
)

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }

// WriteJUnit writes the report as JUnit XML: a testsuite named for the
// kernel, with a testcase "kdump" (the whole run: a failure names the
// phase, an error is a setup error) and one testcase per check. The run's
// settings, phase timings and dump size are the suite's properties; the
// end of the serial console of a failed run is its system-out.
func (r *Report) WriteJUnit(w io.Writer) error {
	rel := r.Kernel.Release
	if rel == "" {
		rel = "unknown"
	}
	class := "gokdump.vmtest." + rel
	s := junitSuite{
		Name:      "gokdump vmtest " + rel,
		Time:      seconds(r.Seconds),
		Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		SystemOut: r.SerialTail,
	}
	s.Hostname, _ = os.Hostname()
	if s.Hostname == "" {
		s.Hostname = "localhost"
	}
	prop := func(name, value string) {
		if value != "" {
			s.Properties = append(s.Properties, junitProperty{name, value})
		}
	}
	prop("kernel", r.Kernel.Path)
	prop("release", r.Kernel.Release)
	prop("arch", r.Kernel.Arch)
	prop("kconfig", r.Kernel.Config)
	prop("accel", r.Accel)
	prop("accel_reason", r.AccelReason)
	prop("crash", r.Crash)
	prop("dump_level", strconv.Itoa(r.DumpLevel))
	prop("disk", r.Disk)
	prop("mem_mib", strconv.Itoa(r.MemMiB))
	prop("cpus", strconv.Itoa(r.CPUs))
	prop("crashkernel", r.CrashKernel)
	prop("result", r.Result)
	prop("failed_phase", r.FailedPhase)
	if d := r.Dump; d != nil {
		prop("dump_bytes", strconv.FormatInt(d.Bytes, 10))
		prop("pages_kept", strconv.FormatUint(d.Pages, 10))
	}
	for _, p := range r.Phases {
		prop("phase."+p.Name, seconds(p.Seconds))
	}

	whole := junitCase{Name: "kdump", Classname: class, Time: seconds(r.Seconds)}
	switch r.Result {
	case Fail:
		whole.Failure = &junitMessage{Message: fmt.Sprintf("kdump failed in phase %s: %s", r.FailedPhase, r.Error), Type: r.FailedPhase}
		s.Failures++
	case Pass:
	default:
		whole.Error = &junitMessage{Message: "the test could not run: " + r.Error, Type: "setup"}
		s.Errors++
	}
	s.Cases = append(s.Cases, whole)
	for _, c := range r.Checks {
		tc := junitCase{Name: c.Name, Classname: class, Time: seconds(0)}
		switch c.Status {
		case Fail:
			tc.Failure = &junitMessage{Message: c.Detail, Type: c.Name}
			s.Failures++
		case Skip:
			tc.Skipped = &junitMessage{Message: c.Detail}
			s.Skipped++
		}
		s.Cases = append(s.Cases, tc)
	}
	s.Tests = len(s.Cases)
	doc := junitSuites{Name: "gokdump vmtest", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors,
		Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
