package qemutests

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/s3dump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// The s3 target: a real crash uploaded from the capture kernel to
// versitygw, which the harness runs on the host's 127.0.0.1 with TLS (a
// CA made for the test); the guest reaches it through QEMU's user-mode
// network at harness.S3Addr only.

// s3Server starts versitygw with a bucket "dumps", stopped at the test's
// end.
func s3Server(t *testing.T) *harness.Versity {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	return harness.VersityFor(t, "dumps", net.ParseIP(harness.S3Addr))
}

// s3Spec is a crash onto srv with more config lines.
func s3Spec(line string, srv *harness.Versity, wrongSecret bool, extra string) harness.Spec {
	spec := harness.Spec{Line: line, Dbg: true, Config: "device_timeout = \"90s\"\n" + extra}
	harness.S3Target(srv, wrongSecret).Apply(&spec)
	return spec
}

// s3CLI runs gokdump on the host with a config naming srv.
func s3CLI(t *testing.T, srv *harness.Versity) func(args ...string) (string, string, error) {
	t.Helper()
	cli, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "s3-credentials")
	os.WriteFile(creds, harness.S3CredentialsFile(srv.Credentials(false)), 0o600)
	cfg := filepath.Join(dir, "gokdump.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, "s3_endpoint = %q\ns3_credentials = %q\nca_file = %q\n", srv.Addr(), creds, srv.CAFile), 0o644)
	return func(args ...string) (string, string, error) {
		args = append([]string{args[0], "--config", cfg}, args[1:]...)
		var out, errs strings.Builder
		c := exec.Command(cli, args...)
		c.Stdout, c.Stderr = &out, &errs
		err := c.Run()
		return out.String(), errs.String(), err
	}
}

// TestNetS3: on the newest kernel, the dump is uploaded as a kdump object
// in parts; gokdump ls lists it from meta.json; gokdump info reads it in
// place with less than 2 MiB of ranged GETs; gokdump fetch downloads it
// (sha256 checked), and it opens in drgn with the log vmcore-dmesg.txt
// holds.
func TestNetS3(t *testing.T) {
	srv := s3Server(t)
	r := crash(t, s3Spec("latest", srv, false, ""))
	o := outcome(t, r, "saved")
	t.Logf("%s to s3: %d bytes, phases:\n%s", r.Kernel.KVer, o.Bytes, r.PhaseReport())
	m := regexp.MustCompile(`^s3://dumps/(fleet/[^/]+/[0-9-]+-[0-9:]+)/vmcore$`).FindStringSubmatch(o.Path)
	if m == nil {
		t.Fatalf("path %q, want s3://dumps/fleet/<host>/<time>/vmcore", o.Path)
	}
	crashURL := "s3://dumps/" + m[1]
	lineAt(t, r, `s3: \d+ bytes in \d+ parts \(part 1: \d+ bytes, sent last`)
	cli := s3CLI(t, srv)

	out, errs, err := cli("ls", "--json", "s3://dumps/fleet")
	var rows []struct {
		URL  string
		Meta *s3dump.Meta
	}
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0].Meta == nil {
		t.Fatalf("gokdump ls --json: %v %s\n%s", err, errs, out)
	}
	meta := rows[0].Meta
	if rows[0].URL != crashURL || !meta.Complete || meta.Status != "saved" || meta.Release != r.Kernel.KVer ||
		meta.Panic != "sysrq triggered crash" || meta.Size != o.Bytes || meta.DumpLevel != 31 || meta.Codec != "zstd" {
		t.Errorf("meta.json: %+v (url %s)", meta, rows[0].URL)
	}
	if out, _, err := cli("ls", "s3://dumps/fleet"); err != nil || !strings.Contains(out, crashURL) || !strings.Contains(out, "saved") {
		t.Errorf("gokdump ls: %v\n%s", err, out)
	} else {
		t.Logf("gokdump ls:\n%s", out)
	}

	out, errs, err = cli("info", crashURL)
	if err != nil || !strings.Contains(out, "kdump, complete") || !strings.Contains(out, "sysrq triggered crash") {
		t.Errorf("gokdump info %s: %v\n%s%s", crashURL, err, out, errs)
	}
	read := regexp.MustCompile(`read (\d+) bytes of (\d+) in (\d+) ranged GETs`).FindStringSubmatch(errs)
	if read == nil {
		t.Fatalf("info does not say what it read: %s", errs)
	}
	if n, _ := strconv.Atoi(read[1]); n >= 2<<20 {
		t.Errorf("gokdump info read %d bytes of the 1 GiB guest's dump; the issue allows < 2 MiB", n)
	}
	t.Logf("gokdump info %s: %s", crashURL, strings.TrimSpace(errs))
	_, errs, err = cli("dmesg", crashURL)
	if err != nil {
		t.Errorf("gokdump dmesg %s: %v %s", crashURL, err, errs)
	}
	t.Logf("gokdump dmesg %s: %s", crashURL, strings.TrimSpace(errs))

	dir := filepath.Join(t.TempDir(), "crash")
	if out, errs, err := cli("fetch", crashURL, dir); err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("gokdump fetch: %v\n%s%s", err, out, errs)
	}
	checkNetDump(t, r, filepath.Join(dir, "vmcore"))
	if n, err := mustClient(t, srv).PendingUploads(t.Context(), "dumps", ""); n != 0 || err != nil {
		t.Errorf("%d multipart uploads left (%v)", n, err)
	}
}

func mustClient(t *testing.T, srv *harness.Versity) *s3dump.Client {
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNetS3Failures: refused keys end in FAILED naming the endpoint and
// S3's error code, nothing retried; a server that is down sends the dump
// to the fallback disk.
func TestNetS3Failures(t *testing.T) {
	t.Run("wrong-secret", func(t *testing.T) {
		t.Parallel()
		srv := s3Server(t)
		spec := s3Spec("latest", srv, true, "failure_action = \"poweroff\"\n")
		spec.Dbg = false
		r := crash(t, spec)
		o := outcome(t, r, "FAILED")
		wantAction(t, o, "poweroff", "Power down")
		for _, s := range []string{"https://" + harness.S3Addr, "SignatureDoesNotMatch"} {
			if !strings.Contains(o.Reason, s) {
				t.Errorf("reason %q lacks %q", o.Reason, s)
			}
		}
		if strings.Contains(r.Serial(), "trying again") {
			t.Error("refused keys were tried again")
		}
		if strings.Contains(r.Serial(), harness.S3SecretKey) || strings.Contains(r.Serial(), "not-the-secret") {
			t.Error("a secret is on the console")
		}
	})
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		srv := s3Server(t)
		srv.Stop() // the port is forwarded to, and nothing answers
		spec := s3Spec("latest", srv, false, "failure_action = \"fallback\"\nfallback_target = \"LABEL=GOKDUMP\"\n")
		spec.Config = strings.Replace(spec.Config, `device_timeout = "90s"`, `device_timeout = "15s"`, 1)
		spec.Dbg = false
		r := crash(t, spec)
		o := outcome(t, r, "saved")
		lineAt(t, r, `s3: .*; trying again in 1s`)
		lineAt(t, r, `trying the fallback target LABEL=GOKDUMP`)
		file := extractDisk(t, r, 0, o.Path)
		checkDump(t, r, file, want{format: anydump.Kdump})
	})
}
