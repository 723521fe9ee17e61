package codec

import (
	"errors"
	"fmt"
	"strings"
)

// Codec names a per-page compression method.
type Codec uint8

// The codecs.
const (
	None Codec = iota
	Zlib
	LZO
	Snappy
	Zstd
)

// Page descriptor and header status bits for each codec, as makedumpfile's
// diskdump_mod.h defines them (DUMP_DH_COMPRESSED_*).
const (
	FlagZlib   uint32 = 0x1
	FlagLZO    uint32 = 0x2
	FlagSnappy uint32 = 0x4
	FlagZstd   uint32 = 0x20

	// FlagMask covers every compression bit.
	FlagMask = FlagZlib | FlagLZO | FlagSnappy | FlagZstd
)

// Errors, wrapped with detail.
var (
	// ErrUnsupported is returned for an unknown codec name or flag value,
	// and for a page size a codec cannot compress.
	ErrUnsupported = errors.New("codec: unsupported compression")
	// ErrCorrupt is returned for compressed data that does not decode.
	ErrCorrupt = errors.New("codec: corrupt compressed page")
	// ErrSize is returned when a page decodes to other than exactly the
	// block size.
	ErrSize = errors.New("codec: page decompresses to the wrong size")
)

var names = [...]string{None: "none", Zlib: "zlib", LZO: "lzo", Snappy: "snappy", Zstd: "zstd"}

var flags = [...]uint32{None: 0, Zlib: FlagZlib, LZO: FlagLZO, Snappy: FlagSnappy, Zstd: FlagZstd}

// String returns the codec's name as Parse accepts it.
func (c Codec) String() string {
	if int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Flag returns the descriptor flag for pages compressed with c (0 for None).
func (c Codec) Flag() uint32 {
	if int(c) < len(flags) {
		return flags[c]
	}
	return 0
}

// CanCompress reports whether NewCompressor accepts c.
func (c Codec) CanCompress() bool {
	switch c {
	case None, Zlib, LZO, Snappy, Zstd:
		return true
	}
	return false
}

// Parse returns the codec named s: "zstd", "lzo", "zlib", "snappy" or
// "none" (any case).
func Parse(s string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return None, nil
	case "zlib":
		return Zlib, nil
	case "snappy":
		return Snappy, nil
	case "zstd":
		return Zstd, nil
	case "lzo":
		return LZO, nil
	}
	return None, fmt.Errorf("%w: %q (want zstd, lzo, zlib, snappy or none)", ErrUnsupported, s)
}

// FromFlags returns the codec a page descriptor's flags name: None for 0,
// else exactly one compression bit must be set.
func FromFlags(f uint32) (Codec, error) {
	switch f {
	case 0:
		return None, nil
	case FlagZlib:
		return Zlib, nil
	case FlagLZO:
		return LZO, nil
	case FlagSnappy:
		return Snappy, nil
	case FlagZstd:
		return Zstd, nil
	}
	return None, fmt.Errorf("%w: page flags %#x", ErrUnsupported, f)
}
