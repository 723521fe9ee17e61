package vmcoreinfo

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sample is shaped like a real note: hex SYMBOLs without prefix, decimal
// SIZE/OFFSET, a negative NUMBER, an arm64-style 0x NUMBER, NUL padding.
const sample = "OSRELEASE=6.1.0-56-cloud-amd64\n" +
	"BUILD-ID=3b43fad5034874490492495d552c0af6a5fab235\n" +
	"PAGESIZE=4096\n" +
	"SYMBOL(init_uts_ns)=ffffffff9c3f9b60\n" +
	"SYMBOL(prefixed)=0xffffffff81000000\n" +
	"SYMBOL(bad)=ffffzz\n" +
	"SYMBOL(empty)=\n" +
	"SYMBOL(toolong)=1ffffffffffffffff\n" +
	"SIZE(page)=64\n" +
	"SIZE(bad)=6four\n" +
	"OFFSET(page.flags)=0\n" +
	"OFFSET(page._mapcount)=48\n" +
	"LENGTH(mem_section)=2048\n" +
	"LENGTH(neg)=-1\n" +
	"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\n" +
	"NUMBER(phys_base)=-622854144\n" +
	"NUMBER(VMALLOC_START)=0xffffca2700000000\n" +
	"NUMBER(kimage_voffset)=0xffffbfff80000000\n" +
	"NUMBER(badhex)=0xnothex\n" +
	"NUMBER(huge)=18446744073709551615\n" +
	"NUMBER(toohuge)=18446744073709551616\n" +
	"NUMBER(spaced)= 42 \r\n" +
	"KERNELOFFSET=19800000\n" +
	"CRASHTIME=1795782722\n" +
	"line without equals sign\n" +
	"=value without key\n" +
	"A=b=c\n" +
	"\x00\x00\x00\x00"

func parseSample(t *testing.T) *Info {
	t.Helper()
	info, err := Parse([]byte(sample))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return info
}

