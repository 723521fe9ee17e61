//go:build !nos3

package collect

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/capture/filter"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/s3dump"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// The s3 target against a real S3-compatible server (versitygw on
// 127.0.0.1, TLS with a CA of the test's own): everything but the capture
// kernel's network, which netWorld fakes.

// s3Config is a config whose target is s3://dumps/fleet on srv.
func s3Config(t *testing.T, srv *harness.Versity, wrongSecret bool, set func(*config.Config)) *config.Config {
	creds := filepath.Join(t.TempDir(), "s3-credentials")
	if err := os.WriteFile(creds, harness.S3CredentialsFile(srv.Credentials(wrongSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	return testConfig(func(c *config.Config) {
		c.Target = "s3://dumps/fleet"
		c.S3Endpoint, c.S3Credentials, c.CAFile = srv.Addr(), creds, srv.CAFile
		c.DumpLevel = []filter.Level{1}
		c.DeviceTimeout = 5 * time.Second
		if set != nil {
			set(c)
		}
	})
}

func s3World(t *testing.T, pages int, disks ...*disk) (*Env, *world) {
	env, w, _ := netWorld(t, testCore(t, pages), disks...)
	return env, w
}

// TestS3Target: the dump goes into the bucket as a kdump object in parts
// (part 1 last), after vmcore-dmesg.txt, with a meta.json that says it is
// complete and whose checksum Fetch verifies.
func TestS3Target(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	env, w := s3World(t, 3000)
	cfg := s3Config(t, srv, false, func(c *config.Config) { c.Compress = config.CompressNone })
	res := Capture(env, cfg)
	if res.Status != StatusSaved {
		t.Fatalf("result %+v", res)
	}
	// The test core has no node name: the machine id (this machine's,
	// where it has one) names it.
	host := "unknown"
	if id, err := os.ReadFile(s3dump.MachineIDPath); err == nil && len(strings.TrimSpace(string(id))) >= 12 {
		host = "machine-" + strings.TrimSpace(string(id))[:12]
	}
	crash := "fleet/" + host + "/2025-11-27-12:20:00"
	if want := "s3://dumps/" + crash + "/vmcore"; res.Path != want {
		t.Errorf("path %q, want %q", res.Path, want)
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list, err := c.List(ctx, "dumps", "fleet")
	if err != nil || len(list) != 1 || list[0].Err != nil {
		t.Fatalf("List: %+v %v", list, err)
	}
	m := list[0].Meta
	if list[0].Key != crash || !m.Complete || m.Status != "saved" || m.Size != res.Bytes || m.Parts < 2 ||
		m.Panic != "sysrq triggered crash" || m.Release != "6.1.0-test" || m.DumpLevel != 1 || m.Codec != "none" {
		t.Errorf("meta.json %+v", m)
	}
	dir := filepath.Join(t.TempDir(), "got")
	if _, err := c.Fetch(ctx, "dumps", crash, dir, nil); err != nil {
		t.Fatal(err)
	}
	d, err := anydump.Open(filepath.Join(dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Format != anydump.Kdump || d.Incomplete {
		t.Errorf("dump %s, incomplete %v", d.Format, d.Incomplete)
	}
	dm, err := os.ReadFile(filepath.Join(dir, crashdir.DmesgFile))
	if err != nil || !bytes.Contains(dm, []byte("Kernel panic - not syncing: sysrq triggered crash")) {
		t.Errorf("%s: %q %v", crashdir.DmesgFile, dm, err)
	}
	if n, err := c.PendingUploads(ctx, "dumps", ""); n != 0 || err != nil {
		t.Errorf("%d uploads pending (%v)", n, err)
	}
	con := w.con.String()
	if !strings.Contains(con, "part 1: 5242880 bytes, sent last") {
		t.Errorf("the console does not say how the parts went")
	}
	// A second crash in the same second gets its own key.
	res = Capture(env, cfg)
	if res.Status != StatusSaved || !strings.Contains(res.Path, "2025-11-27-12:20:00-1/") {
		t.Errorf("second capture: %+v", res)
	}
}

// TestS3WrongSecret: refused keys fail the capture at once with FAILED,
// naming the endpoint and S3's error code; nothing is retried.
func TestS3WrongSecret(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	env, w := s3World(t, 100)
	cfg := s3Config(t, srv, true, func(c *config.Config) { c.DeviceTimeout = 20 * time.Second })
	t0 := time.Now()
	res := Capture(env, cfg)
	if res.Status != StatusFailed || !strings.Contains(res.Reason, "https://"+srv.Addr()) || !strings.Contains(res.Reason, "SignatureDoesNotMatch") {
		t.Fatalf("result %+v", res)
	}
	if el := time.Since(t0); el > 10*time.Second {
		t.Errorf("took %v: retried", el)
	}
	if strings.Contains(w.con.String(), "trying again") {
		t.Error("refused keys were tried again")
	}
	if strings.Contains(w.con.String(), harness.S3SecretKey) || strings.Contains(res.Reason, "not-the-secret") {
		t.Error("a secret is on the console")
	}
}

// TestS3ServerDown: nothing listens; the capture retries until
// device_timeout, then saves on the fallback disk.
func TestS3ServerDown(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	srv.Stop()
	spare := dirDisk(t, "vdb", "SPARE")
	env, w := s3World(t, 100, spare)
	cfg := s3Config(t, srv, false, func(c *config.Config) {
		c.DeviceTimeout = 5 * time.Second
		c.FailureAction = config.ActionFallback
		c.FallbackTarget = "LABEL=SPARE"
	})
	t0 := time.Now()
	res := Capture(env, cfg)
	if res.Status != StatusSaved || !strings.HasPrefix(res.Path, "/var/crash/") {
		t.Fatalf("result %+v", res)
	}
	if el := time.Since(t0); el < 2*time.Second || el > 15*time.Second {
		t.Errorf("gave up after %v with device_timeout 5s", el)
	}
	con := w.con.String()
	for _, s := range []string{"trying again in 1s", "connection refused", "trying the fallback target LABEL=SPARE"} {
		if !strings.Contains(con, s) {
			t.Errorf("console lacks %q", s)
		}
	}
}

// TestS3UploadFails: the server goes away while the pages are uploaded
// and comes back only after the parts' retries gave up: the upload is
// aborted (no parts left), meta.json says failed beside the log, and the
// dump goes to the fallback disk.
func TestS3UploadFails(t *testing.T) {
	srv := harness.VersityFor(t, "dumps")
	spare := dirDisk(t, "vdb", "SPARE")
	env, w := s3World(t, 3000, spare)
	var once sync.Once
	env.Hooks.Writing = func() {
		once.Do(func() {
			srv.Stop()
			go func() {
				time.Sleep(8 * time.Second)
				if err := srv.Restart(); err != nil {
					t.Error(err)
				}
			}()
		})
	}
	cfg := s3Config(t, srv, false, func(c *config.Config) {
		c.Compress = config.CompressNone
		c.TimeBudget = 12 * time.Second // parts are retried for 6 s
		c.FailureAction = config.ActionFallback
		c.FallbackTarget = "LABEL=SPARE"
	})
	res := Capture(env, cfg)
	if res.Status != StatusSaved || !strings.HasPrefix(res.Path, "/var/crash/") {
		t.Fatalf("result %+v", res)
	}
	con := w.con.String()
	for _, s := range []string{"the upload was aborted", "trying the fallback target LABEL=SPARE"} {
		if !strings.Contains(con, s) {
			t.Errorf("console lacks %q", s)
		}
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := c.PendingUploads(ctx, "dumps", ""); n != 0 || err != nil {
		t.Errorf("%d uploads left pending (%v)", n, err)
	}
	list, err := c.List(ctx, "dumps", "fleet")
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %+v %v", list, err)
	}
	m := list[0].Meta
	if m.Status != "failed" || m.Complete || m.SHA256 != "" || !strings.Contains(m.Reason, "part 2") {
		t.Errorf("meta.json %+v", m)
	}
	t.Logf("meta.json says: %s: %s", m.Status, m.Reason)
	if ok, _ := c.Exists(ctx, "dumps", list[0].Key+"/vmcore"); ok {
		t.Error("a vmcore object exists")
	}
	if ok, _ := c.Exists(ctx, "dumps", list[0].Key+"/vmcore-dmesg.txt"); !ok {
		t.Error("no vmcore-dmesg.txt")
	}
}
