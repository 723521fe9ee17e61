package config

import (
	"strings"
	"testing"
)

func TestParseS3URL(t *testing.T) {
	tests := []struct {
		in             string
		bucket, prefix string
		err            string
	}{
		{in: "s3://crash-dumps", bucket: "crash-dumps"},
		{in: "s3://crash-dumps/", bucket: "crash-dumps"},
		{in: "s3://crash.dumps/fleet/eu/", bucket: "crash.dumps", prefix: "fleet/eu"},
		{in: "s3://Crash/x", err: "not a bucket name"},
		{in: "s3://ab", err: "not a bucket name"},
		{in: "s3://a..b/x", err: "not a bucket name"},
		{in: "s3://dumps/a//b", err: "empty"},
		{in: "s3://dumps/a/../b", err: `".."`},
		{in: "s3://dumps/a b", err: "letters, digits"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTarget(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.Kind != KindS3 || got.Bucket != tt.bucket || got.Dir != tt.prefix || !got.Network() {
			t.Errorf("ParseTarget(%q) = %+v, %v", tt.in, got, err)
			continue
		}
		if again, err := ParseTarget(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q parses as %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

func TestParseS3Endpoint(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  string
	}{
		{in: "s3.example.com", want: "s3.example.com:443"},
		{in: "https://s3.example.com:9000/", want: "s3.example.com:9000"},
		{in: "10.0.2.100:9000", want: "10.0.2.100:9000"},
		{in: "[2001:db8::1]:9000", want: "[2001:db8::1]:9000"},
		{in: "[2001:db8::1]", want: "[2001:db8::1]:443"},
		{in: "http://s3.example.com", err: "plain http"},
		{in: "s3.example.com:0", err: "not 1..65535"},
		{in: "https://user@s3.example.com", err: "not host[:port]"},
		{in: "", err: "needs s3_endpoint"},
	}
	for _, tt := range tests {
		got, err := ParseS3Endpoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseS3Endpoint(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.HostPort() != tt.want {
			t.Errorf("ParseS3Endpoint(%q) = %v, %v; want %s", tt.in, got.HostPort(), err, tt.want)
		}
	}
}

// An s3 target takes its server from s3_endpoint, which it needs.
func TestS3TargetNeedsEndpoint(t *testing.T) {
	c, err := Parse([]byte("target = \"s3://dumps/fleet\"\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "s3_endpoint") {
		t.Errorf("Validate without s3_endpoint = %v", err)
	}
	c, err = Parse([]byte("target = \"s3://dumps/fleet\"\ns3_endpoint = \"10.0.2.100:9000\"\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets()
	if err != nil || len(ts) != 1 || ts[0].Host != "10.0.2.100" || ts[0].Port != 9000 || ts[0].Bucket != "dumps" {
		t.Errorf("Targets = %+v, %v", ts, err)
	}
}
