package filter

import (
	"errors"
	"testing"
)

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
		ok   bool
	}{
		{"0", 0, true},
		{"31", 31, true},
		{" 17 ", 17, true},
		{"32", 0, false},
		{"-1", 0, false},
		{"0x1f", 0, false},
		{"", 0, false},
	} {
		got, err := ParseLevel(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseLevel(%q) = %d, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrLevel) {
			t.Errorf("ParseLevel(%q): %v does not wrap ErrLevel", tc.in, err)
		}
	}
	if !Level(31).Has(ExcludeZero|ExcludeFree) || Level(16).Has(ExcludeZero) {
		t.Error("Has")
	}
}
