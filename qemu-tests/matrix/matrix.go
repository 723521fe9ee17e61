// Package matrix holds the results of the QEMU tests' kernel matrix: each
// test appends what it measured on a kernel line to a results file (one
// JSON object a line, from tests running at once in one process or
// several), and the table that `make test` prints at the end is made from
// it by merging the records of each line.
package matrix

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// EnvResults names the results file. Unset, tests record nothing.
const EnvResults = "GOKDUMP_RESULTS"

// Reader is a dump reader of the table: a program and its version's place
// (Debian 12's, or the newer one of the sid tree).
type Reader string

// The readers, in the table's order.
const (
	DrgnOld  Reader = "drgn"         // Debian 12's python3-drgn
	DrgnNew  Reader = "drgn-sid"     // sid's, through scripts/sid-run
	MDFOld   Reader = "makedumpfile" // Debian 12's
	MDFNew   Reader = "makedumpfile-sid"
	CrashOld Reader = "crash"
	CrashNew Reader = "crash-sid"
)

// Readers lists every Reader in the table's order.
var Readers = []Reader{DrgnOld, DrgnNew, MDFOld, MDFNew, CrashOld, CrashNew}

// Verdicts of a reader on a line.
const (
	OK         = "ok"   // it opened the dump and found what the test looked for
	Fail       = "FAIL" // it should have, and did not: the test failed
	CannotRead = "no"   // it does not know this kernel (expected; the test says why)
)

// Record is what one test measured on one kernel line. Zero fields are
// unknown; a merge keeps the known ones.
type Record struct {
	Test       string  `json:"test"`
	Line       string  `json:"line"` // the matrix line: 6.1, 6.12, 6.19, latest
	KVer       string  `json:"kver,omitempty"`
	Version    string  `json:"version,omitempty"` // Debian package version
	Suite      string  `json:"suite,omitempty"`
	Unverified bool    `json:"unverified,omitempty"`   // fetched from the pool, not a signed index
	VMLinux    *bool   `json:"vmlinux,omitempty"`      // whether a debug vmlinux exists
	BootToDump float64 `json:"boot_to_dump,omitempty"` // seconds from QEMU start to "gokdump: saved"
	Kept31     uint64  `json:"kept31,omitempty"`       // pages kept at -d 31 by the capture
	// Markers found of those written, per kind: "0/64" at -d 31.
	User  string `json:"user,omitempty"`
	THPkB int    `json:"thp_kb,omitempty"` // AnonHugePages in the guest before the crash
	// Readers maps a Reader to its verdict, OK, Fail or CannotRead, and
	// Notes to what it did or why it could not.
	Readers map[Reader]string `json:"readers,omitempty"`
	Notes   map[Reader]string `json:"notes,omitempty"`
	// Versions of the readers ("0.0.22"), for the table's header.
	Versions map[Reader]string `json:"versions,omitempty"`
}

// Append adds r to the results file named by $GOKDUMP_RESULTS, if any.
func Append(r Record) error {
	p := os.Getenv(EnvResults)
	if p == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// One write of a whole line under a lock: processes may append at once.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("matrix: append to %s: %w", p, err)
	}
	return nil
}

