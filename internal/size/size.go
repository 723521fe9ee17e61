package size

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Sentinel errors, wrapped with the text that failed.
var (
	ErrSyntax = errors.New("not a size")
	ErrNoUnit = errors.New("no unit")
	ErrZero   = errors.New("a size of zero")
	ErrRange  = errors.New("too large")
)

// Size is a count of bytes.
type Size uint64

type unit struct {
	name string
	mult uint64
}

// units, longest names first so that "GiB" is not read as "G".
var units = []unit{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40}, {"pib", 1 << 50}, {"eib", 1 << 60},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"pb", 1e15}, {"eb", 1e18},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"p", 1 << 50}, {"e", 1 << 60},
	{"b", 1},
}

// Parse reads a size such as 64G, 64GiB, 1.5T, 512M or 4096B. Decimal
// units (64GB) are read as the powers of 1000 they are; Note says what
// such a value is in binary units.
func Parse(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		if t == "" {
			return 0, fmt.Errorf("%w: empty", ErrSyntax)
		}
		if strings.Trim(t, "0.") == "" {
			return 0, fmt.Errorf("%q: %w", s, ErrZero)
		}
		return 0, fmt.Errorf("%q: %w: write %sG for GiB, %sM for MiB (or %sB for bytes)", s, ErrNoUnit, t, t, t)
	}
	num, name := t[:i], strings.TrimSpace(t[i:])
	var mult uint64
	for _, u := range units {
		if name == u.name {
			mult = u.mult
			break
		}
	}
	if num == "" || mult == 0 || strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("%q: %w: want a number and a unit, such as 64G, 64GiB, 1.5T or 512M", s, ErrSyntax)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).SetUint64(mult)))
	// Round to the nearest byte.
	n := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(r.Num(), big.NewInt(2)), r.Denom()), new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	switch {
	case n.Sign() == 0:
		return 0, fmt.Errorf("%q: %w", s, ErrZero)
	case !n.IsUint64():
		return 0, fmt.Errorf("%q: %w: more than %s", s, ErrRange, Size(math.MaxUint64))
	}
	return Size(n.Uint64()), nil
}

// Decimal reports whether s is written in a decimal unit (KB, MB, GB …).
func Decimal(s string) bool {
	t := strings.ToLower(strings.TrimSpace(s))
	return len(t) >= 2 && t[len(t)-1] == 'b' && strings.ContainsRune("kmgtpe", rune(t[len(t)-2])) &&
		!strings.HasSuffix(t, "ib")
}

// Note explains a size written in a decimal unit ("64GB is 64000000000
// bytes, 59.6 GiB; 64G or 64GiB is 64 GiB"); "" for binary units.
func Note(s string, v Size) string {
	if !Decimal(s) {
		return ""
	}
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t[:len(t)-2], " ")
	bin := num + strings.ToUpper(t[len(t)-2:len(t)-1])
	return fmt.Sprintf("%s is %d bytes (%s), powers of 1000; %s or %siB means powers of 1024", t, uint64(v), v, bin, bin)
}

// String formats the size in the largest binary unit that keeps it at 1 or
// more, with one decimal unless it is whole: "64 GiB", "1.5 TiB",
// "51.5 MiB", "512 B".
func (n Size) String() string {
	if n < 1024 {
		return fmt.Sprintf("%d B", uint64(n))
	}
	names := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i, div := 0, uint64(1024)
	for i+1 < len(names) && uint64(n)/div >= 1024 {
		i, div = i+1, div*1024
	}
	if uint64(n)%div == 0 {
		return fmt.Sprintf("%d %s", uint64(n)/div, names[i])
	}
	return fmt.Sprintf("%.1f %s", float64(n)/float64(div), names[i])
}

// Flag is a flag.Value holding a size; Set parses with Parse.
type Flag struct {
	Size Size
	Text string // as given; "" when not set
}

func (f *Flag) String() string { return f.Text }

func (f *Flag) Set(s string) error {
	v, err := Parse(s)
	if err != nil {
		return err
	}
	f.Size, f.Text = v, s
	return nil
}
