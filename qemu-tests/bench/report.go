package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where the benchmark ran.
type machine struct {
	CPUs             int
	CPU, Kernel, Mem string
	Go, Makedumpfile string
	Upstream         string // upstream makedumpfile's version, or ""
}

func (m machine) String() string {
	up := ""
	if m.Upstream != "" {
		up = fmt.Sprintf(" and upstream makedumpfile %s", m.Upstream)
	}
	return fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s, %s, makedumpfile %s%s",
		m.CPUs, m.CPU, m.Mem, m.Kernel, m.Go, m.Makedumpfile, up)
}

// version returns what makedumpfile -v says its version is.
func version(bin string) string {
	if b, err := exec.Command(bin, "-v").CombinedOutput(); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			return f[2]
		}
	}
	return "?"
}

func describeMachine(upstream string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "?", Mem: "?", Kernel: "?", Makedumpfile: version("makedumpfile")}
	if upstream != "" {
		m.Upstream = version(upstream)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v, ok := field(b, "model name"); ok {
			m.CPU = v
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v, ok := field(b, "MemTotal"); ok {
			var kib int64
			fmt.Sscanf(v, "%d", &kib)
			m.Mem = fmt.Sprintf("%.0f GiB", float64(kib)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// field returns the value of the first "key : value" line of b.
func field(b []byte, key string) (string, bool) {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// report is one benchmark run.
type report struct {
	Machine               machine
	Runs                  int
	Rows                  []row
	Cycle                 *qemuCycle
	LoadBefore, LoadAfter string
	When                  time.Time
}

// Targets of issues 5 and 19.
const (
	rssTargetMiB   = 32
	cycleTarget    = 8 * time.Second
	d1WallFraction = 0.25 // of makedumpfile -c's wall at -d 1
	twoWorkers     = 0.5  // of makedumpfile -z's wall, with 2 workers
)

// find returns the row of input, level and the tool named name.
func (r *report) find(input string, level int, name string) (row, bool) {
	for _, x := range r.Rows {
		if x.Input == input && x.Level == level && x.Tool.Name == name {
			return x, true
		}
	}
	return row{}, false
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// ref returns the makedumpfile row a row of ours is compared with: of the
// same codec, upstream's when there is one (-z, -l), else Debian's (-l,
// or -c for zstd, which it lacks).
func (r *report) ref(x row) (row, bool) {
	names := map[string][]string{"zstd": {upZ, mkdC}, "lzo": {upL, mkdL}}[x.Tool.Codec]
	for _, n := range names {
		if m, ok := r.find(x.Input, x.Level, n); ok {
			return m, true
		}
	}
	return row{}, false
}

// Markdown returns the section of BENCHMARKS.md the run writes.
func (r *report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s.\n", r.When.Format("2006-01-02 15:04 UTC"), r.Machine)
	fmt.Fprintf(&b, "Load average %s before, %s after (the machine is shared; load slows the 2-worker rows most). ",
		r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "Medians of %d runs each (at most 3 on the sparse inputs), tools in turn, input hot in the page cache, "+
		"output on the same disk. \"1 CPU\" rows and makedumpfile's run on one CPU (taskset), as in a capture kernel "+
		"with nr_cpus=1; the other gokdump row has a worker per CPU. makedumpfile's runs end with its output fsynced, "+
		"as gokdump's do. Pass 1 is each tool's own timing of its bitmaps "+
		"(gokdump's summary; makedumpfile's STEP lines before it copies data). ÷ ref compares with makedumpfile of the "+
		"same codec: upstream's -z or -l when it ran, else Debian's -l, or -c for zstd.\n\n", r.Runs)
	b.WriteString("| input | -d | tool | wall s | CPU s | pass 1 s | peak RSS MiB | output MiB | wall ÷ ref | size ÷ ref |\n")
	b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Rows {
		rw, rs := "", ""
		if m, ok := r.ref(x); ok && x.Tool.Ours {
			rw, rs = ratio(x.Wall.Seconds(), m.Wall.Seconds()), ratio(float64(x.Size), float64(m.Size))
		}
		in := fmt.Sprintf("%s (%d MiB RAM)", x.Input, x.RAM)
		fmt.Fprintf(&b, "| %s | %d | %s | %.2f | %.2f | %.2f | %.1f | %.1f | %s | %s |\n",
			in, x.Level, x.Tool.Name, x.Wall.Seconds(), x.CPU.Seconds(), x.Pass1.Seconds(), float64(x.RSSKiB)/1024,
			float64(x.Size)/(1<<20), rw, rs)
	}
	b.WriteString("\nTargets (issue 19: 1 CPU against makedumpfile of the same codec, 2 workers against -z; issue 5's -d 1 line against Debian's -c), per input:\n\n")
	for _, t := range r.Targets() {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	if p := r.Projection(); p != "" {
		fmt.Fprintf(&b, "\n%s\n", p)
	}
	if c := r.Cycle; c != nil {
		of := ""
		if c.Of > 1 {
			of = fmt.Sprintf(" (the median of %d cycles)", c.Of)
		}
		fmt.Fprintf(&b, "\nQEMU/TCG crash cycle%s, 6.1 guest of 1 GiB, default settings: panic → QEMU exit %.2f s "+
			"(target ≤ %.0f s: %s); whole cycle %.1f s. The capture reported: `%s`.\n",
			of, c.PanicToExit.Seconds(), cycleTarget.Seconds(), verdict(c.PanicToExit.Seconds(), cycleTarget.Seconds()),
			c.Elapsed.Seconds(), c.Summary)
	}
	return b.String()
}

// verdict compares a measure with its upper bound.
func verdict(got, limit float64) string {
	if limit <= 0 {
		return "no reference"
	}
	if got <= limit {
		return fmt.Sprintf("met, %.0f%% of the limit", 100*got/limit)
	}
	return fmt.Sprintf("**missed** by %.0f%%", 100*(got/limit-1))
}

// Targets checks the issues' targets on every input.
func (r *report) Targets() []string {
	var out []string
	var inputs []string
	for _, x := range r.Rows {
		if len(inputs) == 0 || inputs[len(inputs)-1] != x.Input {
			inputs = append(inputs, x.Input)
		}
	}
	for _, in := range inputs {
		get := func(level int, name string) (row, bool) { return r.find(in, level, name) }
		for _, name := range []string{oursZstd1, oursLZO1} {
			x, ok := get(31, name)
			if !ok {
				continue
			}
			m, ok := r.ref(x)
			if !ok {
				out = append(out, fmt.Sprintf("%s, -d 31, %s: no makedumpfile of the same codec ran", in, name))
				continue
			}
			out = append(out, fmt.Sprintf("%s, -d 31, %s: wall %.2f s ≤ %s %.2f s: %s; output %.1f ≤ %.1f MiB: %s",
				in, name, x.Wall.Seconds(), m.Tool.Name, m.Wall.Seconds(), verdict(x.Wall.Seconds(), m.Wall.Seconds()),
				mib(x.Size), mib(m.Size), verdict(float64(x.Size), float64(m.Size))))
		}
		if x, ok := get(31, oursZstd); ok {
			if m, ok := r.ref(x); ok && m.Tool.Name == upZ {
				out = append(out, fmt.Sprintf("%s, -d 31, %s (%d workers): wall %.2f s ≤ %.1f × %s %.2f s: %s",
					in, oursZstd, r.Machine.CPUs, x.Wall.Seconds(), twoWorkers, m.Tool.Name, m.Wall.Seconds(),
					verdict(x.Wall.Seconds(), twoWorkers*m.Wall.Seconds())))
			}
		}
		if o1, ok := get(1, oursZstd); ok {
			if c1, ok := get(1, mkdC); ok {
				out = append(out, fmt.Sprintf("%s, -d 1: wall %.2f s ≤ %.2f × makedumpfile -c %.2f s: %s",
					in, o1.Wall.Seconds(), d1WallFraction, c1.Wall.Seconds(),
					verdict(o1.Wall.Seconds(), d1WallFraction*c1.Wall.Seconds())))
			}
		}
		var rss int64
		for _, x := range r.Rows {
			if x.Input == in && x.Tool.Ours {
				rss = max(rss, x.RSSKiB)
			}
		}
		out = append(out, fmt.Sprintf("%s: peak RSS of ours, any level, codec and workers, %.1f ≤ %d MiB: %s",
			in, float64(rss)/1024, rssTargetMiB, verdict(float64(rss)/1024, rssTargetMiB)))
	}
	return out
}

// Projection estimates the minutes gokdump takes on a 1 TiB machine of
// which 5 % of the pages are kept, at 1, 4 and 8 CPUs, from the 1 TiB
// input (what grows with RAM: bitmaps, filtering, bitmaps written) and the
// first real guest (what grows with the kept pages: reading, compressing,
// writing them). It goes by CPU time: on this shared machine load
// inflates wall times, a capture kernel has its CPUs to itself.
func (r *report) Projection() string {
	var tb, real row
	var haveTB, haveReal bool
	for _, x := range r.Rows {
		if x.Level != 31 || x.Tool.Name != oursZstd1 {
			continue
		}
		switch {
		case strings.HasPrefix(x.Input, "1 TiB"):
			tb, haveTB = x, true
		case !strings.Contains(x.Input, "sparse") && !haveReal:
			real, haveReal = x, true
		}
	}
	if !haveTB || !haveReal || real.ReadMiB == 0 || real.CPU <= real.Pass1 {
		return ""
	}
	perPages := real.CPU.Seconds() - real.Pass1.Seconds() // the kept pages' share
	fixed := tb.CPU.Seconds() - perPages                  // the terabyte's own
	rate := real.ReadMiB / perPages                       // MiB of kept pages a CPU second
	kept := 0.05 * (1 << 20)                              // MiB
	var parts []string
	for _, n := range []int{1, 4, 8} {
		parts = append(parts, fmt.Sprintf("%d CPU%s %.1f min", n, map[bool]string{true: "s"}[n > 1],
			(fixed+kept/(rate*float64(n)))/60))
	}
	return fmt.Sprintf("Projection, a 1 TiB machine with 5 %% of its pages kept (51 GiB, like the guests' -d 31 pages): "+
		"%s. From this run's CPU times: the 1 TiB input's one-CPU run less its 1 GiB of real pages, %.1f s, for what "+
		"grows with RAM (one CPU does it); the kept pages at the guest's one-CPU rate, %.0f MiB of pages a CPU second, "+
		"spread over the workers. Assumes the workers scale (each page is compressed on its own) and the disk takes "+
		"the output, about a third of the kept pages, as fast.",
		strings.Join(parts, ", "), fixed, rate)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// Markers around the generated part of BENCHMARKS.md.
const (
	beginMark = "<!-- bench:begin (written by make bench) -->"
	endMark   = "<!-- bench:end -->"
)

// updateFile puts section between the markers of the file at path,
// creating the file or the markers when missing.
func updateFile(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(replaceSection(string(old), section)), 0o644)
}

func replaceSection(doc, section string) string {
	block := beginMark + "\n" + section + endMark + "\n"
	i := strings.Index(doc, beginMark)
	j := strings.Index(doc, endMark)
	if i < 0 || j < i {
		if doc == "" {
			doc = "# Benchmarks\n"
		}
		return strings.TrimRight(doc, "\n") + "\n\n" + block
	}
	rest := doc[j+len(endMark):]
	rest = strings.TrimPrefix(rest, "\n")
	return doc[:i] + block + rest
}
