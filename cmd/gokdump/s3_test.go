package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/codec"
	"github.com/gokdump/gokdump/capture/pipeline"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/internal/s3dump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// uploadCrash saves a test vmcore into the bucket as the capture does:
// the dump in parts, then meta.json.
func uploadCrash(t *testing.T, c *s3dump.Client, key string, pages int, crashTime int64) s3dump.Meta {
	t.Helper()
	src, err := vmcore.Open(testVmcore(t, pages, crashTime))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	u, err := c.NewUpload(ctx, "dumps", key+"/vmcore", time.Now().Add(time.Minute), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Save(src, u, pipeline.Options{Level: 1, Codec: codec.None}); err != nil {
		t.Fatal(err)
	}
	r, err := u.Finish()
	if err != nil {
		t.Fatal(err)
	}
	m := s3dump.Meta{Version: 1, Host: "node-" + strconv.Itoa(pages), Release: "6.1.0-test", CrashTime: time.Unix(crashTime, 0).UTC(),
		Panic: "sysrq triggered crash", DumpLevel: 1, Codec: "none", Size: r.Size, SHA256: r.SHA256, HeadSize: r.HeadSize,
		PartSize: r.PartSize, Parts: r.Parts, Complete: true, Status: "saved"}
	if err := c.Put(ctx, "dumps", key+"/meta.json", m.Marshal(), "application/json", time.Now().Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestS3Commands: ls lists the crashes newest first from meta.json; fetch
// downloads one and checks it; info reads one in place, printing the
// bytes it read.
func TestS3Commands(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	uploadCrash(t, c, "fleet/node-3000/2026-01-02-03:04:05", 3000, 1767323045)
	uploadCrash(t, c, "fleet/node-200/2026-02-02-03:04:05", 200, 1770001445)
	// A capture cut off: meta.json says uploading, and there is no vmcore.
	cut := s3dump.Meta{Version: 1, Host: "node-cut", CrashTime: time.Unix(1760000000, 0), Status: "uploading"}
	c.Put(context.Background(), "dumps", "fleet/node-cut/x/meta.json", cut.Marshal(), "application/json", time.Now().Add(time.Minute), nil)

	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	os.WriteFile(creds, harness.S3CredentialsFile(srv.Credentials(false)), 0o600)
	cfg := filepath.Join(dir, "gokdump.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, "s3_endpoint = %q\ns3_credentials = %q\nca_file = %q\n", srv.Addr(), creds, srv.CAFile), 0o644)
	cli := func(args ...string) (string, string, int) {
		var out, errs strings.Builder
		code := run(args, &out, &errs)
		return out.String(), errs.String(), code
	}

	out, errs, code := cli("ls", "--config", cfg, "s3://dumps/fleet")
	if code != 0 {
		t.Fatalf("ls: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "node-200") || !strings.Contains(lines[2], "node-3000") || !strings.Contains(lines[3], "uploading") {
		t.Errorf("ls, newest first:\n%s", out)
	}
	if !regexp.MustCompile(`2026-01-02 03:04:05 +node-3000 +6\.1\.0-test +[0-9.]+ MiB +saved +sysrq triggered crash +s3://dumps/fleet/node-3000/2026-01-02-03:04:05`).MatchString(out) {
		t.Errorf("ls row:\n%s", out)
	}
	out, _, code = cli("ls", "--json", "--config", cfg, "s3://dumps/fleet/")
	var rows []struct {
		URL  string
		Meta *s3dump.Meta
	}
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 3 || rows[0].Meta.Host != "node-200" {
		t.Errorf("ls --json: %v\n%s", err, out)
	}

	got := filepath.Join(t.TempDir(), "crash")
	out, errs, code = cli("fetch", "--config", cfg, "s3://dumps/fleet/node-3000/2026-01-02-03:04:05", got)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("fetch: %d %s %s", code, out, errs)
	}
	if st, err := os.Stat(got); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("fetched dir: %v %v", st, err)
	}
	// What was fetched is a dump gokdump info reads.
	out, errs, code = cli("info", filepath.Join(got, "vmcore"))
	if code != 0 || !strings.Contains(out, "kdump, complete") {
		t.Errorf("info of the fetched dump: %d\n%s%s", code, out, errs)
	}
	local := out

	// info in place, through ranged GETs.
	out, errs, code = cli("info", "--config", cfg, "s3://dumps/fleet/node-3000/2026-01-02-03:04:05")
	if code != 0 || !strings.Contains(out, "kdump, complete") {
		t.Fatalf("info s3://: %d\n%s%s", code, out, errs)
	}
	m := regexp.MustCompile(`read (\d+) bytes of (\d+) in (\d+) ranged GETs`).FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("info does not say what it read: %s", errs)
	}
	read, _ := strconv.Atoi(m[1])
	total, _ := strconv.Atoi(m[2])
	if read >= total/2 {
		t.Errorf("info read %d of %d bytes", read, total)
	}
	// The same report but for the dump's name.
	trim := func(s string) string { return regexp.MustCompile(`(?m)^dump: .*\n`).ReplaceAllString(s, "") }
	if trim(out) != trim(local) {
		t.Errorf("info in place differs from info of the download:\n%s\n---\n%s", out, local)
	}
	t.Logf("info read %d of %d bytes in %s GETs", read, total, m[3])

	// A crash without a vmcore says so.
	if _, errs, code = cli("info", "--config", cfg, "s3://dumps/fleet/node-cut/x"); code == 0 || !strings.Contains(errs, "no vmcore object") {
		t.Errorf("info of a cut-off crash: %d %s", code, errs)
	}
	if _, errs, code = cli("fetch", "--config", cfg, "s3://dumps/fleet/node-cut/x", filepath.Join(t.TempDir(), "c")); code == 0 || !strings.Contains(errs, "status uploading") {
		t.Errorf("fetch of a cut-off crash: %d %s", code, errs)
	}
}
