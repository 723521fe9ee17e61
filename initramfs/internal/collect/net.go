package collect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	spath "path" // server paths are slash-separated whatever the host
	"strings"
	"sync"
	"time"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/sshdump"
	"golang.org/x/sys/unix"
)

// netState brings the network up once per capture, for the first
// network target that needs it.
type netState struct {
	tried bool
	err   error
}

func (n *netState) up(env *Env, cfg *config.Config, deadline time.Time) error {
	if !n.tried {
		n.tried = true
		t := env.Clock.Now()
		n.err = env.NetUp(cfg, deadline)
		if n.err == nil {
			env.logf("network up in %.2fs", env.since(t).Seconds())
		}
	}
	return n.err
}

// Backoff between tries to reach a server: it doubles from the first to
// the last, and never sleeps past the deadline.
const (
	firstBackoff = time.Second
	maxBackoff   = 8 * time.Second
	// minTry is the least time worth a try: a connection that cannot be
	// given that much is not attempted.
	minTry = 2 * time.Second
	// maxTry bounds one try (connect and handshake, or one mount).
	maxTry = 20 * time.Second
)

// retry calls try until it succeeds, fails for good (permanent), or the
// deadline leaves no time for another try, sleeping with backoff in
// between and saying so on the console. It returns the last error.
func retry(env *Env, what string, deadline time.Time, permanent func(error) bool, try func(timeout time.Duration) error) error {
	wait := firstBackoff
	for n := 1; ; n++ {
		left := deadline.Sub(env.Clock.Now())
		err := try(min(max(left, minTry), maxTry))
		if err == nil {
			if n > 1 {
				env.logf("%s: reached on try %d", what, n)
			}
			return nil
		}
		if permanent(err) {
			return err
		}
		left = deadline.Sub(env.Clock.Now())
		if left < wait+minTry {
			return fmt.Errorf("%w (%d tries; device_timeout ran out)", err, n)
		}
		env.logf("%s: %v; trying again in %v (%.0fs left)", what, err, wait, left.Seconds())
		<-env.Clock.After(wait)
		wait = min(2*wait, maxBackoff)
	}
}

// sshPermanent: a host key or a key the server refuses does not get
// better by trying again.
func sshPermanent(err error) bool {
	return errors.Is(err, sshdump.ErrHostKeyChanged) || errors.Is(err, sshdump.ErrHostKeyUnknown) || errors.Is(err, sshdump.ErrAuth)
}

// captureSSH saves the dump into a directory on an SSH server, over SFTP
// when the server has it, else as a flattened stream into cat.
func captureSSH(env *Env, cfg *config.Config, t config.Target, src *source, nw *netState) Result {
	deadline := env.Clock.Now().Add(cfg.DeviceTimeout)
	if err := nw.up(env, cfg, deadline); err != nil {
		return Failedf("%v", err)
	}
	env.logf("connecting to %s as %s (host key pinned in %s)", t.HostPort(), t.User, cfg.KnownHosts)
	var conn Remote
	err := retry(env, "ssh "+t.HostPort(), deadline, sshPermanent, func(timeout time.Duration) error {
		c, err := env.DialSSH(cfg, t, timeout)
		conn = c
		return err
	})
	if err != nil {
		return Failedf("%v", err)
	}
	defer conn.Close()
	base := t.Dir
	if base == "" {
		base = cfg.Path
	}
	if cfg.Keep > 0 {
		env.logf("keep = %d is not applied on an ssh target: older dumps on the server are left alone", cfg.Keep)
	}
	if !conn.HasSFTP() {
		return streamSSH(env, cfg, &t, conn, base, src)
	}
	return saveSFTP(env, cfg, &t, conn, base, src)
}

// reportRemoteLeftovers prints a LEFTOVER line for each earlier dump on
// the server that did not finish.
func reportRemoteLeftovers(env *Env, conn Remote, base string) {
	ents, err := conn.ReadDir(base)
	if err != nil {
		env.logf("%v", err)
		return
	}
	n, complete := 0, 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, _, ok := crashdir.ParseName(e.Name()); !ok {
			continue
		}
		n++
		files, err := conn.ReadDir(spath.Join(base, e.Name()))
		if err != nil {
			continue
		}
		var inc fs.FileInfo
		whole := false
		for _, f := range files {
			switch f.Name() {
			case crashdir.VMCore:
				whole = true
			case crashdir.VMCoreIncomplete:
				inc = f
			}
		}
		switch {
		case whole:
			complete++
		case inc != nil:
			env.Console.Result("LEFTOVER %s state=%s bytes=%d", spath.Join(base, e.Name(), inc.Name()), crashdir.Incomplete, inc.Size())
		}
	}
	if n > 0 {
		env.logf("%d earlier dumps in %s, %d complete", n, base, complete)
	}
}