// Load reads a results file; a missing one holds no records.
func Load(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read reads records, one JSON object a line.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("matrix: results line %d: %w", n, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// Row is a kernel line's merged records.
type Row struct {
	Record
	Tests []string
}

// Merge merges the records of each line, ordered by line (numbers first,
// by version; "latest" last). A reader that failed anywhere stays failed;
// one that read the dump anywhere and could not elsewhere is shown as ok
// with the other note kept.
func Merge(recs []Record) []Row {
	byLine := map[string]*Row{}
	for _, r := range recs {
		row := byLine[r.Line]
		if row == nil {
			row = &Row{Record: Record{Line: r.Line, Readers: map[Reader]string{}, Notes: map[Reader]string{},
				Versions: map[Reader]string{}}}
			byLine[r.Line] = row
		}
		row.Tests = append(row.Tests, r.Test)
		m := &row.Record
		m.KVer = cmp.Or(m.KVer, r.KVer)
		m.Version = cmp.Or(m.Version, r.Version)
		m.Suite = cmp.Or(m.Suite, r.Suite)
		m.Unverified = m.Unverified || r.Unverified
		if r.VMLinux != nil {
			m.VMLinux = r.VMLinux
		}
		m.BootToDump = cmp.Or(m.BootToDump, r.BootToDump)
		m.Kept31 = cmp.Or(m.Kept31, r.Kept31)
		m.User = cmp.Or(m.User, r.User)
		m.THPkB = cmp.Or(m.THPkB, r.THPkB)
		for k, v := range r.Readers {
			if old := m.Readers[k]; old == "" || old == CannotRead && v == OK || v == Fail {
				m.Readers[k] = v
			}
			if r.Notes[k] != "" && !strings.Contains(m.Notes[k], r.Notes[k]) {
				m.Notes[k] = strings.TrimPrefix(m.Notes[k]+"; "+r.Notes[k], "; ")
			}
		}
		for k, v := range r.Versions {
			m.Versions[k] = cmp.Or(m.Versions[k], v)
		}
	}
	var rows []Row
	for _, r := range byLine {
		slices.Sort(r.Tests)
		r.Tests = slices.Compact(r.Tests)
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b Row) int { return compareLines(a.Line, b.Line) })
	return rows
}

var number = regexp.MustCompile(`[0-9]+`)

// compareLines orders 6.1 before 6.12 before 7.0, names after numbers.
func compareLines(a, b string) int {
	na, nb := number.FindAllString(a, -1), number.FindAllString(b, -1)
	if (len(na) == 0) != (len(nb) == 0) {
		return cmp.Compare(len(nb), len(na))
	}
	for i := 0; i < len(na) && i < len(nb); i++ {
		x, _ := strconv.Atoi(na[i])
		y, _ := strconv.Atoi(nb[i])
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(a, b))
}

// Table formats the rows: one line per kernel line, then a legend and the
// notes of readers that could not read a line or failed.
func Table(w io.Writer, rows []Row) {
	versions := map[Reader]string{}
	for _, r := range rows {
		for k, v := range r.Versions {
			versions[k] = cmp.Or(versions[k], v)
		}
	}
	head := []string{"line", "release", "boot→dump", "pages -d31", "user", "THP"}
	for _, rd := range Readers {
		head = append(head, Header(rd, versions[rd]))
	}
	cells := [][]string{head}
	for _, r := range rows {
		rel := r.KVer
		if r.Unverified {
			rel += " (unverified)"
		}
		if r.VMLinux != nil && !*r.VMLinux {
			rel += " (no -dbg)"
		}
		c := []string{r.Line, rel, seconds(r.BootToDump), count(r.Kept31), dash(r.User), thp(r.THPkB)}
		for _, rd := range Readers {
			c = append(c, dash(r.Readers[rd]))
		}
		cells = append(cells, c)
	}
	widths := make([]int, len(head))
	for _, c := range cells {
		for i, s := range c {
			widths[i] = max(widths[i], len([]rune(s)))
		}
	}
	for _, c := range cells {
		var b strings.Builder
		for i, s := range c {
			b.WriteString(s)
			if i < len(c)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(s))+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintf(w, "boot→dump: QEMU start to \"gokdump: saved\" under TCG; pages -d31: pages in the capture's level-31 dump "+
		"(zero pages included, as makedumpfile counts them); user: USER markers in it of those the guest wrote; "+
		"THP: the guest's AnonHugePages; readers: %s read the dumps, %s cannot read that kernel (expected), %s failed, - not run\n",
		OK, CannotRead, Fail)
	for _, r := range rows {
		for _, rd := range Readers {
			if r.Notes[rd] != "" {
				fmt.Fprintf(w, "  %s %s: %s: %s\n", r.Line, Header(rd, versions[rd]), r.Readers[rd], r.Notes[rd])
			}
		}
	}
}

// Header names a reader with its version: "makedumpfile 1.7.2".
func Header(rd Reader, version string) string {
	name := strings.TrimSuffix(string(rd), "-sid")
	if version == "" {
		version = "?"
	}
	if strings.HasSuffix(string(rd), "-sid") {
		return name + " " + version + " (sid)"
	}
	return name + " " + version
}

func seconds(s float64) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", s)
}

func count(n uint64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatUint(n, 10)
}

func thp(kb int) string {
	if kb == 0 {
		return "-"
	}
	return fmt.Sprintf("%dM", kb>>10)
}

func dash(s string) string { return cmp.Or(s, "-") }
