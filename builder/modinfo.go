package builder

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxModuleSize bounds a decompressed module. The largest modules of a
// distribution kernel (amdgpu, with debug info stripped) are ~20 MiB.
const maxModuleSize = 256 << 20

// ModInfo is what a module's .modinfo section says about linking and
// loading it.
type ModInfo struct {
	Name    string   // name=, normalized; "" if the module does not say
	Depends []string // depends=: modules it links against, normalized
	SoftPre []string // softdep= "pre:" names, normalized
	Aliases []string // alias=
}

// ReadModInfo reads the .modinfo section of a module file, decompressing
// .ko.xz, .ko.zst and .ko.gz first.
func ReadModInfo(file string) (*ModInfo, error) {
	data, err := readInput(file)
	if err != nil {
		return nil, err
	}
	return parseModuleFile(file, data)
}

// readModInfo is ReadModInfo of the file name of fsys, the directory dir
// on the host.
func readModInfo(fsys fs.FS, dir, name string) (*ModInfo, error) {
	data, err := readFileFS(fsys, name, maxInputSize, ErrBadEntry)
	if err != nil {
		return nil, err
	}
	return parseModuleFile(filepath.Join(dir, filepath.FromSlash(name)), data)
}

// parseModuleFile reads the .modinfo section of module file (named file,
// for its suffix and messages) whose contents are data.
func parseModuleFile(file string, data []byte) (*ModInfo, error) {
	data, err := decompressModule(file, data)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("builder: %s: %w: %w", file, ErrBadModuleIndex, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("builder: %s: %w: no .modinfo section", file, ErrBadModuleIndex)
	}
	if sec.Size > maxModuleSize {
		return nil, fmt.Errorf("builder: %s: %w: .modinfo of %d bytes", file, ErrBadModuleIndex, sec.Size)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("builder: %s: .modinfo: %w", file, err)
	}
	return parseModInfo(b), nil
}

// parseModInfo reads NUL-separated key=value strings.
func parseModInfo(b []byte) *ModInfo {
	mi := &ModInfo{}
	for rec := range bytes.SplitSeq(b, []byte{0}) {
		key, val, ok := strings.Cut(string(rec), "=")
		if !ok {
			continue
		}
		switch key {
		case "name":
			mi.Name = NormalizeModuleName(val)
		case "depends":
			for d := range strings.SplitSeq(val, ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.Depends = append(mi.Depends, NormalizeModuleName(d))
				}
			}
		case "softdep":
			mi.SoftPre = append(mi.SoftPre, softdepPre(strings.Fields(val))...)
		case "alias":
			mi.Aliases = append(mi.Aliases, val)
		}
	}
	return mi
}

// softdepPre returns the "pre:" names of a softdep word list.
func softdepPre(words []string) []string {
	var pre []string
	on := false
	for _, w := range words {
		switch w {
		case "pre:":
			on = true
		case "post:":
			on = false
		default:
			if on {
				pre = append(pre, NormalizeModuleName(w))
			}
		}
	}
	return pre
}

// decompressModule undoes the compression a module file's suffix names.
func decompressModule(name string, data []byte) ([]byte, error) {
	r, done, err := moduleReader(name, data)
	if err != nil {
		return nil, err
	}
	defer done()
	out, err := io.ReadAll(io.LimitReader(r, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("builder: %s: decompress: %w", name, err)
	}
	if len(out) > maxModuleSize {
		return nil, fmt.Errorf("builder: %s: %w: larger than %d bytes decompressed", name, ErrBadModuleIndex, maxModuleSize)
	}
	return out, nil
}

// moduleReader returns a reader of the module file name (data) with the
// compression its suffix names undone, and what to call when done.
func moduleReader(name string, data []byte) (io.Reader, func(), error) {
	nop := func() {}
	switch {
	case strings.HasSuffix(name, ".ko.xz"):
		// The decoder allocates its whole dictionary up front (8 MiB by
		// default); a module never needs one larger than itself.
		cfg := xz.ReaderConfig{DictCap: 8 << 20}
		if n, ok := xzSize(data); ok {
			cfg.DictCap = min(max(int(n), 4096), cfg.DictCap)
		}
		xr, err := cfg.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, nop, fmt.Errorf("builder: %s: %w", name, err)
		}
		return xr, nop, nil
	case strings.HasSuffix(name, ".ko.zst"):
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxModuleSize))
		if err != nil {
			return nil, nop, fmt.Errorf("builder: %s: %w", name, err)
		}
		return zr, zr.Close, nil
	case strings.HasSuffix(name, ".ko.gz"):
		gr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, nop, fmt.Errorf("builder: %s: %w", name, err)
		}
		return gr, nop, nil
	}
	return bytes.NewReader(data), nop, nil
}

