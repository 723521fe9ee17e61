// Command demo crashes a QEMU guest end to end and shows what gokdump
// saved: `make demo` runs it. It fetches a Debian cloud kernel (x86_64, or
// arm64 with -arch arm64), builds the capture initramfs with gokdump's
// builder, boots the guest under TCG, lets it load the capture kernel and
// panic, copies the dump out of the guest's disk into out/demo/, and shows
// it with gokdump info.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/harness"
	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

func main() {
	line := flag.String("kernel", "6.12", "Debian kernel line to crash: 6.1, 6.12, 6.19, latest (the newest Debian serves) or another line")
	arch := flag.String("arch", "amd64", "the guest: amd64 (QEMU's pc machine) or arm64 (its virt board, -cpu max; the capture kernel\n"+
		"loaded with kexec_load, as Debian's arm64 kernels have no kexec_file_load)")
	disk := flag.String("disk", "nvme", "dump target disk: nvme or virtio")
	mem := flag.Int("mem", 1024, "guest memory in MiB")
	target := flag.String("target", "disk", "where the dump goes: disk (the guest's disk), ssh (OpenSSH's sshd on this\n"+
		"machine's 127.0.0.1, over SFTP), nfs (nfs-ganesha on 127.0.0.1) or s3 (a bucket of\n"+
		"versitygw on 127.0.0.1, over TLS); the guest reaches the server through QEMU's\n"+
		"restricted user-mode network, and nothing else")
	flag.Parse()
	var err error
	switch {
	case *arch != "amd64" && *arch != "arm64":
		err = fmt.Errorf("-arch %q: want amd64 or arm64", *arch)
	case *target == "disk":
		err = run(*line, *arch, *disk, *mem)
	case *arch != "amd64":
		// The network targets' servers and QEMU's user network are
		// set up and tested for x86 guests only.
		err = fmt.Errorf("-target %s: the arm64 demo dumps to the guest's disk only (-target disk)", *target)
	case *target == "ssh", *target == "nfs", *target == "s3":
		err = runNet(*line, *target, *mem)
	default:
		err = fmt.Errorf("-target %q: want disk, ssh, nfs or s3", *target)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// loadedRE is the stage-1 init's line once the capture kernel is loaded.
var loadedRE = regexp.MustCompile(`capture kernel loaded with (\S+)`)

func run(line, arch, disk string, mem int) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	out := filepath.Join(root, "out", "demo", time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

	t0 := time.Now()
	step("fetching the current Debian %s cloud kernel for %s (cached in %s)", line, arch, kernelCache())
	k, err := harness.GetKernelArch(root, line, arch, false)
	if err != nil {
		return err
	}
	if k.Unverified != "" {
		step("%s %s from %s; unverified (taken from the archive's pool, not a signed index): %s", k.KVer, k.Version, k.Suite, k.Unverified)
	} else {
		step("%s %s from %s", k.KVer, k.Version, k.Suite)
	}
	fetch := time.Since(t0)
	t1 := time.Now()
	step("building the capture init and the first-stage init (GOARCH=%s) and gokdump", arch)
	if _, _, err := harness.BinariesFor(root, arch); err != nil {
		return err
	}
	cli, err := harness.Gokdump(root)
	if err != nil {
		return err
	}
	build := time.Since(t1)

	crashkernel := vmtest.DefaultCrashKernel
	step("crashing %s in QEMU (TCG, %d MiB, crashkernel=%s, %s disk); serial log: %s", k.KVer, mem, crashkernel, disk, filepath.Join(out, "serial.log"))
	t2 := time.Now()
	r, err := harness.Crash(root, harness.Spec{Line: line, Arch: arch, Disk: disk, MemMiB: mem, CrashKernel: crashkernel,
		Timeout: 6 * time.Minute, Dir: out})
	if err != nil {
		return err
	}
	cycle := time.Since(t2)
	if _, m, ok := r.Find(loadedRE); ok {
		step("the first kernel loaded the capture kernel with %s", m[1])
	}
	p, err := r.SavedPath()
	if err != nil {
		fmt.Println(r.Tail(40))
		return err
	}
	local := filepath.Join(out, "vmcore")
	if err := r.Extract(p, local); err != nil {
		return err
	}
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	fmt.Printf("\nThe capture kernel saved %s on the guest's dump disk (%s).\n", p, r.Disk)
	fmt.Printf("Copied out to %s: %.1f MiB.\n\n", local, float64(st.Size())/(1<<20))
	fmt.Printf("Phases of the crash cycle (QEMU clock):\n%s\n", r.PhaseReport())
	fmt.Printf("Host: kernel fetch %.1fs, build %.1fs, QEMU cycle incl. images %.1fs.\n\n",
		fetch.Seconds(), build.Seconds(), cycle.Seconds())
	return show(cli, local)
}

// show runs gokdump info on the dump: its header, the panic and the end
// of the crashed kernel's log.
func show(cli, dump string) error {
	fmt.Printf("==> gokdump info %s\n", dump)
	c := exec.Command(cli, "info", dump)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("gokdump info: %w", err)
	}
	fmt.Printf("\nThe whole log: %s dmesg %s\n", cli, dump)
	return nil
}

// runNet crashes a guest whose dump goes over the network to a server the
// demo runs on 127.0.0.1, and says where the dump landed.
func runNet(line, target string, mem int) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 && target != "s3" {
		return fmt.Errorf("-target %s runs sshd or nfs-ganesha, which need root here", target)
	}
	out := filepath.Join(root, "out", "demo", time.Now().UTC().Format("20060102-150405"))
	srv := filepath.Join(out, "server")
	if err := os.MkdirAll(srv, 0o700); err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }
	step("fetching the current Debian %s cloud kernel (cached in %s)", line, kernelCache())
	k, err := harness.GetKernel(root, line, false)
	if err != nil {
		return err
	}
	spec := harness.Spec{Line: line, MemMiB: mem, Dir: out, Config: "device_timeout = \"90s\"\n"}
	var where string
	var s3srv *harness.Versity
	switch target {
	case "ssh":
		dumps := filepath.Join(out, "ssh-dumps")
		s, err := harness.StartSSHD(srv, harness.SSHDOptions{})
		if err != nil {
			return err
		}
		defer s.Stop()
		n, err := s.Target(dumps, nil)
		if err != nil {
			return err
		}
		n.Apply(&spec)
		step("sshd (OpenSSH) listens on 127.0.0.1:%d; the guest reaches it as %s:22; dumps go to %s", s.Port, harness.SSHAddr, dumps)
		where = ""
	case "nfs":
		export := filepath.Join(out, "nfs-export")
		if err := os.MkdirAll(export, 0o755); err != nil {
			return err
		}
		g, err := harness.StartGanesha(srv, export)
		if err != nil {
			return err
		}
		defer g.Stop()
		g.Target().Apply(&spec)
		step("nfs-ganesha serves %s on 127.0.0.1:%d; the guest mounts it as %s:%s", export, g.Port, harness.NFSAddr, g.Pseudo)
		where = export
	case "s3":
		if s3srv, err = harness.StartVersity(srv, net.ParseIP(harness.S3Addr)); err != nil {
			return err
		}
		defer s3srv.Stop()
		if err := s3srv.MakeBucket("dumps"); err != nil {
			return err
		}
		harness.S3Target(s3srv, false).Apply(&spec)
		step("versitygw %s serves %s on https://127.0.0.1:%d (a CA made for the demo); the guest reaches it as %s:%d",
			harness.VersityVersion, s3srv.Dir, s3srv.Port, harness.S3Addr, harness.S3Port)
	}
	step("crashing %s in QEMU (TCG, %d MiB); serial log: %s", k.KVer, mem, filepath.Join(out, "serial.log"))
	t0 := time.Now()
	r, err := harness.Crash(root, spec)
	if err != nil {
		return err
	}
	cycle := time.Since(t0)
	o := r.Outcome()
	if o.Status != "saved" {
		fmt.Println(r.Tail(40))
		return fmt.Errorf("the capture did not save the dump: %s", o)
	}
	if s3srv != nil {
		fmt.Printf("\nThe capture kernel uploaded the dump: %s (%.1f MiB)\n\n", o.Path, float64(o.Bytes)/(1<<20))
		fmt.Printf("Phases of the crash cycle (QEMU clock):\n%s\n", r.PhaseReport())
		fmt.Printf("QEMU cycle incl. images %.1fs.\n\n", cycle.Seconds())
		return showS3(root, out, s3srv, o.Path)
	}
	local := filepath.Join(where, o.Path)
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	fmt.Printf("\nThe capture kernel sent the dump over %s: it landed on this machine at\n  %s (%.1f MiB)\n",
		target, local, float64(st.Size())/(1<<20))
	fmt.Printf("  %s beside it\n\n", filepath.Join(filepath.Dir(local), "vmcore-dmesg.txt"))
	fmt.Printf("Phases of the crash cycle (QEMU clock):\n%s\n", r.PhaseReport())
	fmt.Printf("QEMU cycle incl. images %.1fs.\n\nLook inside: bin/gokdump info %s\n", cycle.Seconds(), local)
	return nil
}

