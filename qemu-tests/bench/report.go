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
}

func (m machine) String() string {
	return fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s, %s, makedumpfile %s",
		m.CPUs, m.CPU, m.Mem, m.Kernel, m.Go, m.Makedumpfile)
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "?", Mem: "?", Kernel: "?", Makedumpfile: "?"}
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
	if b, err := exec.Command("makedumpfile", "-v").CombinedOutput(); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Makedumpfile = f[2]
		}
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

// Targets of issue 5.
const (
	rssTargetMiB   = 32
	cycleTarget    = 8 * time.Second
	d1WallFraction = 0.25 // of makedumpfile -c's wall at -d 1
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

// Markdown returns the section of BENCHMARKS.md the run writes.
func (r *report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s.\n", r.When.Format("2006-01-02 15:04 UTC"), r.Machine)
	fmt.Fprintf(&b, "Load average %s before, %s after (the machine is shared; load slows the 2-worker rows most). ",
		r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "Medians of %d runs each (at most 3 on the sparse input), tools in turn, input hot in the page cache, "+
		"output on the same disk.\n\n", r.Runs)
	b.WriteString("| input | -d | tool | wall s | CPU s | peak RSS MiB | output MiB | wall ÷ mkd -c | wall ÷ mkd -l | size ÷ mkd -c |\n")
	b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Rows {
		c, _ := r.find(x.Input, x.Level, "makedumpfile -c (zlib)")
		l, _ := r.find(x.Input, x.Level, "makedumpfile -l (lzo)")
		rc, rl, rs := "", "", ""
		if x.Tool.Ours {
			rc, rl = ratio(x.Wall.Seconds(), c.Wall.Seconds()), ratio(x.Wall.Seconds(), l.Wall.Seconds())
			rs = ratio(float64(x.Size), float64(c.Size))
		}
		in := fmt.Sprintf("%s (%d MiB RAM)", x.Input, x.RAM)
		fmt.Fprintf(&b, "| %s | %d | %s | %.2f | %.2f | %.1f | %.1f | %s | %s | %s |\n",
			in, x.Level, x.Tool.Name, x.Wall.Seconds(), x.CPU.Seconds(), float64(x.RSSKiB)/1024,
			float64(x.Size)/(1<<20), rc, rl, rs)
	}
	b.WriteString("\nTargets (issue 5), per input:\n\n")
	for _, t := range r.Targets() {
		fmt.Fprintf(&b, "- %s\n", t)
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

// Targets checks the targets on every input.
func (r *report) Targets() []string {
	var out []string
	var inputs []string
	for _, x := range r.Rows {
		if len(inputs) == 0 || inputs[len(inputs)-1] != x.Input {
			inputs = append(inputs, x.Input)
		}
	}
	const ours, ours1 = "gokdump zstd", "gokdump zstd, 1 worker"
	const mc, ml = "makedumpfile -c (zlib)", "makedumpfile -l (lzo)"
	for _, in := range inputs {
		get := func(level int, name string) row { x, _ := r.find(in, level, name); return x }
		o31, c31, l31 := get(31, ours), get(31, mc), get(31, ml)
		o1, c1 := get(1, ours), get(1, mc)
		out = append(out,
			fmt.Sprintf("%s, -d 31: wall %.2f s ≤ makedumpfile -l %.2f s: %s; output %.1f ≤ makedumpfile -c %.1f MiB: %s",
				in, o31.Wall.Seconds(), l31.Wall.Seconds(), verdict(o31.Wall.Seconds(), l31.Wall.Seconds()),
				mib(o31.Size), mib(c31.Size), verdict(float64(o31.Size), float64(c31.Size))),
			fmt.Sprintf("%s, -d 1: wall %.2f s ≤ %.2f × makedumpfile -c %.2f s: %s; output %.1f ≤ %.1f MiB: %s",
				in, o1.Wall.Seconds(), d1WallFraction, c1.Wall.Seconds(),
				verdict(o1.Wall.Seconds(), d1WallFraction*c1.Wall.Seconds()),
				mib(o1.Size), mib(c1.Size), verdict(float64(o1.Size), float64(c1.Size))))
		for _, level := range []int{31, 1} {
			w1, c := get(level, ours1), get(level, mc)
			out = append(out, fmt.Sprintf("%s, -d %d, 1 worker: wall %.2f s ≤ makedumpfile -c %.2f s: %s",
				in, level, w1.Wall.Seconds(), c.Wall.Seconds(), verdict(w1.Wall.Seconds(), c.Wall.Seconds())))
		}
		var rss int64
		for _, x := range r.Rows {
			if x.Input == in && x.Tool.Ours {
				rss = max(rss, x.RSSKiB)
			}
		}
		out = append(out, fmt.Sprintf("%s: peak RSS of ours, any level and workers, %.1f ≤ %d MiB: %s",
			in, float64(rss)/1024, rssTargetMiB, verdict(float64(rss)/1024, rssTargetMiB)))
	}
	return out
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
