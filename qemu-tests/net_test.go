package qemutests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/capture/anydump"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/fixture"
	"github.com/gokdump/gokdump/qemu-tests/harness"
)

// The network targets: a real crash saved over the capture kernel's own
// network (virtio-net, a module, brought up by DHCP) to OpenSSH's sshd
// and to nfs-ganesha, both run by the harness on the host's 127.0.0.1.
// The guest is on QEMU's restricted user-mode network, where the only
// addresses it reaches are the guestfwd ones relayed to those servers.

// sshServer starts sshd for a test, stopped at its end.
func sshServer(t *testing.T, o harness.SSHDOptions) *harness.SSHD {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	return harness.SSHDFor(t, o)
}

// sshSpec is a crash whose target is dumps on s (see SSHD.Target), with
// more config lines.
func sshSpec(t *testing.T, line string, s *harness.SSHD, dumps, extra string, pin *harness.SSHD) harness.Spec {
	t.Helper()
	n, err := s.Target(dumps, pin)
	if err != nil {
		t.Fatal(err)
	}
	spec := harness.Spec{Line: line, Dbg: true, Config: "device_timeout = \"90s\"\n" + extra}
	n.Apply(&spec)
	return spec
}

// checkNetDump checks a dump that arrived over the network: our reader,
// gokdump info, drgn, and gokdump dmesg against vmcore-dmesg.txt.
func checkNetDump(t *testing.T, r *harness.Run, file string) {
	t.Helper()
	checkDump(t, r, file, want{format: anydump.Kdump})
	in, err := anydump.ReadInfo(file)
	if err != nil {
		t.Fatal(err)
	}
	if in.Panic != "Kernel panic - not syncing: sysrq triggered crash" || in.Release != r.Kernel.KVer || !in.Complete {
		t.Errorf("gokdump info: panic %q, release %q, complete %v", in.Panic, in.Release, in.Complete)
	}
	cli, err := harness.Gokdump(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cli, "info", file).CombinedOutput()
	if err != nil {
		t.Errorf("gokdump info: %v\n%s", err, out)
	}
	dm, err := exec.Command(cli, "dmesg", file).Output()
	if err != nil {
		t.Fatalf("gokdump dmesg: %v", err)
	}
	saved, err := os.ReadFile(filepath.Join(filepath.Dir(file), crashdir.DmesgFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dm, saved) {
		t.Errorf("gokdump dmesg (%d bytes) differs from the capture's %s (%d bytes)", len(dm), crashdir.DmesgFile, len(saved))
	}
	if st, _ := os.Stat(file); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, want 0600", file, st)
	}
	if st, _ := os.Stat(filepath.Dir(file)); st == nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dump directory: %v, want 0700", st)
	}
}

// TestNetSSH: the dump saved over SFTP on the newest kernel and on 6.1.
func TestNetSSH(t *testing.T) {
	for _, line := range []string{"latest", "6.1"} {
		t.Run(line, func(t *testing.T) {
			t.Parallel()
			s := sshServer(t, harness.SSHDOptions{})
			dumps := filepath.Join(t.TempDir(), "crash")
			r := crash(t, sshSpec(t, line, s, dumps, "", nil))
			o := outcome(t, r, "saved")
			t.Logf("%s over ssh: %d bytes, phases:\n%s", r.Kernel.KVer, o.Bytes, r.PhaseReport())
			if !strings.HasPrefix(o.Path, dumps+"/") || !strings.HasSuffix(o.Path, "/"+crashdir.VMCore) {
				t.Fatalf("path %q, want %s/<time>/vmcore", o.Path, dumps)
			}
			lineAt(t, r, `network: .* is up with 10\.0\.2\.15/24`)
			checkNetDump(t, r, o.Path)
			if harness.KeyShown(t, s.ClientKey, r.Serial()) {
				t.Error("a line of the private key is on the console")
			}
		})
	}
}

// nfsServer starts ganesha serving export, stopped at the test's end.
func nfsServer(t *testing.T, export string) *harness.Ganesha {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU crash tests are skipped with -short")
	}
	return harness.GaneshaFor(t, export)
}