// showS3 lists the bucket of v as support staff would, and tells of the
// crash at path.
func showS3(root, out string, v *harness.Versity, path string) error {
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }
	cli, err := harness.Gokdump(root)
	if err != nil {
		return err
	}
	creds := filepath.Join(out, "s3-credentials")
	cfg := filepath.Join(out, "gokdump.toml")
	if err := os.WriteFile(creds, harness.S3CredentialsFile(v.Credentials(false)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "s3_endpoint = %q\ns3_credentials = %q\nca_file = %q\n", v.Addr(), creds, v.CAFile), 0o600); err != nil {
		return err
	}
	step("gokdump ls --config %s s3://dumps/fleet", cfg)
	c := exec.Command(cli, "ls", "--config", cfg, "s3://dumps/fleet")
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return err
	}
	crash := strings.TrimSuffix(path, "/vmcore")
	step("gokdump info --config %s %s", cfg, crash)
	c = exec.Command(cli, "info", "--config", cfg, crash)
	c.Stdout, c.Stderr = os.Stdout, os.Stdout
	if err := c.Run(); err != nil {
		return err
	}
	fmt.Printf("\nThe server stops with the demo; the bucket's files stay in %s.\n", v.Dir)
	return nil
}

// kernelCache is where scripts/fetch-kernel keeps the kernels, for the
// demo to say: $GOKDUMP_CACHE's kernels, else the checkout's .cache.
func kernelCache() string {
	if d := os.Getenv("GOKDUMP_CACHE"); d != "" {
		return filepath.Join(d, "kernels")
	}
	return filepath.Join(".cache", "kernels")
}
