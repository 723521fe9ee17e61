package vmcoreinfo

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// MaxSize bounds the note we accept. The kernel's buffer is one page
// (VMCOREINFO_BYTES); anything far larger is not a VMCOREINFO note.
const MaxSize = 1 << 16

// ErrTooLarge is returned for data over MaxSize.
var ErrTooLarge = errors.New("vmcoreinfo: note too large")

// ErrEmpty is returned when the data holds no KEY=VALUE line.
var ErrEmpty = errors.New("vmcoreinfo: no entries")

// Info is a parsed VMCOREINFO note.
type Info struct {
	raw     []byte
	entries map[string]string
	order   []string
}

// Parse parses the descriptor of a VMCOREINFO note. Lines without '=' and
// NUL padding are ignored; when a key repeats, the last value wins, as in
// the kernel's own readers.
func Parse(data []byte) (*Info, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	if i := strings.IndexByte(string(data), 0); i >= 0 {
		data = data[:i]
	}
	info := &Info{raw: append([]byte(nil), data...), entries: make(map[string]string)}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		if _, seen := info.entries[k]; !seen {
			info.order = append(info.order, k)
		}
		info.entries[k] = v
	}
	if len(info.entries) == 0 {
		return nil, ErrEmpty
	}
	return info, nil
}

// Raw returns the note text as parsed (without trailing NUL padding).
func (i *Info) Raw() []byte { return i.raw }

// Keys returns the keys in the order they first appear.
func (i *Info) Keys() []string { return append([]string(nil), i.order...) }

// Get returns the raw value of key, e.g. Get("SYMBOL(init_uts_ns)").
func (i *Info) Get(key string) (string, bool) {
	v, ok := i.entries[key]
	return v, ok
}

func (i *Info) hex(key string) (uint64, bool) {
	v, ok := i.entries[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(v), "0x"), 16, 64)
	if err != nil {
		// ParseUint returns the maximum value on overflow; report none.
		return 0, false
	}
	return n, true
}

func (i *Info) dec(key string) (int64, bool) {
	v, ok := i.entries[key]
	if !ok {
		return 0, false
	}
	v = strings.TrimSpace(v)
	if h, ok := strings.CutPrefix(v, "0x"); ok {
		// arm64 prints a few NUMBER()s with 0x%llx (PHYS_OFFSET,
		// kimage_voffset); the prefix says which.
		u, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			return 0, false
		}
		return int64(u), true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		// NUMBER() of an unsigned long above MaxInt64 prints as a large
		// decimal (e.g. PAGE_OFFLINE_MAPCOUNT_VALUE on older kernels).
		u, uerr := strconv.ParseUint(v, 10, 64)
		if uerr != nil {
			return 0, false
		}
		return int64(u), true
	}
	return n, true
}

// Symbol returns SYMBOL(name), a kernel virtual address.
func (i *Info) Symbol(name string) (uint64, bool) { return i.hex("SYMBOL(" + name + ")") }

// Size returns SIZE(name), a structure or type size in bytes.
func (i *Info) Size(name string) (int64, bool) { return i.dec("SIZE(" + name + ")") }

// Offset returns OFFSET(name), e.g. Offset("page.flags").
func (i *Info) Offset(name string) (int64, bool) { return i.dec("OFFSET(" + name + ")") }

// Length returns LENGTH(name), an array length.
func (i *Info) Length(name string) (int64, bool) { return i.dec("LENGTH(" + name + ")") }

// Number returns NUMBER(name): decimal, or hexadecimal when the kernel
// printed it with a 0x prefix.
func (i *Info) Number(name string) (int64, bool) { return i.dec("NUMBER(" + name + ")") }

// OSRelease returns OSRELEASE, the crashed kernel's `uname -r`.
func (i *Info) OSRelease() string { return i.entries["OSRELEASE"] }

// BuildID returns BUILD-ID when the kernel exports it (5.9+).
func (i *Info) BuildID() string { return i.entries["BUILD-ID"] }

// PageSize returns PAGESIZE.
func (i *Info) PageSize() (int64, bool) {
	n, ok := i.dec("PAGESIZE")
	if !ok || n <= 0 || n&(n-1) != 0 {
		return 0, false
	}
	return n, true
}

// KernelOffset returns KERNELOFFSET, the KASLR slide of the kernel image.
func (i *Info) KernelOffset() (uint64, bool) { return i.hex("KERNELOFFSET") }

// CrashTime returns CRASHTIME, seconds since the epoch when the kernel
// crashed, which crash_save_vmcoreinfo() appends at panic time.
func (i *Info) CrashTime() (int64, bool) { return i.dec("CRASHTIME") }

// String formats the entries sorted by key, for debugging.
func (i *Info) String() string {
	keys := i.Keys()
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, i.entries[k])
	}
	return b.String()
}
