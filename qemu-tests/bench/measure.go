package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tool is one way of saving a vmcore.
type tool struct {
	Name string
	Ours bool
	// Codec is the page compression: "zstd", "lzo" or "zlib".
	Codec string
	// Upstream marks a makedumpfile other than Debian's (MAKEDUMPFILE).
	Upstream bool
	// OneCPU runs the tool on one CPU (taskset), as in a capture kernel
	// booted with nr_cpus=1: makedumpfile is one thread anyway, gokdump
	// then has one worker and no second CPU for its reader and writer.
	OneCPU bool
	argv   func(in, level, out string) []string
}

// Names of the rows the targets and the projection use.
const (
	mkdC      = "makedumpfile -c (zlib)"
	mkdL      = "makedumpfile -l (lzo)"
	upZ       = "upstream makedumpfile -z (zstd)"
	upL       = "upstream makedumpfile -l (lzo)"
	oursZstd  = "gokdump zstd"
	oursZstd1 = "gokdump zstd, 1 CPU"
	oursLZO1  = "gokdump lzo, 1 CPU"
)

// tools returns the tools to run: Debian's makedumpfile, upstream's when
// its path is given, and gokdump.
func tools(gokdump, upstream string) []tool {
	ours := func(extra ...string) func(in, level, out string) []string {
		return func(in, level, out string) []string {
			return append(append([]string{gokdump, "save", "-f", "--vmcore", in, "-d", level}, extra...), out)
		}
	}
	mkd := func(bin, flag string) func(in, level, out string) []string {
		return func(in, level, out string) []string {
			// Message level 20: errors, and the report whose STEP lines
			// time the page filter. Then the output is synced (sync FILE
			// fsyncs it): gokdump fsyncs the dump before it names it, and
			// a capture must have it on disk before it reboots.
			return []string{"sh", "-c", `"$0" "$@" && exec sync "$7"`, bin, flag, "--message-level", "20", "-d", level, in, out}
		}
	}
	ts := []tool{
		{Name: mkdC, Codec: "zlib", OneCPU: true, argv: mkd("makedumpfile", "-c")},
		{Name: mkdL, Codec: "lzo", OneCPU: true, argv: mkd("makedumpfile", "-l")},
	}
	if upstream != "" {
		ts = append(ts,
			tool{Name: upZ, Codec: "zstd", Upstream: true, OneCPU: true, argv: mkd(upstream, "-z")},
			tool{Name: upL, Codec: "lzo", Upstream: true, OneCPU: true, argv: mkd(upstream, "-l")})
	}
	return append(ts,
		tool{Name: oursZstd, Ours: true, Codec: "zstd", argv: ours()},
		tool{Name: oursZstd1, Ours: true, Codec: "zstd", OneCPU: true, argv: ours()},
		tool{Name: oursLZO1, Ours: true, Codec: "lzo", OneCPU: true, argv: ours("--compress", "lzo")})
}

// sample is one run of a tool.
type sample struct {
	Wall, CPU time.Duration
	// Pass1 is the tool's own timing of its first pass, the bitmaps: the
	// page filter over every struct page (0 when it printed none).
	Pass1 time.Duration
	// ReadMiB is what gokdump read of the pages it kept (0 for
	// makedumpfile).
	ReadMiB float64
	RSSKiB  int64
	Size    int64
}

// row is the medians of a tool's runs on one input at one level.
type row struct {
	Input string
	RAM   uint64 // MiB
	Level int
	Tool  tool
	sample
}

// measure runs every tool runs times on in at level, in turn so that a
// change of the machine's load spreads over all of them, and returns the
// medians.
func measure(ts []tool, in input, level, runs int, work string) ([]row, error) {
	samples := make([][]sample, len(ts))
	for r := 0; r < runs; r++ {
		for i, t := range ts {
			out := filepath.Join(work, "out")
			argv := t.argv(in.Path, strconv.Itoa(level), out)
			if t.OneCPU {
				argv = append([]string{"taskset", "-c", "0"}, argv...)
			}
			s, err := runOnce(argv, out)
			if err != nil {
				return nil, fmt.Errorf("%s -d %d on %s: %w", t.Name, level, in.Name, err)
			}
			samples[i] = append(samples[i], s)
		}
	}
	var rows []row
	for i, t := range ts {
		m := medianSample(samples[i])
		fmt.Printf("    -d %-2d %-32s wall %6.2fs  cpu %6.2fs  pass 1 %6.2fs  rss %5.1f MiB  out %7.1f MiB\n",
			level, t.Name, m.Wall.Seconds(), m.CPU.Seconds(), m.Pass1.Seconds(), float64(m.RSSKiB)/1024, float64(m.Size)/(1<<20))
		rows = append(rows, row{Input: in.Name, RAM: in.RAMMiB, Level: level, Tool: t, sample: m})
	}
	return rows, nil
}

