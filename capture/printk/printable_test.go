package printk

import "testing"

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text: 0xffff [ok]": "plain text: 0xffff [ok]",
		"tab\there":               `tab\x09here`,
		"\x00\x7f\xff":            `\x00\x7f\xff`,
		"\u0085 next line":        `\u0085 next line`,
		"ünïcødé":                 "ünïcødé",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