func TestAccessors(t *testing.T) {
	info := parseSample(t)
	type result struct {
		v  any
		ok bool
	}
	u := func(v uint64, ok bool) result { return result{v, ok} }
	i := func(v int64, ok bool) result { return result{v, ok} }
	s := func(v string, ok bool) result { return result{v, ok} }
	tests := []struct {
		name string
		got  result
		want result
	}{
		{"Symbol hex", u(info.Symbol("init_uts_ns")), result{uint64(0xffffffff9c3f9b60), true}},
		{"Symbol 0x prefix", u(info.Symbol("prefixed")), result{uint64(0xffffffff81000000), true}},
		{"Symbol malformed", u(info.Symbol("bad")), result{uint64(0), false}},
		{"Symbol empty", u(info.Symbol("empty")), result{uint64(0), false}},
		{"Symbol overflow", u(info.Symbol("toolong")), result{uint64(0), false}},
		{"Symbol missing", u(info.Symbol("nosuch")), result{uint64(0), false}},
		{"Size", i(info.Size("page")), result{int64(64), true}},
		{"Size malformed", i(info.Size("bad")), result{int64(0), false}},
		{"Size missing", i(info.Size("zone")), result{int64(0), false}},
		{"Offset zero", i(info.Offset("page.flags")), result{int64(0), true}},
		{"Offset", i(info.Offset("page._mapcount")), result{int64(48), true}},
		{"Offset missing", i(info.Offset("page.lru")), result{int64(0), false}},
		{"Length", i(info.Length("mem_section")), result{int64(2048), true}},
		{"Length negative", i(info.Length("neg")), result{int64(-1), true}},
		{"Number negative", i(info.Number("PAGE_BUDDY_MAPCOUNT_VALUE")), result{int64(-129), true}},
		{"Number negative phys_base", i(info.Number("phys_base")), result{int64(-622854144), true}},
		{"Number 0x", i(info.Number("VMALLOC_START")), result{int64(-0x0000_35d9_0000_0000), true}},
		{"Number 0x arm64", i(info.Number("kimage_voffset")), result{int64(-0x0000_4000_8000_0000), true}},
		{"Number 0x malformed", i(info.Number("badhex")), result{int64(0), false}},
		{"Number above MaxInt64", i(info.Number("huge")), result{int64(-1), true}},
		{"Number above MaxUint64", i(info.Number("toohuge")), result{int64(0), false}},
		{"Number spaces and CR", i(info.Number("spaced")), result{int64(42), true}},
		{"Number missing", i(info.Number("nosuch")), result{int64(0), false}},
		{"PageSize", i(info.PageSize()), result{int64(4096), true}},
		{"KernelOffset", u(info.KernelOffset()), result{uint64(0x19800000), true}},
		{"CrashTime", i(info.CrashTime()), result{int64(1795782722), true}},
		{"Get", s(info.Get("SYMBOL(init_uts_ns)")), result{"ffffffff9c3f9b60", true}},
		{"Get value with =", s(info.Get("A")), result{"b=c", true}},
		{"Get raw keeps CR", s(info.Get("NUMBER(spaced)")), result{" 42 \r", true}},
		{"Get missing", s(info.Get("SYMBOL(nosuch)")), result{"", false}},
		{"Get line without =", s(info.Get("line without equals sign")), result{"", false}},
		{"OSRelease", result{info.OSRelease(), true}, result{"6.1.0-56-cloud-amd64", true}},
		{"BuildID", result{info.BuildID(), true}, result{"3b43fad5034874490492495d552c0af6a5fab235", true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, %v; want %v, %v", tt.got.v, tt.got.ok, tt.want.v, tt.want.ok)
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct {
		val  string
		want int64
		ok   bool
	}{
		{"4096", 4096, true},
		{"65536", 65536, true},
		{"0x4000", 16384, true},
		{"1", 1, true}, // a power of two; callers bound it further
		{"3000", 0, false},
		{"4097", 0, false},
		{"0", 0, false},
		{"-4096", 0, false},
		{"", 0, false},
		{"four", 0, false},
	}
	for _, tt := range tests {
		info, err := Parse([]byte("PAGESIZE=" + tt.val + "\n"))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.val, err)
		}
		got, ok := info.PageSize()
		if got != tt.want || ok != tt.ok {
			t.Errorf("PAGESIZE=%q: got %d, %v; want %d, %v", tt.val, got, ok, tt.want, tt.ok)
		}
	}
	info, _ := Parse([]byte("OSRELEASE=x\n"))
	if _, ok := info.PageSize(); ok {
		t.Error("PageSize ok without PAGESIZE")
	}
}

func TestEmptyValues(t *testing.T) {
	info, err := Parse([]byte("OSRELEASE=x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.BuildID(); got != "" {
		t.Errorf("BuildID without BUILD-ID = %q", got)
	}
	if _, ok := info.KernelOffset(); ok {
		t.Error("KernelOffset ok without KERNELOFFSET")
	}
	if _, ok := info.CrashTime(); ok {
		t.Error("CrashTime ok without CRASHTIME")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"nil", nil, ErrEmpty},
		{"only NULs", make([]byte, 4096), ErrEmpty},
		{"no =", []byte("just text\nmore text\n"), ErrEmpty},
		{"empty keys", []byte("=1\n=2\n"), ErrEmpty},
		{"entries after NUL are ignored", []byte("\x00A=1\n"), ErrEmpty},
		{"over MaxSize", bytes.Repeat([]byte("A=1\n"), MaxSize/4+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Parse(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse: got %v, %v; want %v", info, err, tt.want)
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	// Exactly MaxSize bytes is accepted; the note is a page in practice.
	data := bytes.Repeat([]byte("A=1\n"), MaxSize/4)
	if len(data) != MaxSize {
		t.Fatalf("test data is %d bytes", len(data))
	}
	if _, err := Parse(data); err != nil {
		t.Fatalf("Parse of MaxSize bytes: %v", err)
	}
	_, err := Parse(append(data, 'x'))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "65537") {
		t.Fatalf("Parse of MaxSize+1 bytes: %v", err)
	}
}

func TestNULPadding(t *testing.T) {
	info, err := Parse([]byte("OSRELEASE=6.1\nPAGESIZE=4096\n\x00\x00\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(info.Raw()), "OSRELEASE=6.1\nPAGESIZE=4096\n"; got != want {
		t.Errorf("Raw = %q, want %q", got, want)
	}
	if got := info.OSRelease(); got != "6.1" {
		t.Errorf("OSRelease = %q", got)
	}
	// Unterminated last line before the padding still counts.
	info, err = Parse([]byte("A=1\nB=2\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := info.Get("B"); !ok || v != "2" {
		t.Errorf("B = %q, %v", v, ok)
	}
}

func TestRepeatedKeysAndOrder(t *testing.T) {
	info, err := Parse([]byte("B=1\nA=2\nB=3\nC=4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Keys(), []string{"B", "A", "C"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
	if v, _ := info.Get("B"); v != "3" {
		t.Errorf("repeated key: B = %q, want the last value 3", v)
	}
	// Keys returns a copy.
	k := info.Keys()
	k[0] = "changed"
	if info.Keys()[0] != "B" {
		t.Error("Keys exposes internal slice")
	}
	if got, want := info.String(), "A=2\nB=3\nC=4\n"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestRawIsCopy(t *testing.T) {
	data := []byte("A=1\n")
	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	data[2] = '9'
	if v, _ := info.Get("A"); v != "1" {
		t.Errorf("entries alias the input: A = %q", v)
	}
	if string(info.Raw()) != "A=1\n" {
		t.Errorf("Raw aliases the input: %q", info.Raw())
	}
}
