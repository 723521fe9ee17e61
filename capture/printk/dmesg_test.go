package printk

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDmesgFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  Record
		want string
	}{
		{"zero", Record{}, "[    0.000000] \n"},
		{"truncates to microseconds", Record{Time: 5378815999, Text: "sysrq: Trigger a crash"},
			"[    5.378815] sysrq: Trigger a crash\n"},
		{"five digits", Record{Time: 99999 * time.Second, Text: "x"}, "[99999.000000] x\n"},
		{"wider", Record{Time: 123456 * time.Second, Text: "a\nb"}, "[123456.000000] a\n                b\n"},
		{"at 2^63 ns", Record{Time: time.Duration(-1 << 63), Text: "x"}, "[9223372036.854775] x\n"},
		{"max", Record{Time: -1, Text: "x"}, "[18446744073.709551] x\n"},
		{"trailing newline", Record{Time: 1e9, Text: "a\n"}, "[    1.000000] a\n               \n"},
		{"escapes", Record{Text: "\x00\x1f\x7f\xc3\xa9 \t\r\v\f"}, `[    0.000000] \x00\x1f\x7f\xffffffc3\xffffffa9` + " \t\r\v\f\n"},
		{"caller and dictionary not printed", Record{Time: 1, Caller: "T1", Subsystem: "pci", Device: "+pci:0", Text: "t"},
			"[    0.000000] t\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendDmesg(nil, &tc.rec)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDmesgAllBytes compares with testdata/allbytes.dmesg: makedumpfile
// 1.7.2's output for two records holding bytes 0-127 and 128-255, cut from
// its --dump-dmesg of a real dump edited that way (as
// TestPatchedDumpMatchesMakedumpfile does).
func TestDmesgAllBytes(t *testing.T) {
	want, err := os.ReadFile("testdata/allbytes.dmesg")
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := make([]byte, 128), make([]byte, 128)
	for i := range lo {
		lo[i], hi[i] = byte(i), byte(128+i)
	}
	log := &Log{Records: []Record{
		{Time: 107364000, Text: string(lo)},
		{Time: 4863949000, Text: string(hi)},
	}}
	var got bytes.Buffer
	if err := log.WriteDmesg(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("got\n%q\nwant\n%q", got.String(), want)
	}
}

// TestDmesgSkipsEmptyLines: makedumpfile prints nothing for a record
// without a data block.
func TestDmesgSkipsEmptyLines(t *testing.T) {
	log := &Log{Records: []Record{{Text: "a"}, {noData: true}, {Text: ""}, {Text: "b"}}}
	var got bytes.Buffer
	if err := log.WriteDmesg(&got); err != nil {
		t.Fatal(err)
	}
	const want = "[    0.000000] a\n[    0.000000] \n[    0.000000] b\n"
	if got.String() != want {
		t.Fatalf("got %q", got.String())
	}
}

type failWriter struct{ n int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errWrite
	}
	return len(p), nil
}

func TestDmesgWriteError(t *testing.T) {
	log := &Log{Records: []Record{{Text: strings.Repeat("x", 3000)}, {Text: strings.Repeat("y", 3000)}}}
	for _, n := range []int{0, 100, 5000} {
		if err := log.WriteDmesg(&failWriter{n: n}); !errors.Is(err, errWrite) {
			t.Errorf("writer failing after %d bytes: err = %v", n, err)
		}
	}
}