// remoteDumpDir creates <base>/<crash time>[-N] on the server.
func remoteDumpDir(conn Remote, base string, t time.Time) (string, error) {
	for seq := 0; seq <= 999; seq++ {
		dir := spath.Join(base, crashdir.Name(t, seq))
		err := conn.Mkdir(dir)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: 1000 dumps of the same second already", base)
}

func saveSFTP(env *Env, cfg *config.Config, t *config.Target, conn Remote, base string, src *source) (res Result) {
	if err := conn.MkdirAll(base); err != nil {
		return Failedf("%v", err)
	}
	reportRemoteLeftovers(env, conn, base)
	dir, err := remoteDumpDir(conn, base, src.crashTime)
	if err != nil {
		return Failedf("%v", err)
	}
	env.logf("saving to %s on the server", dir)
	defer func() {
		afterTarget(env, cfg, src, t, &res, place{write: func(name string, data []byte) error {
			return writeRemote(conn, spath.Join(dir, name), data)
		}})
	}()
	if src.dmesg != nil {
		if err := writeRemote(conn, spath.Join(dir, crashdir.DmesgFile), src.dmesg); err != nil {
			env.logf("%s: %v", crashdir.DmesgFile, err)
		}
	}
	incName := spath.Join(dir, crashdir.VMCoreIncomplete)
	f, err := conn.Create(incName)
	if err != nil {
		return Failedf("%v", err)
	}
	free, err := conn.FreeSpace(dir)
	if err != nil {
		env.logf("free space on the server: %v", err)
		free = -1
	}
	if src.f == nil {
		res = rawCopy(env, cfg, src.path, f, free, nil)
	} else {
		res = saveDump(env, cfg, src, f, free, cfg.Format, func() {
			if err := f.Sync(); err != nil {
				env.logf("fsync %s: %v", incName, err)
			}
		})
	}
	serr := f.Sync()
	cerr := f.Close()
	switch res.Status {
	case StatusSaved:
		if err := errors.Join(serr, cerr); err != nil {
			res.Status, res.Reason, res.Path = StatusIncomplete, fmt.Sprintf("close %s: %v", incName, err), incName
			return res
		}
		final := spath.Join(dir, crashdir.VMCore)
		if err := conn.Rename(incName, final); err != nil {
			// The data is written; only the name says otherwise.
			res.Status, res.Reason, res.Path = StatusIncomplete, err.Error(), incName
			return res
		}
		res.Path = final
	case StatusIncomplete:
		res.Path = incName
		if free, err := conn.FreeSpace(dir); err == nil && free < 1<<20 {
			res.Reason = fmt.Sprintf("the server's filesystem is full (%d bytes left): %s", free, res.Reason)
		}
	default:
		if res.Bytes == 0 {
			conn.Remove(incName)
		}
	}
	return res
}

// writeRemote writes a small file on the server.
func writeRemote(conn Remote, name string, data []byte) error {
	f, err := conn.Create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Names of a dump streamed to a server without SFTP: makedumpfile's
// flattened format, which gokdump savecore (or makedumpfile -R) turns
// into a vmcore.
const (
	FlatIncomplete = "vmcore-incomplete.flat"
	FlatComplete   = "vmcore.flat"
)

// streamSSH writes the dump through shell commands on a server without
// SFTP: mkdir, then cat into files. The dump is makedumpfile's flattened
// stream (cat cannot seek), renamed to vmcore.flat when complete.
func streamSSH(env *Env, cfg *config.Config, t *config.Target, conn Remote, base string, src *source) (res Result) {
	env.logf("the server has no SFTP subsystem: streaming the flattened format into cat (gokdump savecore FILE DIR reassembles it)")
	q := sshdump.Quote
	var dir string
	for seq := 0; seq <= 999 && dir == ""; seq++ {
		d := spath.Join(base, crashdir.Name(src.crashTime, seq))
		err := conn.Run(fmt.Sprintf("umask 077 && mkdir -p -- %s && mkdir -- %s", q(base), q(d)), nil)
		if err == nil {
			dir = d
			continue
		}
		// mkdir fails the same for an existing directory and for one it
		// cannot make: look at what is there.
		if conn.Run(fmt.Sprintf("test -d %s", q(d)), nil) != nil {
			return Failedf("%v", err)
		}
	}
	if dir == "" {
		return Failedf("%s: 1000 dumps of the same second already", base)
	}
	env.logf("saving to %s on the server", dir)
	defer func() {
		afterTarget(env, cfg, src, t, &res, place{write: func(name string, data []byte) error {
			return conn.Run(fmt.Sprintf("umask 077 && cat > %s", q(spath.Join(dir, name))), strings.NewReader(string(data)))
		}})
	}()
	if src.dmesg != nil {
		if err := conn.Run(fmt.Sprintf("umask 077 && cat > %s", q(spath.Join(dir, crashdir.DmesgFile))), strings.NewReader(string(src.dmesg))); err != nil {
			env.logf("%s: %v", crashdir.DmesgFile, err)
		}
	}
	inc := spath.Join(dir, FlatIncomplete)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := conn.Run(fmt.Sprintf("umask 077 && cat > %s", q(inc)), pr)
		pr.CloseWithError(errors.Join(err, errors.New("the remote cat ended")))
		done <- err
	}()
	bw := bufio.NewWriterSize(pw, 1<<20)
	fw := diskdump.NewFlattenWriter(bw)
	if src.f == nil {
		res = rawCopy(env, cfg, src.path, fw, -1, nil)
	} else {
		res = saveDump(env, cfg, src, fw, -1, config.FormatKdump, func() {
			if err := bw.Flush(); err != nil {
				env.logf("stream to %s: %v", inc, err)
			}
		})
	}
	if cfg.Format != config.FormatKdump {
		env.logf("format %q over a stream: written as kdump, the only format the flattened stream carries", cfg.Format)
	}
	err := errors.Join(fw.Close(), bw.Flush())
	pw.Close()
	if rerr := <-done; err == nil {
		err = rerr
	}
	res.Format, res.Bytes, res.Path = "kdump-flattened", fw.Bytes, inc
	if err != nil && res.Status == StatusSaved {
		res.Status, res.Reason = StatusIncomplete, fmt.Sprintf("finish the stream: %v", err)
	}
	if res.Status == StatusSaved {
		final := spath.Join(dir, FlatComplete)
		if err := conn.Run(fmt.Sprintf("mv -- %s %s", q(inc), q(final)), nil); err != nil {
			res.Status, res.Reason = StatusIncomplete, err.Error()
			return res
		}
		res.Path = final
	}
	return res
}

// NFS versions tried in order; a server that refuses one gets the next.
// 4.1 first: a dump needs nothing of 4.2, and with 4.2 the client reads
// the pages a partial write changes with READ_PLUS, which against
// nfs-ganesha 4.3 left writes failing with EIO in one dump of three (a
// 7.3 client); over 4.1 none failed, and the save took half the time.
var nfsVersions = []string{"4.1", "4.2", "4.0", "3"}

// nfsOptions is the option string of mount(2) for version vers at addr.
// The kernel's NFS client parses it itself (no mount.nfs): addr= is
// required, and NFSv3 locks need a lockd nobody runs here. soft with
// TCP's default timeout (60 s, twice): a server that stops answering fails
// the writes (an INCOMPLETE dump) instead of hanging them, while a slow
// link with many writes in flight does not (with timeo=100 a write once
// failed with EIO under emulation, most likely one queued behind others
// for more than 10 s).
func nfsOptions(vers string, addr netip.Addr, extra string) string {
	opts := []string{"vers=" + vers, "addr=" + addr.String(), "proto=tcp", "soft", "timeo=600", "retrans=2"}
	if vers == "3" {
		opts = append(opts, "nolock", "mountproto=tcp")
	}
	if extra != "" {
		opts = append(opts, extra)
	}
	return strings.Join(opts, ",")
}

// pinnedVers splits the version mount_options pins (vers= or nfsvers=)
// from the other options.
func pinnedVers(extra string) (vers, rest string) {
	var keep []string
	for _, o := range strings.Split(extra, ",") {
		if v, ok := strings.CutPrefix(o, "vers="); ok {
			vers = v
		} else if v, ok := strings.CutPrefix(o, "nfsvers="); ok {
			vers = v
		} else if o != "" {
			keep = append(keep, o)
		}
	}
	return vers, strings.Join(keep, ",")
}

// nfsVersionRefused: the server (or the capture kernel) does not speak
// this version: try the next one at once. Anything else (refused,
// unreachable, timed out) is about the server, the same for every
// version.
func nfsVersionRefused(err error) bool {
	return errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL)
}