// ErrModuleMachine means a module file is an ELF object for another
// machine than the image's: an arm64 image built from the host's x86-64
// /lib/modules would carry drivers its kernel refuses after a crash.
var ErrModuleMachine = errors.New("module built for another machine")

// checkModuleMachine checks that the module file name (data, compressed as
// its suffix says) is an ELF object for arch, from its header alone. A
// file that is not ELF (or does not decompress) is left to the kernel,
// which refuses it when the capture init loads it: only a module of
// another machine, which is a whole module tree of the wrong kind, is
// refused here.
func checkModuleMachine(name string, data []byte, arch string) error {
	want, ok := elfMachine[arch]
	if !ok {
		return nil
	}
	r, done, err := moduleReader(name, data)
	if err != nil {
		return nil
	}
	defer done()
	var hdr [20]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != elf.ELFMAG {
		return nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(hdr[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	// e_machine sits at offset 18 in both ELF classes.
	if got := elf.Machine(bo.Uint16(hdr[18:])); got != want {
		return fmt.Errorf("builder: %s: %w: %v, the image is for %s (%v): give the capture kernel's architecture"+
			" (--arch) and a modules tree of it (--kernel-modules, --kver, --sysroot)", name, ErrModuleMachine, got, arch, want)
	}
	return nil
}

// xzSize returns the uncompressed size of a single-stream .xz file from
// its index, which sits before the 12-byte stream footer.
func xzSize(b []byte) (uint64, bool) {
	if len(b) < 12+12 || string(b[len(b)-2:]) != "YZ" {
		return 0, false
	}
	back := (uint64(b[len(b)-8]) | uint64(b[len(b)-7])<<8 | uint64(b[len(b)-6])<<16 | uint64(b[len(b)-5])<<24 + 1) * 4
	if back > uint64(len(b)-12-12) {
		return 0, false
	}
	ix := b[uint64(len(b))-12-back : len(b)-12]
	if len(ix) == 0 || ix[0] != 0 {
		return 0, false
	}
	ix = ix[1:]
	uvarint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && i < len(ix); i++ {
			v |= uint64(ix[i]&0x7f) << (7 * i)
			if ix[i]&0x80 == 0 {
				ix = ix[i+1:]
				return v, true
			}
		}
		return 0, false
	}
	n, ok := uvarint()
	if !ok || n > uint64(len(ix)) {
		return 0, false
	}
	var total uint64
	for range n {
		if _, ok := uvarint(); !ok { // unpadded size
			return 0, false
		}
		u, ok := uvarint()
		if !ok || u > maxModuleSize {
			return 0, false
		}
		total += u
	}
	if total > maxModuleSize {
		return 0, false
	}
	return total, true
}

// modinfoSource stands in for depmod's index files in a tree that has
// none, such as one unpacked with dpkg -x (the package's postinst runs
// depmod; unpacking does not). Module paths come from walking the tree;
// dependencies, soft dependencies and aliases from each module's .modinfo,
// read only when the resolver asks about that module.
type modinfoSource struct {
	fsys    fs.FS
	dir     string // on the host, for messages
	loaded  map[string]bool
	aliases bool // every module's aliases are in the index
}

// maxModuleFiles bounds the walk of a modules tree; distribution kernels
// ship ~6000.
const maxModuleFiles = 100000

// loadModinfoIndex builds an index from the module files under dir. Where
// one name has several files, updates/ wins over the rest (depmod's
// default search order), then the first in path order.
func loadModinfoIndex(fsys fs.FS, dir string) (*moduleIndex, error) {
	ix := &moduleIndex{path: map[string]string{}, deps: map[string][]string{}, softPre: map[string][]string{},
		mi: &modinfoSource{fsys: fsys, dir: dir, loaded: map[string]bool{}}}
	n := 0
	err := fs.WalkDir(fsys, ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // directories are entered; build/source links are not followed
		}
		name := moduleName(rel)
		if name == "" {
			return nil
		}
		if n++; n > maxModuleFiles {
			return fmt.Errorf("%w: more than %d module files", ErrBadModuleIndex, maxModuleFiles)
		}
		if old, ok := ix.path[name]; !ok || strings.HasPrefix(rel, "updates/") && !strings.HasPrefix(old, "updates/") {
			ix.path[name] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("builder: %s: %w", dir, err)
	}
	for _, f := range []struct {
		name  string
		parse func([]byte)
	}{
		{"modules.builtin", ix.parseBuiltin},
		{"modules.builtin.modinfo", ix.parseBuiltinModinfo},
	} {
		b, err := readIndex(fsys, f.name, true)
		if err != nil {
			return nil, err
		}
		f.parse(b)
	}
	if ix.builtin == nil {
		ix.builtin = map[string]bool{}
	}
	return ix, nil
}

// load reads the .modinfo of module name, once.
func (s *modinfoSource) load(ix *moduleIndex, name string) error {
	p, ok := ix.path[name]
	if !ok || s.loaded[name] {
		return nil
	}
	s.loaded[name] = true
	mi, err := readModInfo(s.fsys, s.dir, p)
	if err != nil {
		return err
	}
	return s.add(ix, name, mi)
}

// add puts what a module's .modinfo says into the index.
func (s *modinfoSource) add(ix *moduleIndex, name string, mi *ModInfo) error {
	s.loaded[name] = true
	p := ix.path[name]
	var deps []string
	for _, d := range mi.Depends {
		if _, ok := ix.path[d]; !ok {
			return fmt.Errorf("builder: %s: %w: depends on %s, which is not in the tree", p, ErrBadModuleIndex, d)
		}
		if d != name && !slices.Contains(deps, d) {
			deps = append(deps, d)
		}
	}
	ix.deps[name] = deps
	ix.softPre[name] = mi.SoftPre
	for _, a := range mi.Aliases {
		ix.aliases.add(a, name)
	}
	return nil
}

// loadAll reads every module's .modinfo, for an alias lookup.
func (s *modinfoSource) loadAll(ix *moduleIndex) error {
	if s.aliases {
		return nil
	}
	s.aliases = true
	var names []string
	for n := range ix.path {
		if !s.loaded[n] {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	// Decompressing every module is the slow part (seconds for a
	// distribution kernel's .ko.xz files): read them in parallel, then
	// index them in order.
	infos := make([]*ModInfo, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				infos[i], errs[i] = readModInfo(s.fsys, s.dir, ix.path[names[i]])
			}
		})
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, n := range names {
		if errs[i] != nil {
			return errs[i]
		}
		if err := s.add(ix, n, infos[i]); err != nil {
			return err
		}
	}
	return nil
}

// modinfoNote is the note a set resolved without modules.dep carries.
func modinfoNote(dir string) string {
	return fmt.Sprintf("no modules.dep in %s (depmod was not run): dependencies read from the modules' .modinfo", path.Base(filepath.ToSlash(dir)))
}
