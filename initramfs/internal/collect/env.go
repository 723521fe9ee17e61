package collect

import (
	"debug/elf"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/printk"
	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
	"github.com/gokdump/gokdump/internal/blockdev"
	"github.com/gokdump/gokdump/internal/config"
)

// Env is everything the capture does to the world outside its own memory.
// System returns the capture kernel's; every field must be set.
type Env struct {
	// Console prints notes, progress and the result lines.
	Console *Console
	// Clock tells the time and runs the timers of every deadline.
	Clock Clock

	// Vmcore is the crashed kernel's memory as an ELF core, and
	// OpenVmcore parses it. A raw copy reads Vmcore with os.Open.
	Vmcore     string
	OpenVmcore func(path string) (*vmcore.File, error)
	// ReadLog reads the crashed kernel's log from its memory.
	ReadLog func(pr kmem.PhysReader, info *vmcoreinfo.Info, m elf.Machine) (*printk.Log, error)

	// LoadModules loads the image's storage modules, logging each.
	LoadModules func(logf func(string, ...any)) error
	// WaitDevice waits at most timeout for the device spec names; on
	// timeout its error lists the block devices that were there
	// (*blockdev.NotFoundError).
	WaitDevice func(spec blockdev.Spec, timeout time.Duration) (*blockdev.Device, error)
	// ReadOnly reports whether the kernel marks dev read-only.
	ReadOnly func(dev *blockdev.Device) bool
	// Mount mounts dev's filesystem read-write and returns where;
	// Unmount undoes it.
	Mount   func(dev *blockdev.Device, fstype, options string) (string, error)
	Unmount func(mnt string) error
	// OpenDevice opens a raw target's device for writing, exclusively.
	OpenDevice func(path string) (*os.File, error)

	// Sync flushes every filesystem; Fdatasync one file's data.
	Sync      func()
	Fdatasync func(f *os.File) error
	// FreeSpace returns the bytes free for root on the filesystem at path.
	FreeSpace func(path string) (int64, error)

	// NetUp brings up the network for a network target by deadline,
	// logging each step; the capture calls it once.
	NetUp func(cfg *config.Config, deadline time.Time) error
	// LookupIP resolves a server's name (an address is returned as is).
	LookupIP func(host string, timeout time.Duration) ([]netip.Addr, error)
	// DialSSH connects to an ssh target and logs in, once: the capture
	// retries. Host key and authentication errors wrap
	// sshdump.ErrHostKeyChanged, ErrHostKeyUnknown or ErrAuth.
	DialSSH func(cfg *config.Config, t config.Target, timeout time.Duration) (Remote, error)
	// MountNFS mounts source (host:/dir) with options, once, and returns
	// where; Unmount undoes it.
	MountNFS func(source, options string, timeout time.Duration) (string, error)

	// Act carries out the final action. In the capture kernel it does
	// not return.
	Act func(a config.Action)

	// Hooks are optional calls at points of the capture, for fault
	// injection; all nil in production.
	Hooks Hooks
}

// Hooks are called, when set, at fixed points of the capture. They exist
// for the fault tests (config key test_panic): nothing else sets them.
type Hooks struct {
	// Start runs first thing in Capture, in its goroutine.
	Start func()
	// Writing runs at every progress update while the dump's pages are
	// written, in the goroutine that writes them.
	Writing func()
}

// Clock is the time as the capture sees it.
type Clock interface {
	Now() time.Time
	// After is time.After: a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// RealClock is the system's clock.
type RealClock struct{}

func (RealClock) Now() time.Time                         { return time.Now() }
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// since returns the time since t on env's clock.
func (env *Env) since(t time.Time) time.Duration { return env.Clock.Now().Sub(t) }

// logf is env.Console.Logf.
func (env *Env) logf(format string, args ...any) { env.Console.Logf(format, args...) }

// Remote is a directory tree on an SSH server, as an ssh target uses it
// (internal/sshdump over SFTP). Every method but Run and Close needs
// HasSFTP.
type Remote interface {
	HasSFTP() bool
	MkdirAll(dir string) error
	// Mkdir creates dir 0700; an error wrapping fs.ErrExist if it exists.
	Mkdir(dir string) error
	ReadDir(dir string) ([]fs.FileInfo, error)
	// Create creates a file exclusively, 0600.
	Create(name string) (RemoteFile, error)
	Rename(old, new string) error
	Remove(name string) error
	FreeSpace(dir string) (int64, error)
	// Run runs a shell command on the server with stdin as its input.
	Run(cmd string, stdin io.Reader) error
	Close() error
}

// RemoteFile is a file on the server.
type RemoteFile interface {
	io.WriterAt
	io.ReaderAt
	io.Writer
	// Preallocate reserves a range (diskdump.Preallocator).
	Preallocate(off, size int64) error
	Sync() error
	Close() error
}
