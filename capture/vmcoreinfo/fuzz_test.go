package vmcoreinfo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVMCOREINFO parses the first 1 KiB of its input, seeded with pieces
// of the notes of real dumps. The cut keeps the fuzzer's minimizing of new
// inputs short (its runs grow with the square of the length); a note's
// structure shows in fewer bytes, and the size limit has its own test.
func FuzzVMCOREINFO(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("PAGESIZE=0x1000\nNUMBER(x)=-0x1\n\x00\x00"))
	f.Add([]byte("=\n==\nA=\n"))
	// The notes of real dumps, one file per kernel line, in pieces.
	names, _ := filepath.Glob(filepath.Join("testdata", "*.notes"))
	for _, name := range names {
		notes, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for len(notes) > 0 {
			n := min(len(notes), 256)
			if i := bytes.LastIndexByte(notes[:n], '\n'); i > 0 && n < len(notes) {
				n = i + 1
			}
			f.Add(notes[:n])
			notes = notes[n:]
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:min(len(data), 1024)]
		info, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			if info != nil {
				t.Fatal("non-nil Info with an error")
			}
			return
		}
		if len(info.Raw()) > len(data) || strings.IndexByte(string(info.Raw()), 0) >= 0 {
			t.Fatalf("Raw %q from %q", info.Raw(), data)
		}
		keys := info.Keys()
		if len(keys) == 0 {
			t.Fatal("no keys without ErrEmpty")
		}
		seen := make(map[string]bool)
		for _, k := range keys {
			if k == "" || strings.ContainsAny(k, "=\n") || seen[k] {
				t.Fatalf("bad or repeated key %q", k)
			}
			seen[k] = true
			v, ok := info.Get(k)
			if !ok || strings.Contains(v, "\n") {
				t.Fatalf("Get(%q) = %q, %v", k, v, ok)
			}
			if !strings.Contains(info.String(), k+"="+v+"\n") {
				t.Fatalf("String lacks %q", k)
			}
		}
		if ps, ok := info.PageSize(); ok && (ps <= 0 || ps&(ps-1) != 0) {
			t.Fatalf("PageSize %d", ps)
		}
		// Accessors never panic on what the note holds.
		for _, k := range keys {
			name := k
			if i := strings.IndexByte(k, '('); i >= 0 && strings.HasSuffix(k, ")") {
				name = k[i+1 : len(k)-1]
			}
			info.Symbol(name)
			info.Size(name)
			info.Offset(name)
			info.Length(name)
			info.Number(name)
		}
		info.KernelOffset()
		info.CrashTime()
		info.OSRelease()
		info.BuildID()
	})
}
