package s3dump

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Names of the objects of one crash, under <prefix>/<host>/<stamp>/.
const (
	DmesgObject  = "vmcore-dmesg.txt"
	VMCoreObject = "vmcore"
	MetaObject   = "meta.json"
)

// MachineIDPath is where the image holds the machine's id (build packs
// the host's /etc/machine-id): meta.json names the machine by it.
const MachineIDPath = "/etc/machine-id"

// MetaVersion is the version of meta.json this package writes.
const MetaVersion = 1

// Meta is meta.json: what a crash was, and whether its vmcore object is
// whole. It is written before the upload (Complete false, Status
// "uploading") and again after it.
type Meta struct {
	Version   int       `json:"version"`
	Host      string    `json:"host"`
	MachineID string    `json:"machine_id,omitempty"`
	Release   string    `json:"release"`
	CrashTime time.Time `json:"crash_time"`
	Panic     string    `json:"panic,omitempty"`
	DumpLevel int       `json:"dump_level"`
	Codec     string    `json:"codec"`
	// Size is the vmcore object's size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the composite checksum of the vmcore object: the SHA-256
	// of its parts' SHA-256 digests, then "-" and the number of parts.
	SHA256 string `json:"sha256,omitempty"`
	// HeadSize is the size of part 1; the other parts are PartSize
	// bytes, the last one fewer.
	HeadSize int64 `json:"head_size,omitempty"`
	PartSize int64 `json:"part_size,omitempty"`
	Parts    int   `json:"parts,omitempty"`
	// Complete says the vmcore object is whole and the dump in it is
	// not flagged incomplete.
	Complete bool `json:"complete"`
	// Status is saved, incomplete, failed, or uploading while the capture
	// runs (a meta.json that stays "uploading" is a capture cut off).
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Elapsed is the capture's time from start to the end of the upload.
	Elapsed float64 `json:"seconds,omitempty"`
}

// maxMeta bounds meta.json: real ones are under 2 KiB.
const maxMeta = 64 << 10

// maxParts is S3's limit on the parts of one upload.
const maxParts = 10000

// ErrMeta is wrapped by ParseMeta's errors.
var ErrMeta = errors.New("s3dump: bad meta.json")

// ParseMeta reads and checks a meta.json.
func ParseMeta(data []byte) (Meta, error) {
	var m Meta
	if len(data) > maxMeta {
		return m, fmt.Errorf("%w: %d bytes, more than %d", ErrMeta, len(data), maxMeta)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("%w: %v", ErrMeta, err)
	}
	if m.Version < 1 {
		return Meta{}, fmt.Errorf("%w: version %d", ErrMeta, m.Version)
	}
	if m.Size < 0 || m.HeadSize < 0 || m.PartSize < 0 || m.Parts < 0 || m.Parts > maxParts {
		return Meta{}, fmt.Errorf("%w: negative sizes or %d parts", ErrMeta, m.Parts)
	}
	if m.SHA256 != "" {
		if _, err := m.checkLayout(); err != nil {
			return Meta{}, err
		}
	}
	return m, nil
}

// checkLayout checks that the parts cover Size bytes and that SHA256 has
// the composite form for them; it returns the digest's 32 bytes.
func (m Meta) checkLayout() ([]byte, error) {
	hx, n, ok := strings.Cut(m.SHA256, "-")
	sum, err := hex.DecodeString(hx)
	parts, perr := strconv.Atoi(n)
	if !ok || err != nil || len(sum) != sha256.Size || perr != nil || parts != m.Parts {
		return nil, fmt.Errorf("%w: sha256 %q is not <64 hex digits>-%d", ErrMeta, m.SHA256, m.Parts)
	}
	switch {
	case m.Parts == 0:
		return nil, fmt.Errorf("%w: a checksum of no parts", ErrMeta)
	case m.Parts == 1 && m.HeadSize != m.Size:
		return nil, fmt.Errorf("%w: one part of %d bytes for a %d-byte object", ErrMeta, m.HeadSize, m.Size)
	case m.Parts > 1:
		rest := m.Size - m.HeadSize
		k := int64(m.Parts - 1)
		if m.PartSize <= 0 || rest <= 0 || rest > k*m.PartSize || rest <= (k-1)*m.PartSize {
			return nil, fmt.Errorf("%w: part 1 of %d bytes and %d parts of %d do not make %d bytes", ErrMeta, m.HeadSize, k, m.PartSize, m.Size)
		}
	}
	return sum, nil
}

// Marshal returns meta.json's bytes.
func (m Meta) Marshal() []byte {
	b, _ := json.MarshalIndent(m, "", "  ") // nothing in Meta fails to encode
	return append(b, '\n')
}

// Composite is S3's composite checksum of parts whose SHA-256 digests
// are given in order.
func Composite(digests [][sha256.Size]byte) string {
	h := sha256.New()
	for _, d := range digests {
		h.Write(d[:])
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(digests))
}

// HostName makes a crashed machine's node name fit a key: letters, digits,
// dots, hyphens and underscores, at most 64 of them; "unknown" when it
// has none.
func HostName(nodename string) string {
	var b strings.Builder
	for _, r := range nodename {
		if b.Len() == 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" || nodename == "(none)" {
		return "unknown"
	}
	return s
}

// CrashKey is the key prefix of one crash: prefix/host/stamp.
func CrashKey(prefix, host, stamp string) string {
	return strings.TrimPrefix(path.Join(prefix, host, stamp), "/")
}

// PanicLine finds the panic message in a kernel log: the text after
// "Kernel panic - not syncing: ", or the first line of an Oops.
func PanicLine(log []byte) string {
	for _, mark := range []string{"Kernel panic - not syncing: ", "Oops: ", "BUG: "} {
		i := bytes.Index(log, []byte(mark))
		if i < 0 {
			continue
		}
		line := log[i:]
		if mark == "Kernel panic - not syncing: " {
			line = line[len(mark):]
		}
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if len(line) > 200 {
			line = line[:200]
		}
		return strings.ToValidUTF8(string(line), "?")
	}
	return ""
}
