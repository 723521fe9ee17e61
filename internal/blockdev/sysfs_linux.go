package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Sys names the directories device discovery reads. The zero value means
// the running system's /sys and /dev; tests point it at a fake tree.
type Sys struct {
	SysDir string // sysfs mount point; "" means /sys
	DevDir string // device nodes (devtmpfs); "" means /dev
}

func (s Sys) sysDir() string {
	if s.SysDir == "" {
		return "/sys"
	}
	return s.SysDir
}

func (s Sys) devDir() string {
	if s.DevDir == "" {
		return "/dev"
	}
	return s.DevDir
}

// List returns the block devices in /sys/class/block, whole devices before
// partitions, without opening them.
func (s Sys) List() ([]Device, error) {
	dir := filepath.Join(s.sysDir(), "class", "block")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blockdev: %w", err)
	}
	var devs []Device
	for _, e := range entries {
		d, err := s.readSysfs(dir, e.Name())
		if err != nil {
			// Devices come and go (loop, hotplug) while we read.
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		devs = append(devs, d)
	}
	sort.SliceStable(devs, func(i, j int) bool {
		a, b := devs[i], devs[j]
		if (a.Partition == 0) != (b.Partition == 0) {
			return a.Partition == 0
		}
		if a.Major != b.Major {
			return a.Major < b.Major
		}
		return a.Minor < b.Minor
	})
	return devs, nil
}

func (s Sys) readSysfs(dir, name string) (Device, error) {
	p := filepath.Join(dir, name)
	d := Device{Name: name, Path: filepath.Join(s.devDir(), name)}
	dev, err := readSysfsString(filepath.Join(p, "dev"))
	if err != nil {
		return d, err
	}
	maj, min, ok := strings.Cut(dev, ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return d, fmt.Errorf("blockdev: %s/dev: bad device number %q", p, dev)
	}
	d.Major, d.Minor = uint32(ma), uint32(mi)
	sectors, err := readSysfsInt(filepath.Join(p, "size"))
	if err != nil {
		return d, err
	}
	if sectors > 1<<53 { // sysfs counts 512-byte sectors whatever the device's
		return d, fmt.Errorf("blockdev: %s/size: %d sectors", p, sectors)
	}
	d.Size = sectors * 512
	if n, err := readSysfsInt(filepath.Join(p, "partition")); err == nil {
		d.Partition = int(n)
		// /sys/class/block/sda1 links to …/block/sda/sda1.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return d, fmt.Errorf("blockdev: %w", err)
		}
		d.Parent = filepath.Base(filepath.Dir(real))
	} else if !errors.Is(err, os.ErrNotExist) {
		return d, err
	}
	return d, nil
}

func readSysfsString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("blockdev: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func readSysfsInt(path string) (int64, error) {
	s, err := readSysfsString(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("blockdev: %s: not a count: %q", path, s)
	}
	return n, nil
}

// Scan lists the block devices and probes each: partition tables of whole
// devices, filesystems of partitions and of whole devices without a
// partition table. Devices that cannot be read carry the reason in Err.
func (s Sys) Scan() ([]Device, error) {
	devs, err := s.List()
	if err != nil {
		return nil, err
	}
	tables := make(map[string]*Table)
	for i := range devs {
		d := &devs[i]
		if d.Size == 0 {
			continue // no medium, unused loop device
		}
		s.probe(d, tables)
	}
	return devs, nil
}

// probe fills in d; whole devices come first so that tables holds the
// partition tables their partitions need.
func (s Sys) probe(d *Device, tables map[string]*Table) {
	// O_NONBLOCK: opening a drive without a medium fails at once rather
	// than waiting for one.
	f, err := os.OpenFile(d.Path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		d.Err = err
		return
	}
	defer f.Close()

	if d.Partition == 0 {
		t, err := ReadPartitionTable(f, d.Size, s.logicalBlockSize(d.Name))
		if err == nil {
			// The partitions hold the filesystems; anything that
			// looks like one on the whole device is stale.
			d.Table = t
			tables[d.Name] = t
			return
		}
		d.FS, d.Err = probeFS(f, d.Size)
		if d.FS == nil && d.Err == nil && !errors.Is(err, ErrNoPartitionTable) {
			d.Err = err
		}
		return
	}
	if t := tables[d.Parent]; t != nil {
		if p := t.Partition(d.Partition); p != nil {
			d.PartUUID, d.PartLabel = p.UUID, p.Label
		}
	}
	d.FS, d.Err = probeFS(f, d.Size)
}

func probeFS(f *os.File, size int64) (*Filesystem, error) {
	fs, err := Probe(f, size)
	if errors.Is(err, ErrNoFilesystem) {
		return nil, nil
	}
	return fs, err
}

// logicalBlockSize is the sector size GPT LBAs count in; 0 if sysfs does
// not say.
func (s Sys) logicalBlockSize(name string) int {
	n, err := readSysfsInt(filepath.Join(s.sysDir(), "class", "block", name, "queue", "logical_block_size"))
	if err != nil || n < 512 || n > 65536 || !isPowerOf2(uint64(n)) {
		return 0
	}
	return int(n)
}

// Find returns the one device that spec names (see ParseSpec). It fails
// with a *NotFoundError, listing what was seen, if there is none, and with
// ErrAmbiguous if there are several.
func (s Sys) Find(spec string) (*Device, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return s.find(sp)
}

func (s Sys) find(sp Spec) (*Device, error) {
	devs, err := s.Scan()
	if err != nil {
		return nil, err
	}
	if sp.Kind == ByPath {
		sp = s.resolvePath(sp, devs)
	}
	return match(sp, devs)
}

// resolvePath turns a path spec that is not a node in DevDir, such as a
// /dev/disk/by-id link, into the node of the device with the same device
// number.
func (s Sys) resolvePath(sp Spec, devs []Device) Spec {
	var st unix.Stat_t
	if err := unix.Stat(sp.Value, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return sp
	}
	maj, min := unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	for _, d := range devs {
		if d.Major == maj && d.Minor == min {
			return Spec{ByPath, d.Path}
		}
	}
	return sp
}

// Wait is Find retried every poll until a device matches or ctx is done:
// devices appear as drivers load and probe. On timeout the error lists
// the devices that were there. Errors that waiting cannot cure, such as a
// bad spec or several matching devices, return at once.
func (s Sys) Wait(ctx context.Context, spec string, poll time.Duration) (*Device, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	start := time.Now()
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		d, err := s.find(sp)
		var nf *NotFoundError
		if !errors.As(err, &nf) {
			return d, err
		}
		select {
		case <-ctx.Done():
			nf.Waited, nf.Cause = time.Since(start), ctx.Err()
			return nil, nf
		case <-t.C:
			t.Reset(poll)
		}
	}
}

// Find returns the device spec names, looking in root (Sys{} for the
// running system). See Sys.Find.
func Find(spec string, root Sys) (*Device, error) { return root.Find(spec) }

// Wait waits for the device spec names to appear on the running system.
// See Sys.Wait.
func Wait(ctx context.Context, spec string, poll time.Duration) (*Device, error) {
	return Sys{}.Wait(ctx, spec, poll)
}
