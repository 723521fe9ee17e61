package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/netup"
)

// The network of the net tests: QEMU's user-mode network in restricted
// mode, where the guest reaches nothing but the guestfwd addresses, each
// relayed (qemu-tests/relay) to a server the harness runs on the host's
// loopback. Guest-side addresses live in QEMU's own virtual network
// (10.0.2.0/24: the guest gets 10.0.2.15 by DHCP); the host side is only
// ever 127.0.0.1.

// Guest-side addresses of the test servers.
const (
	SSHAddr = "10.0.2.100" // port 22
	NFSAddr = "10.0.2.101" // port 2049
	S3Addr  = "10.0.2.102" // port S3Port
	S3Port  = 9000
	// GuestMAC is the test NIC's hardware address.
	GuestMAC = "52:54:00:12:34:56"
)

// Net is the guest's NIC and what it reaches.
type Net struct {
	// Model is the QEMU NIC: virtio-net-pci (default) or e1000.
	Model string
	// Forwards maps guest addr:port to a port on the host's 127.0.0.1.
	Forwards []Forward
}

// Forward is one guestfwd rule.
type Forward struct {
	Guest    string // addr:port in the guest's network
	HostPort int    // 127.0.0.1:HostPort on the host
}

var (
	relayOnce sync.Once
	relayBin  string
	relayErr  error
)

// Relay builds the guestfwd relay once per process.
func Relay(root string) (string, error) {
	relayOnce.Do(func() {
		dir := binDir(root)
		if relayErr = os.MkdirAll(dir, 0o755); relayErr != nil {
			return
		}
		relayBin = filepath.Join(dir, "relay")
		cmd := exec.Command("go", "build", "-o", relayBin, "./qemu-tests/relay")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			relayErr = fmt.Errorf("go build ./qemu-tests/relay: %v\n%s", err, out)
		}
	})
	return relayBin, relayErr
}

// netArgs are QEMU's arguments for n.
func netArgs(root string, n *Net) ([]string, error) {
	if n == nil {
		return nil, nil
	}
	relay, err := Relay(root)
	if err != nil {
		return nil, err
	}
	model := n.Model
	if model == "" {
		model = "virtio-net-pci"
	}
	nd := "user,id=n0,restrict=on,ipv6=off"
	for _, f := range n.Forwards {
		if strings.ContainsAny(relay, " ,") {
			return nil, fmt.Errorf("harness: the relay's path %q has a space or comma, which guestfwd cannot carry", relay)
		}
		nd += fmt.Sprintf(",guestfwd=tcp:%s-cmd:%s 127.0.0.1:%d", f.Guest, relay, f.HostPort)
	}
	return []string{"-netdev", nd, "-device", fmt.Sprintf("%s,netdev=n0,mac=%s", model, GuestMAC)}, nil
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListen waits until something accepts on 127.0.0.1:port, or the
// process ends.
func waitListen(port int, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on 127.0.0.1:%d after %v", port, timeout)
}

// server is a child process the harness started and stops.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startServer(logPath string, name string, args ...string) (*server, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() {
		cmd.Wait()
		lf.Close()
		close(s.exited)
	}()
	return s, nil
}