func nfsSpec(line string, g *harness.Ganesha, extra string) harness.Spec {
	spec := harness.Spec{Line: line, Dbg: true, Config: "device_timeout = \"90s\"\n" + extra}
	g.Target().Apply(&spec)
	return spec
}

// TestNetNFS: the dump saved on an NFS export on the newest kernel and on
// 6.1.
func TestNetNFS(t *testing.T) {
	for _, line := range []string{"latest", "6.1"} {
		t.Run(line, func(t *testing.T) {
			t.Parallel()
			export := t.TempDir()
			g := nfsServer(t, export)
			r := crash(t, nfsSpec(line, g, ""))
			o := outcome(t, r, "saved")
			t.Logf("%s over nfs: %d bytes, phases:\n%s", r.Kernel.KVer, o.Bytes, r.PhaseReport())
			lineAt(t, r, `mounted 10\.0\.2\.101:/export with NFS 4\.1`)
			file := filepath.Join(export, o.Path)
			if filepath.Dir(filepath.Dir(file)) != export || filepath.Base(file) != crashdir.VMCore {
				t.Fatalf("path %q, want /<time>/vmcore in the export", o.Path)
			}
			checkNetDump(t, r, file)
		})
	}
}

// TestNetFailures: the server is down (the dump goes to the local
// fallback disk), its host key is not the pinned one (FAILED, nothing
// sent), its filesystem is too small (INCOMPLETE, readable).
func TestNetFailures(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		s := sshServer(t, harness.SSHDOptions{})
		s.Stop() // the port is forwarded to, and nothing answers
		spec := sshSpec(t, "latest", s, "/srv/crash",
			"failure_action = \"fallback\"\nfallback_target = \"LABEL=GOKDUMP\"\n", nil)
		spec.Config = strings.Replace(spec.Config, `device_timeout = "90s"`, `device_timeout = "20s"`, 1)
		r := crash(t, spec)
		o := outcome(t, r, "saved")
		wantAction(t, o, "reboot", "Restarting system")
		lineAt(t, r, `ssh 10\.0\.2\.100:22: .*; trying again in 1s`)
		lineAt(t, r, `trying the fallback target LABEL=GOKDUMP`)
		file := extractDisk(t, r, 0, o.Path)
		checkDump(t, r, file, want{format: anydump.Kdump})
	})
	t.Run("hostkey", func(t *testing.T) {
		t.Parallel()
		s := sshServer(t, harness.SSHDOptions{})
		other := sshServer(t, harness.SSHDOptions{})
		other.Stop()
		dumps := filepath.Join(t.TempDir(), "crash")
		spec := sshSpec(t, "latest", s, dumps, "failure_action = \"poweroff\"\n", other)
		spec.Dbg = false
		r := crash(t, spec)
		o := outcome(t, r, "FAILED")
		wantAction(t, o, "poweroff", "Power down")
		if !strings.Contains(o.Reason, "host key changed") || !strings.Contains(o.Reason, "nothing was sent") {
			t.Errorf("reason %q", o.Reason)
		}
		if _, err := os.Stat(dumps); !os.IsNotExist(err) {
			t.Errorf("something was made on the server: %v", err)
		}
		if strings.Contains(s.Log(), "Accepted publickey") {
			t.Errorf("the server saw a login")
		}
		if strings.Contains(r.Serial(), "trying again") {
			t.Errorf("a changed host key was tried again")
		}
	})
	t.Run("full", func(t *testing.T) {
		t.Parallel()
		s := sshServer(t, harness.SSHDOptions{})
		dumps := t.TempDir()
		umount, err := harness.SmallFS(dumps, 24)
		if err != nil {
			fixture.Missing(t, "no small filesystem for the server (a tmpfs mount needs root): %v", err)
		}
		t.Cleanup(umount)
		spec := sshSpec(t, "latest", s, dumps, "dump_level = [1]\n", nil)
		spec.MemMiB, spec.AnonMiB, spec.CacheMiB = 512, 16, -1
		r := crash(t, spec)
		o := outcome(t, r, "INCOMPLETE")
		if !strings.Contains(o.Reason, "full") || !strings.HasSuffix(o.Path, "/"+crashdir.VMCoreIncomplete) {
			t.Errorf("INCOMPLETE line: path %q reason %q", o.Path, o.Reason)
		}
		// Off the full tmpfs first: a reader that maps the file faults
		// in its holes, which a full tmpfs answers with SIGBUS.
		file := filepath.Join(t.TempDir(), crashdir.VMCoreIncomplete)
		if err := exec.Command("cp", "--sparse=always", o.Path, file).Run(); err != nil {
			t.Fatal(err)
		}
		d, err := anydump.Open(file)
		if err != nil {
			t.Fatalf("our reader does not open the incomplete dump: %v", err)
		}
		inc := d.Incomplete
		d.Close()
		if !inc {
			t.Error("the dump is not flagged incomplete")
		}
		got := drgnPartial(t, r, file)
		if !strings.HasPrefix(got["release"], r.Kernel.KVer) && !strings.Contains(got["release"], "FaultError") {
			t.Errorf("drgn: release %q", got["release"])
		}
	})
}