// captureNFS mounts the export and saves the dump in it, as on a disk.
func captureNFS(env *Env, cfg *config.Config, t config.Target, src *source, nw *netState) Result {
	deadline := env.Clock.Now().Add(cfg.DeviceTimeout)
	if err := nw.up(env, cfg, deadline); err != nil {
		return Failedf("%v", err)
	}
	var addr netip.Addr
	err := retry(env, "resolve "+t.Host, deadline, func(error) bool { return false }, func(timeout time.Duration) error {
		ips, err := env.LookupIP(t.Host, timeout)
		if err == nil {
			if len(ips) == 0 {
				return fmt.Errorf("resolve %s: no address", t.Host)
			}
			addr = ips[0]
		}
		return err
	})
	if err != nil {
		return Failedf("%v", err)
	}
	source := t.Host + ":" + t.Dir
	if addr.Is6() {
		source = "[" + t.Host + "]:" + t.Dir
	}
	versions := nfsVersions
	pinned, extra := pinnedVers(cfg.MountOptions)
	if pinned != "" {
		versions = []string{pinned}
	}
	var mnt string
	err = retry(env, "mount "+source, deadline, func(error) bool { return false }, func(timeout time.Duration) error {
		var errs []error
		for _, v := range versions {
			opts := nfsOptions(v, addr, extra)
			env.logf("mount %s (nfs, %s)", source, opts)
			m, err := env.MountNFS(source, opts, timeout)
			if err == nil {
				mnt = m
				env.logf("mounted %s with NFS %s", source, v)
				return nil
			}
			errs = append(errs, fmt.Errorf("vers=%s: %w", v, err))
			if !nfsVersionRefused(err) {
				break // the server is not there: no other version will do
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return Failedf("%v", err)
	}
	defer unmount(env, mnt)
	// The export path is the dump directory's parent: path does not
	// apply.
	at := cfg.Clone()
	at.Path = "/"
	res := saveToAs(env, at, &t, mnt, src, func(f *os.File) io.WriterAt { return &zeroReserve{File: f} })
	if res.Status == StatusIncomplete && strings.Contains(res.Reason, "full") {
		res.Reason = "the NFS server's filesystem is full: " + strings.TrimPrefix(res.Reason, "the target is full: ")
	}
	return res
}

// zeroReserve is a dump file on NFS that never has a hole below its end:
// a write past the end first fills the gap with zeros, and reserved
// ranges are written as zeros rather than fallocate'd. On NFSv4.2 a
// write into part of a page in a hole makes the client read the hole
// (READ_PLUS), and with nfs-ganesha 4.3 and a 7.3 client that read, or
// the ALLOCATE that fallocate becomes, left the write failing with EIO:
// a bitmap block written below the 2nd bitmap's last one did, one dump
// in three. Zeros work on every server.
type zeroReserve struct {
	*os.File
	mu  sync.Mutex
	end int64 // [0, end) is written: data or zeros
}

func (z *zeroReserve) WriteAt(p []byte, off int64) (int, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if off > z.end {
		if err := z.zeros(z.end, off-z.end); err != nil {
			return 0, err
		}
	}
	n, err := z.File.WriteAt(p, off)
	z.end = max(z.end, off+int64(n))
	return n, err
}

func (z *zeroReserve) Preallocate(off, size int64) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if off > z.end {
		// The gap too: no hole below the reservation.
		size += off - z.end
		off = z.end
	}
	return z.zeros(off, size)
}

// zeros writes size zero bytes at off; callers hold z.mu.
func (z *zeroReserve) zeros(off, size int64) error {
	zero := make([]byte, min(size, 1<<20))
	for size > 0 {
		n := min(size, int64(len(zero)))
		if _, err := z.File.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("reserve %d bytes at %#x: %w", n, off, err)
		}
		off += n
		size -= n
		z.end = max(z.end, off)
	}
	return nil
}