// stop ends the server (SIGTERM, then SIGKILL) and waits for it.
func (s *server) stop() {
	if s == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Log returns what the server printed.
func (s *server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// SSHD is OpenSSH's sshd on 127.0.0.1, with a throwaway host key, one
// authorized client key and a config of its own.
type SSHD struct {
	*server
	Dir  string // its files
	Port int
	// HostKey is the public host key line ("ssh-ed25519 AAAA…").
	HostKey string
	// ClientKey is the private key it authorizes; ClientPub its public
	// line.
	ClientKey, ClientPub string
	// User is the user to log in as (the one running the tests).
	User string
}

// SSHDOptions change the server.
type SSHDOptions struct {
	// NoSFTP leaves out the SFTP subsystem.
	NoSFTP bool
	// Home, if set, is where SFTP sessions start (relative paths such as
	// .ssh/authorized_keys resolve there), and Home/.ssh/authorized_keys
	// is read too: gokdump propagate's test installs a key there rather
	// than in the real home of the user running the tests.
	Home string
}

// StartSSHD starts sshd in dir (which must exist).
func StartSSHD(dir string, o SSHDOptions) (*SSHD, error) {
	sshd := "/usr/sbin/sshd"
	if err := NeedTools(sshd, "ssh-keygen"); err != nil {
		return nil, err
	}
	// Privilege separation needs this directory; the package's service
	// makes it at boot, which a machine that never started sshd lacks.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	s := &SSHD{Dir: dir, User: currentUser()}
	hostKey := filepath.Join(dir, "host_ed25519")
	s.ClientKey = filepath.Join(dir, "id_ed25519")
	for _, k := range []string{hostKey, s.ClientKey} {
		if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gokdump-test", "-f", k); err != nil {
			return nil, err
		}
	}
	hk, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	s.HostKey = strings.Join(strings.Fields(string(hk))[:2], " ")
	cp, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		return nil, err
	}
	s.ClientPub = strings.TrimSpace(string(cp))
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, cp, 0o600); err != nil {
		return nil, err
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	cfg := []string{
		fmt.Sprintf("ListenAddress 127.0.0.1:%d", s.Port),
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + auth + homeKeys(o.Home),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"AllowUsers " + s.User,
		"LogLevel VERBOSE",
		"MaxStartups 20",
	}
	if !o.NoSFTP {
		sftp := "Subsystem sftp internal-sftp -u 077"
		if o.Home != "" {
			sftp += " -d " + o.Home
		}
		cfg = append(cfg, sftp)
	}
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	if s.server, err = startServer(filepath.Join(dir, "sshd.log"), sshd, "-D", "-e", "-f", conf); err != nil {
		return nil, err
	}
	if err := waitListen(s.Port, s.exited, 10*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("sshd: %v\n%s", err, s.Log())
	}
	return s, nil
}

func homeKeys(home string) string {
	if home == "" {
		return ""
	}
	return " " + filepath.Join(home, ".ssh", "authorized_keys")
}

// Stop ends sshd.
func (s *SSHD) Stop() { s.stop() }

// KnownHosts is a known_hosts line pinning the host key for host:port.
func (s *SSHD) KnownHosts(host string, port int) string {
	h := host
	if port != 22 {
		h = fmt.Sprintf("[%s]:%d", host, port)
	}
	return h + " " + s.HostKey + "\n"
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	b, err := exec.Command("id", "-un").Output()
	if err != nil {
		return "root"
	}
	return strings.TrimSpace(string(b))
}

// Ganesha is nfs-ganesha serving one directory over NFSv4 (4.0, 4.1,
// 4.2) on 127.0.0.1, with its VFS backend: no kernel NFS server, no
// rpcbind, no systemd. It runs as root (the VFS backend opens files by
// handle).
type Ganesha struct {
	*server
	Dir    string
	Port   int
	Export string // the directory served
	Pseudo string // its path in the NFSv4 namespace
}

// StartGanesha serves export (which must exist) as pseudo path /export.
func StartGanesha(dir, export string) (*Ganesha, error) {
	bin := "/usr/bin/ganesha.nfsd"
	if err := NeedTools(bin); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("nfs-ganesha's VFS backend needs root (open_by_handle_at)")
	}
	g := &Ganesha{Dir: dir, Export: export, Pseudo: "/export"}
	var err error
	if g.Port, err = freePort(); err != nil {
		return nil, err
	}
	recov := filepath.Join(dir, "recovery")
	if err := os.MkdirAll(recov, 0o700); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`NFS_CORE_PARAM {
	NFS_Port = %d;
	Bind_addr = 127.0.0.1;
	Protocols = 4;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Enable_UDP = false;
}
NFSV4 {
	Graceless = true;
	Lease_Lifetime = 15;
	RecoveryBackend = fs;
	RecoveryRoot = %s;
	Minor_Versions = 0, 1, 2;
}
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = %s;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	Protocols = 4;
	Transports = TCP;
	FSAL { Name = VFS; }
}
`, g.Port, recov, export, g.Pseudo)
	cf := filepath.Join(dir, "ganesha.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if g.server, err = startServer(filepath.Join(dir, "ganesha.log"), bin, "-F", "-L", "/dev/stderr",
		"-f", cf, "-p", filepath.Join(dir, "ganesha.pid"), "-N", "NIV_EVENT"); err != nil {
		return nil, err
	}
	if err := waitListen(g.Port, g.exited, 20*time.Second); err != nil {
		g.stop()
		return nil, fmt.Errorf("ganesha: %v\n%s", err, g.Log())
	}
	return g, nil
}