// TestNetMeasure is a measurement, not a check: with GOKDUMP_NET_MEASURE=1
// it crashes the same guest (newest kernel, 1 GiB) into a disk, over ssh,
// over nfs and into s3, and reports the time from the panic to the result
// line, the capture images' sizes, and which crashkernel= sizes save over
// ssh and into s3.
func TestNetMeasure(t *testing.T) {
	if os.Getenv("GOKDUMP_NET_MEASURE") != "1" {
		t.Skip("a measurement: GOKDUMP_NET_MEASURE=1 runs it")
	}
	line := "latest"
	type result struct {
		name  string
		spec  harness.Spec
		img   int64
		panic time.Duration
		o     harness.Outcome
	}
	disk := harness.Spec{Line: line}
	s := sshServer(t, harness.SSHDOptions{})
	sshS := sshSpec(t, line, s, filepath.Join(t.TempDir(), "crash"), "", nil)
	g := nfsServer(t, t.TempDir())
	nfsS := nfsSpec(line, g, "")
	s3S := s3Spec(line, s3Server(t), false, "")
	for _, sp := range []*harness.Spec{&disk, &sshS, &nfsS, &s3S} {
		sp.Dbg = false
	}
	results := []*result{{name: "disk", spec: disk}, {name: "ssh", spec: sshS}, {name: "nfs", spec: nfsS}, {name: "s3", spec: s3S}}
	for _, res := range results {
		img := filepath.Join(t.TempDir(), "capture.img")
		if err := harness.BuildCaptureImage(repoRoot, res.spec, img); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(img)
		res.img = st.Size()
		res.spec.CaptureImage = img
		r := crash(t, res.spec)
		res.o = r.Outcome()
		var crashAt time.Duration
		for _, p := range r.Phases() {
			if p.Name == "crash" {
				crashAt = p.At
			}
		}
		res.panic = res.o.At - crashAt
		t.Logf("%s: image %.2f MiB, %s, panic → result line %.1fs\n%s", res.name, float64(res.img)/(1<<20), res.o, res.panic.Seconds(), r.PhaseReport())
	}
	for _, res := range results {
		t.Logf("%-4s image %6.2f MiB (+%.2f MiB over disk)  panic → %s %.1fs", res.name, float64(res.img)/(1<<20),
			float64(res.img-results[0].img)/(1<<20), res.o.Status, res.panic.Seconds())
	}
	for _, sweep := range []struct {
		name string
		spec harness.Spec
	}{{"ssh", sshS}, {"s3", s3S}} {
		for _, ck := range []string{"128M", "96M", "88M", "80M", "72M"} {
			spec := sweep.spec
			spec.CrashKernel = ck
			spec.Timeout = 200 * time.Second
			r := crash(t, spec)
			o := r.Outcome()
			t.Logf("%s at crashkernel=%s: %s", sweep.name, ck, o)
			if o.Status != "saved" {
				t.Logf("tail:\n%s", r.Tail(15))
				break
			}
		}
	}
}
