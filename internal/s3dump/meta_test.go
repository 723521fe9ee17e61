package s3dump

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{Version: MetaVersion, Host: "node1", MachineID: "0123abcd", Release: "6.12.0", CrashTime: time.Unix(1700000000, 0).UTC(),
		Panic: "sysrq triggered crash", DumpLevel: 31, Codec: "zstd", Size: 12 << 20, HeadSize: 5 << 20, PartSize: 5 << 20, Parts: 3,
		SHA256: strings.Repeat("ab", 32) + "-3", Complete: true, Status: "saved"}
	got, err := ParseMeta(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got != m {
		t.Errorf("round trip: %+v, want %+v", got, m)
	}
}

func TestParseMetaBad(t *testing.T) {
	good := `"version":1,"host":"h","size":12582912,"head_size":5242880,"part_size":5242880,"parts":3`
	sum := `"sha256":"` + strings.Repeat("ab", 32)
	tests := []struct{ name, doc string }{
		{"not json", `{`},
		{"no version", `{"host":"h"}`},
		{"too many parts", `{"version":1,"parts":10001}`},
		{"negative size", `{"version":1,"size":-1}`},
		{"parts mismatch", `{` + good + `,` + sum + `-2"}`},
		{"short sum", `{` + good + `,"sha256":"abcd-3"}`},
		{"parts do not cover size", `{"version":1,"size":99999999,"head_size":5242880,"part_size":5242880,"parts":3,` + sum + `-3"}`},
		{"one part not the size", `{"version":1,"size":10,"head_size":9,"parts":1,` + sum + `-1"}`},
		{"huge", `{"version":1,"panic":"` + strings.Repeat("x", maxMeta) + `"}`},
	}
	for _, tt := range tests {
		if _, err := ParseMeta([]byte(tt.doc)); !errors.Is(err, ErrMeta) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := ParseMeta([]byte(`{` + good + `,` + sum + `-3"}`)); err != nil {
		t.Errorf("good: %v", err)
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		doc  string
		want Credentials
		err  string
	}{
		{doc: "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\nregion = x\n", want: Credentials{"AK", "SK", ""}},
		{doc: "aws_access_key_id=AK\naws_secret_access_key=\"SK\"\naws_session_token = TOK\n", want: Credentials{"AK", "SK", "TOK"}},
		{doc: "# c\n[a]\naws_access_key_id = AK\naws_secret_access_key = SK\n[b]\naws_access_key_id = OTHER\n", want: Credentials{"AK", "SK", ""}},
		{doc: "aws_access_key_id = AK\n", err: "needs"},
		{doc: "aws_access_key_id = AK\naws_access_key_id = AK\n", err: "twice"},
		{doc: "garbage\n", err: "not key = value"},
		{doc: "aws_access_key_id = A K\naws_secret_access_key = SK\n", err: "printable"},
	}
	for _, tt := range tests {
		got, err := ParseCredentials("creds", []byte(tt.doc))
		if tt.err != "" {
			if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.doc, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %+v, %v", tt.doc, got, err)
		}
	}
	// The secret is never in a message.
	_, err := ParseCredentials("creds", []byte("aws_secret_access_key = S3CRET\naws_secret_access_key = S3CRET\n"))
	if err == nil || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestHostNameAndPanic(t *testing.T) {
	for in, want := range map[string]string{"web-01.example": "web-01.example", "(none)": "unknown", "": "unknown", "a/b c": "a_b_c", "..": "unknown"} {
		if got := HostName(in); got != want {
			t.Errorf("HostName(%q) = %q, want %q", in, got, want)
		}
	}
	log := []byte("[    1.0] x\n[    2.0] Kernel panic - not syncing: sysrq triggered crash\n[ 2.1] CPU: 0\n")
	if got := PanicLine(log); got != "sysrq triggered crash" {
		t.Errorf("PanicLine = %q", got)
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"host":"h","size":12582912,"head_size":5242880,"part_size":5242880,"parts":3,"sha256":"` + strings.Repeat("ab", 32) + `-3"}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b)
		if err != nil {
			return
		}
		// What parses survives a round trip, and its parts fit S3's limit.
		if m.Parts > maxParts {
			t.Fatalf("%d parts", m.Parts)
		}
		if _, err := ParseMeta(m.Marshal()); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredentials("f", b)
		if err == nil && (c.AccessKey == "" || c.SecretKey == "") {
			t.Fatalf("accepted without keys: %+v", c)
		}
	})
}
