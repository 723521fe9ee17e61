package size

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Size
	}{
		{"64G", 64 << 30}, {"64GiB", 64 << 30}, {"64gib", 64 << 30}, {"64 GiB", 64 << 30}, {"64g", 64 << 30},
		{"64GB", 64e9}, {"1.5T", 3 << 39}, {"1.5TiB", 3 << 39}, {"512M", 512 << 20}, {"1k", 1024}, {"2T", 2 << 40},
		{"4096B", 4096}, {"0.5G", 512 << 20}, {"1.5KB", 1500}, {"1E", 1 << 60}, {"0.0000001K", 0},
	} {
		got, err := Parse(tt.in)
		if tt.want == 0 {
			if !errors.Is(err, ErrZero) {
				t.Errorf("Parse(%q) = %d, %v; want ErrZero", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		want error
		hint string
	}{
		{"100", ErrNoUnit, "100G for GiB"},
		{"0", ErrZero, ""},
		{"0G", ErrZero, ""},
		{"", ErrSyntax, ""},
		{"G", ErrSyntax, "64G"},
		{"x", ErrSyntax, ""},
		{"-1G", ErrSyntax, ""},
		{"1.2.3G", ErrSyntax, ""},
		{"64Q", ErrSyntax, ""},
		{"64GiBs", ErrSyntax, ""},
		{"20E", ErrRange, ""},
		{"1e3G", ErrSyntax, ""},
	} {
		_, err := Parse(tt.in)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.hint) {
			t.Errorf("Parse(%q): %v; want %v with %q", tt.in, err, tt.want, tt.hint)
		}
	}
}

func TestString(t *testing.T) {
	for n, want := range map[Size]string{
		512: "512 B", 1024: "1 KiB", 1536: "1.5 KiB", 112 << 20: "112 MiB", 54001664: "51.5 MiB",
		64 << 30: "64 GiB", 1 << 40: "1 TiB", 3 << 39: "1.5 TiB", 64e9: "59.6 GiB", 1 << 60: "1 EiB",
	} {
		if got := n.String(); got != want {
			t.Errorf("Size(%d) = %q, want %q", uint64(n), got, want)
		}
	}
}

func TestNote(t *testing.T) {
	v, _ := Parse("64GB")
	if n := Note("64GB", v); !strings.Contains(n, "64000000000 bytes (59.6 GiB)") || !strings.Contains(n, "64G or 64GiB") {
		t.Errorf("Note = %q", n)
	}
	for _, s := range []string{"64G", "64GiB", "4096B"} {
		if n := Note(s, 1); n != "" {
			t.Errorf("Note(%q) = %q", s, n)
		}
	}
}

func TestFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var f Flag
	fs.Var(&f, "ram", "")
	if err := fs.Parse([]string{"--ram", "1.5T"}); err != nil || f.Size != 3<<39 || f.Text != "1.5T" {
		t.Errorf("parse: %v %+v", err, f)
	}
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse([]string{"--ram", "100"}); err == nil || !strings.Contains(err.Error(), "no unit") {
		t.Errorf("bare number: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"64G", "1.5TiB", "100", "64GB", "0.5k", "9999999999999999999E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err == nil && v == 0 {
			t.Fatalf("Parse(%q) = 0 without error", s)
		}
		if err == nil {
			// What String prints parses back to about the same size:
			// one decimal of a unit is within 5% of it ("1.8 PiB" for
			// 2 PB, 1.3% off; 1.05 prints as "1.1").
			back, err := Parse(strings.ReplaceAll(v.String(), " ", ""))
			if err != nil {
				t.Fatalf("Parse(%q) of String %q: %v", s, v.String(), err)
			}
			if d := float64(back) - float64(v); d > float64(v)/20+1 || -d > float64(v)/20+1 {
				t.Fatalf("%q: %d printed %q reads %d", s, v, v.String(), back)
			}
		}
	})
}
