package collect

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"golang.org/x/sys/unix"
)

// captureTo saves the dump to one target.
func captureTo(env *Env, cfg *config.Config, t config.Target, src *source, nw *netState) Result {
	switch t.Kind {
	case config.KindSSH:
		return captureSSH(env, cfg, t, src, nw)
	case config.KindNFS:
		return captureNFS(env, cfg, t, src, nw)
	case config.KindS3:
		return captureS3(env, cfg, t, src, nw)
	}
	env.logf("waiting up to %v for %s", cfg.DeviceTimeout, t)
	dev, err := env.WaitDevice(t.Spec, cfg.DeviceTimeout)
	if err != nil {
		return Failedf("%v", err)
	}
	if t.Raw {
		return captureRaw(env, cfg, t, dev, src)
	}
	mnt, err := mountTarget(env, cfg, t, dev)
	if err != nil {
		return Failedf("%v", err)
	}
	defer unmount(env, mnt)
	return saveToAs(env, cfg, &t, mnt, src, nil)
}

// unmount syncs and unmounts the target, so that its filesystem is
// clean: a reader that does not replay the journal (debugfs, a rescue
// tool) sees the dump, and an NFS server has every write.
func unmount(env *Env, mnt string) {
	env.Sync()
	if err := env.Unmount(mnt); err != nil {
		env.logf("unmount %s: %v", mnt, err)
	}
}

// mountTarget mounts the target's filesystem read-write.
func mountTarget(env *Env, cfg *config.Config, t config.Target, dev *blockdev.Device) (string, error) {
	fstype := cfg.FSType
	if fstype == "" && dev.FS != nil {
		fstype = dev.FS.FSType
	}
	if fstype == "" {
		return "", fmt.Errorf("no filesystem found on %s (%s); set fstype, or use raw:%s to write the device itself", dev.Path, dev, dev.Path)
	}
	env.logf("target %s is %s (%s)", t, dev.Path, fstype)
	mnt, err := env.Mount(dev, fstype, cfg.MountOptions)
	switch {
	case err == nil:
		return mnt, nil
	case env.ReadOnly(dev) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES):
		return "", fmt.Errorf("target %s (%s) is read-only: mount %s read-write: %w", t, dev.Path, fstype, err)
	}
	return "", fmt.Errorf("mount %s (%s): %w", dev.Path, fstype, err)
}

// saveTo writes the dump into a new dated directory under cfg.Path on the
// filesystem mounted at mnt.
func saveTo(env *Env, cfg *config.Config, mnt string, src *source) Result {
	return saveToAs(env, cfg, nil, mnt, src, nil)
}

// saveToAs is saveTo for target t (nil: none named), writing the dump
// through out(f) when out is set. The post hooks and kexec-dmesg.log
// follow the dump, the target still mounted.
func saveToAs(env *Env, cfg *config.Config, t *config.Target, mnt string, src *source, out func(*os.File) io.WriterAt) (res Result) {
	base, err := crashdir.OpenBase(mnt, cfg.Path)
	if err != nil {
		return Failedf("%v", err)
	}
	defer base.Close()
	rel := func(p string) string { return "/" + strings.TrimPrefix(strings.TrimPrefix(p, mnt), "/") }
	reportLeftovers(env, base, rel)

	dir, err := base.Create(src.crashTime)
	if err != nil {
		return Failedf("%v", err)
	}
	defer dir.Close()
	defer func() {
		afterTarget(env, cfg, src, t, &res, place{dir: dir.Path(), write: func(name string, data []byte) error {
			return writeFile(dir, name, data)
		}})
	}()
	f, err := dir.CreateFile(crashdir.VMCoreIncomplete)
	if err != nil {
		return Failedf("%v", err)
	}
	if err := dir.Sync(); err != nil {
		env.logf("%v", err)
	}
	env.logf("saving to %s", rel(dir.Path()))
	if cfg.Keep > 0 {
		// After the new dump exists (locked, in progress): it counts, and
		// Prune never removes it.
		removed, err := base.Prune(cfg.Keep)
		for _, d := range removed {
			env.logf("keep = %d: removed the older dump %s", cfg.Keep, rel(d.Dir))
		}
		if err != nil {
			env.logf("keep = %d: %v", cfg.Keep, err)
		}
	}
	if src.dmesg != nil {
		// The log first: it is small and tells the story even if the dump
		// does not fit.
		if err := writeFile(dir, crashdir.DmesgFile, src.dmesg); err != nil {
			env.logf("%s: %v", crashdir.DmesgFile, err)
		}
	}
	free, err := env.FreeSpace(mnt)
	if err != nil {
		env.logf("free space on %s: %v", mnt, err)
		free = -1
	}
	if src.f == nil {
		res = rawCopy(env, cfg, src.path, f, free, f.Truncate)
	} else {
		var w io.WriterAt = f
		if out != nil {
			w = out(f)
		}
		res = saveDump(env, cfg, src, w, free, cfg.Format, func() {
			if err := env.Fdatasync(f); err != nil {
				env.logf("fdatasync %s: %v", crashdir.VMCoreIncomplete, err)
			}
		})
	}
	switch res.Status {
	case StatusSaved:
		if err := dir.Commit(f, crashdir.VMCore); err != nil {
			// The data is written; only the name says otherwise.
			res.Status, res.Reason = StatusIncomplete, err.Error()
			res.Path = rel(filepath.Join(dir.Path(), crashdir.VMCoreIncomplete))
			return res
		}
		res.Path = rel(filepath.Join(dir.Path(), crashdir.VMCore))
	case StatusIncomplete:
		// It stays vmcore-incomplete: readable, and flagged so nobody
		// mistakes it for a whole one.
		if err := f.Sync(); err != nil {
			env.logf("fsync %s: %v", crashdir.VMCoreIncomplete, err)
		}
		f.Close()
		dir.Sync()
		res.Path = rel(filepath.Join(dir.Path(), crashdir.VMCoreIncomplete))
	default:
		st, _ := f.Stat()
		f.Close()
		if st != nil && st.Size() == 0 {
			dir.Remove(crashdir.VMCoreIncomplete)
		}
		dir.Sync()
	}
	return res
}

// reportLeftovers prints a LEFTOVER line for each earlier dump that did
// not finish, so that nobody mistakes it for a whole one.
func reportLeftovers(env *Env, base *crashdir.Base, rel func(string) string) {
	ds, err := base.Scan()
	if err != nil {
		env.logf("scan %s: %v", base.Path(), err)
		return
	}
	complete := 0
	for _, d := range ds {
		switch d.State {
		case crashdir.Complete:
			complete++
		case crashdir.Incomplete, crashdir.InProgress:
			env.Console.Result("LEFTOVER %s state=%s bytes=%d", rel(d.File), d.State, d.Size)
		}
	}
	if len(ds) > 0 {
		env.logf("%d earlier dumps in %s, %d complete", len(ds), rel(base.Path()), complete)
	}
}

// writeFile writes a small file (a log) in dir, 0600, synced.
func writeFile(dir *crashdir.Dir, name string, text []byte) error {
	f, err := dir.CreateFile(name)
	if err != nil {
		return err
	}
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return dir.Sync()
}