// timeBin is GNU time: it forks the tool, so the peak RSS it reports is
// the tool's own. A child this process starts directly would report this
// process's peak as well (Go starts children with vfork, and exec records
// the shared memory's high-water mark in the child's maxrss).
const timeBin = "/usr/bin/time"

// runOnce runs argv, which writes out, and measures it: wall time here,
// CPU time from the rusage of time and its child, peak RSS from time.
func runOnce(argv []string, out string) (sample, error) {
	os.Remove(out)
	defer os.Remove(out)
	rss := out + ".rss"
	defer os.Remove(rss)
	var stderr bytes.Buffer
	cmd := exec.Command(timeBin, append([]string{"-f", "%M", "-o", rss, "--"}, argv...)...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v\n%s", err, tail(stderr.String(), 2000))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, fmt.Errorf("no rusage for %s", argv[0])
	}
	b, err := os.ReadFile(rss)
	if err != nil {
		return sample{}, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return sample{}, fmt.Errorf("%s wrote no peak RSS: %q", timeBin, b)
	}
	kib, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		return sample{}, fmt.Errorf("%s: peak RSS %q: %v", timeBin, b, err)
	}
	st, err := os.Stat(out)
	if err != nil {
		return sample{}, fmt.Errorf("%s wrote no output: %w", argv[0], err)
	}
	return sample{
		Wall:    wall,
		CPU:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		Pass1:   pass1(stderr.String()),
		ReadMiB: readMiB(stderr.String()),
		RSSKiB:  kib,
		Size:    st.Size(),
	}, nil
}

var (
	// gokdump's summary: "…, 101.5 MiB read, 37.6 MiB written, 0.22s
	// (469 MiB/s, bitmaps 0.01s)".
	oursReadRE  = regexp.MustCompile(`([0-9.]+) MiB read,`)
	oursPass1RE = regexp.MustCompile(`bitmaps ([0-9.]+)s\)`)
	// makedumpfile's report: "STEP [Excluding unnecessary pages] : 0.009886 seconds".
	stepRE = regexp.MustCompile(`STEP \[([^]]*)\] : ([0-9.]+) seconds`)
)

// readMiB returns what gokdump says it read, or 0.
func readMiB(out string) float64 {
	if m := oursReadRE.FindStringSubmatch(out); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		return f
	}
	return 0
}

// pass1 returns the first pass's time a tool printed: gokdump's bitmaps
// time, or the sum of makedumpfile's steps before it first copies data
// (its cyclic first pass excludes pages a chunk of memory at a time).
func pass1(out string) time.Duration {
	sec := func(s string) time.Duration {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Duration(f * float64(time.Second))
	}
	if m := oursPass1RE.FindStringSubmatch(out); m != nil {
		return sec(m[1])
	}
	var d time.Duration
	for _, m := range stepRE.FindAllStringSubmatch(out, -1) {
		if strings.HasPrefix(m[1], "Copying data") {
			break
		}
		d += sec(m[2])
	}
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// medianSample takes the median of each measure on its own.
func medianSample(ss []sample) sample {
	pick := func(f func(sample) int64) int64 {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		return median(v)
	}
	return sample{
		Wall:    time.Duration(pick(func(s sample) int64 { return int64(s.Wall) })),
		CPU:     time.Duration(pick(func(s sample) int64 { return int64(s.CPU) })),
		Pass1:   time.Duration(pick(func(s sample) int64 { return int64(s.Pass1) })),
		ReadMiB: ss[0].ReadMiB, // the same every run
		RSSKiB:  pick(func(s sample) int64 { return s.RSSKiB }),
		Size:    pick(func(s sample) int64 { return s.Size }),
	}
}

// median of v: the middle value, or the mean of the middle two.
func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
