package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	argv func(in, level, out string) []string
}

func tools(gokdump string) []tool {
	ours := func(extra ...string) func(in, level, out string) []string {
		return func(in, level, out string) []string {
			return append(append([]string{gokdump, "save", "-f", "--vmcore", in, "-d", level}, extra...), out)
		}
	}
	mkd := func(flag string) func(in, level, out string) []string {
		return func(in, level, out string) []string {
			return []string{"makedumpfile", flag, "-d", level, in, out}
		}
	}
	return []tool{
		{Name: "makedumpfile -c (zlib)", argv: mkd("-c")},
		{Name: "makedumpfile -l (lzo)", argv: mkd("-l")},
		{Name: "gokdump zstd", Ours: true, argv: ours()},
		{Name: "gokdump zstd, 1 worker", Ours: true, argv: ours("-workers", "1")},
	}
}

// sample is one run of a tool.
type sample struct {
	Wall, CPU time.Duration
	RSSKiB    int64
	Size      int64
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
func measure(gokdump string, in input, level, runs int, work string) ([]row, error) {
	ts := tools(gokdump)
	samples := make([][]sample, len(ts))
	for r := 0; r < runs; r++ {
		for i, t := range ts {
			out := filepath.Join(work, "out")
			s, err := runOnce(t.argv(in.Path, strconv.Itoa(level), out), out)
			if err != nil {
				return nil, fmt.Errorf("%s -d %d on %s: %w", t.Name, level, in.Name, err)
			}
			samples[i] = append(samples[i], s)
		}
	}
	var rows []row
	for i, t := range ts {
		m := medianSample(samples[i])
		fmt.Printf("    -d %-2d %-24s wall %6.2fs  cpu %6.2fs  rss %5.1f MiB  out %7.1f MiB\n",
			level, t.Name, m.Wall.Seconds(), m.CPU.Seconds(), float64(m.RSSKiB)/1024, float64(m.Size)/(1<<20))
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
	cmd.Stderr = &stderr
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
		Wall:   wall,
		CPU:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		RSSKiB: kib,
		Size:   st.Size(),
	}, nil
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
		Wall:   time.Duration(pick(func(s sample) int64 { return int64(s.Wall) })),
		CPU:    time.Duration(pick(func(s sample) int64 { return int64(s.CPU) })),
		RSSKiB: pick(func(s sample) int64 { return s.RSSKiB }),
		Size:   pick(func(s sample) int64 { return s.Size }),
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