// Stop ends ganesha.
func (g *Ganesha) Stop() { g.stop() }

// SmallFS mounts a tmpfs of mib MiB on dir (root only), for a server
// whose filesystem fills; the returned function unmounts it.
func SmallFS(dir string, mib int) (func(), error) {
	if err := run("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0755", mib), "gokdump-small", dir); err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "umount", dir).Run()
	}, nil
}

// NetModules are the capture's NIC drivers in the net tests (virtio_net
// needs its PCI transport named: it is a separate driver).
var NetModules = []string{"virtio_net", "virtio_pci"}

// NetSetup is what a crash needs to dump to a test server: the config
// lines, the files for the capture image, the NIC and its forwards.
type NetSetup struct {
	Config         string
	CaptureExtra   []builder.File
	CaptureModules []string
	Net            *Net
}

// Apply sets spec up for the target, after spec.Config's own lines.
func (n NetSetup) Apply(spec *Spec) {
	spec.Config = n.Config + spec.Config
	spec.CaptureExtra = append(spec.CaptureExtra, n.CaptureExtra...)
	spec.CaptureModules = append(spec.CaptureModules, n.CaptureModules...)
	spec.Stage1Modules = NetModules
	spec.Net = n.Net
}

// guestRecord is the interface record of the test NIC.
func guestRecord() builder.File {
	rec := netup.Record{Interfaces: []netup.Interface{{Name: "enp0s2", MAC: GuestMAC, Driver: "virtio_net"}}}
	return builder.File{Path: netup.RecordPath, Data: rec.Marshal(), Mode: 0o644}
}

// Target sets up a crash whose target is dumps on s, reached at
// SSHAddr:22, with s's client key packed and pin's host key pinned (s's
// when pin is nil).
func (s *SSHD) Target(dumps string, pin *SSHD) (NetSetup, error) {
	key, err := os.ReadFile(s.ClientKey)
	if err != nil {
		return NetSetup{}, err
	}
	if pin == nil {
		pin = s
	}
	return NetSetup{
		Config:         fmt.Sprintf("target = \"ssh://%s@%s%s\"\n", s.User, SSHAddr, dumps),
		CaptureModules: NetModules,
		CaptureExtra: []builder.File{
			{Path: config.DefaultSSHKey, Data: key, Mode: 0o600},
			{Path: config.DefaultKnownHosts, Data: []byte(pin.KnownHosts(SSHAddr, 22)), Mode: 0o644},
			guestRecord(),
		},
		Net: &Net{Forwards: []Forward{{Guest: SSHAddr + ":22", HostPort: s.Port}}},
	}, nil
}

// Target sets up a crash whose target is g's export, reached at
// NFSAddr:2049.
func (g *Ganesha) Target() NetSetup {
	return NetSetup{
		Config:         fmt.Sprintf("target = \"nfs://%s%s\"\n", NFSAddr, g.Pseudo),
		CaptureModules: append([]string{"nfsv4", "nfsv3"}, NetModules...),
		CaptureExtra:   []builder.File{guestRecord()},
		Net:            &Net{Forwards: []Forward{{Guest: NFSAddr + ":2049", HostPort: g.Port}}},
	}
}

// S3CAPath is where an s3 test's capture image holds the test CA.
const S3CAPath = "/etc/gokdump/s3-ca.pem"

// S3Target sets up a crash whose target is s3://dumps/fleet on srv,
// reached at S3Addr:S3Port over TLS verified with srv's CA, with srv's
// keys (a wrong secret with wrongSecret) packed 0600.
func S3Target(srv *Versity, wrongSecret bool) NetSetup {
	return NetSetup{
		Config:         fmt.Sprintf("target = \"s3://dumps/fleet\"\ns3_endpoint = \"%s:%d\"\nca_file = %q\n", S3Addr, S3Port, S3CAPath),
		CaptureModules: NetModules,
		CaptureExtra: []builder.File{
			{Path: config.DefaultS3Credentials, Data: S3CredentialsFile(srv.Credentials(wrongSecret)), Mode: 0o600},
			{Path: S3CAPath, Data: srv.CAPEM, Mode: 0o644},
			guestRecord(),
		},
		Net: &Net{Forwards: []Forward{{Guest: fmt.Sprintf("%s:%d", S3Addr, S3Port), HostPort: srv.Port}}},
	}
}
