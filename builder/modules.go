package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

var (
	// ErrModuleNotFound means a requested module is neither a module file
	// in modules.dep nor built into the kernel (modules.builtin).
	ErrModuleNotFound = errors.New("module not found")
	// ErrNoModulesDep means the modules directory has no modules.dep: it
	// is not a /lib/modules/KVER tree, or depmod was not run on it.
	ErrNoModulesDep = errors.New("no modules.dep")
	// ErrBadModuleIndex means modules.dep or a sibling index is malformed
	// or names a file we refuse to copy (outside the tree, not a module).
	ErrBadModuleIndex = errors.New("malformed module index")
)

// maxIndexSize bounds the module index files we read into memory. The
// largest on a distribution kernel (modules.alias) is a few MiB.
const maxIndexSize = 64 << 20

// moduleExts are the module file suffixes the capture init can load: plain
// .ko through finit_module, the compressed ones either by the kernel
// (MODULE_INIT_COMPRESSED_FILE) or by decompressing in user space.
var moduleExts = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// A Module is one kernel module file to pack.
type Module struct {
	Name string   // as the kernel spells it: '-' read as '_'
	Path string   // relative to the modules directory, as modules.dep spells it
	Deps []string // names of the modules it links against (modules.dep)
	Pre  []string // names of modules.softdep "pre:" modules that are packed
}

// A ModuleSet is the result of ResolveModules: the module files to pack, in
// the order to load them.
type ModuleSet struct {
	Dir     string   // the /lib/modules/KVER directory read (on the host)
	Release string   // KVER: the base name of Dir
	Modules []Module // load order: every module after all it depends on
	Builtin []string // requested names the kernel has built in, sorted
	Missing []string // optional names the tree lacks, sorted
	Notes   []string // soft dependencies skipped, and why

	fsys    fs.FS    // Dir, to read the modules from
	sysroot *Sysroot // the image tree Dir is in, if any
	treeDir string   // Dir's path in sysroot
}

// read returns the file of module m and the host path that names it in a
// file list.
func (s *ModuleSet) read(m Module) (data []byte, src string, err error) {
	if data, err = readFileFS(s.fsys, m.Path, maxInputSize, ErrBadEntry); err != nil {
		return nil, "", err
	}
	if s.sysroot == nil {
		return data, filepath.Join(s.Dir, filepath.FromSlash(m.Path)), nil
	}
	if src, err = s.sysroot.HostPath(path.Join(s.treeDir, m.Path)); err != nil {
		return nil, "", fmt.Errorf("builder: %w", err)
	}
	return data, src, nil
}

// Paths returns the module paths in load order, relative to Dir.
func (s *ModuleSet) Paths() []string {
	p := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		p[i] = m.Path
	}
	return p
}

// Names returns the module names in load order.
func (s *ModuleSet) Names() []string {
	n := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		n[i] = m.Name
	}
	return n
}

// NormalizeModuleName spells a module name as the kernel does: modprobe and
// the kernel treat '-' and '_' as the same character in module names.
func NormalizeModuleName(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// SplitModuleNames turns repeated and comma-separated module arguments into
// normalized names, sorted and without duplicates or empty entries, so the
// image does not depend on the order the names were given in.
func SplitModuleNames(args []string) []string {
	var names []string
	for _, a := range args {
		for n := range strings.SplitSeq(a, ",") {
			n = strings.TrimSpace(n)
			n = strings.TrimSuffix(n, ".ko")
			if n != "" {
				names = append(names, NormalizeModuleName(n))
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// moduleName derives a module's name from its file path, or "" if the path
// does not end in a module suffix.
func moduleName(p string) string {
	base := path.Base(p)
	for _, ext := range moduleExts {
		if n, ok := strings.CutSuffix(base, ext); ok && n != "" {
			return NormalizeModuleName(n)
		}
	}
	return ""
}

// moduleIndex holds what ResolveModules needs from a modules directory.
type moduleIndex struct {
	path    map[string]string   // module name → path relative to the tree
	deps    map[string][]string // module name → dependency names, modules.dep order
	builtin map[string]bool     // names in modules.builtin
	softPre map[string][]string // module name → softdep "pre:" names (normalized)
	aliases aliasTable          // modules.alias
	// builtinAliases maps aliases of built-in code (modules.builtin.modinfo)
	// to the built-in module's name.
	builtinAliases aliasTable
	// mi, for a tree without modules.dep, fills deps, softPre and aliases
	// from the modules' .modinfo as they are asked for.
	mi *modinfoSource
}

// ensure makes sure the index knows the dependencies of name.
func (ix *moduleIndex) ensure(name string) error {
	if ix.mi == nil {
		return nil
	}
	return ix.mi.load(ix, name)
}

// aliasTable maps module aliases to module names. Most aliases are plain
// strings; device aliases are shell globs.
type aliasTable struct {
	exact map[string][]string
	globs []aliasGlob
}

type aliasGlob struct{ pattern, module string }

func (t *aliasTable) add(alias, module string) {
	alias = normalizeAlias(alias)
	if strings.ContainsAny(alias, "*?[") {
		t.globs = append(t.globs, aliasGlob{alias, module})
		return
	}
	if t.exact == nil {
		t.exact = map[string][]string{}
	}
	if !slices.Contains(t.exact[alias], module) {
		t.exact[alias] = append(t.exact[alias], module)
	}
}

// match returns the modules an alias resolves to, sorted.
func (t *aliasTable) match(name string) []string {
	name = normalizeAlias(name)
	mods := slices.Clone(t.exact[name])
	for _, g := range t.globs {
		if ok, err := path.Match(g.pattern, name); err == nil && ok && !slices.Contains(mods, g.module) {
			mods = append(mods, g.module)
		}
	}
	slices.Sort(mods)
	return mods
}

// normalizeAlias reads '-' as '_' as kmod does for aliases: everywhere but
// inside a bracket expression, where '-' is a range.
func normalizeAlias(s string) string {
	b := []byte(s)
	inBracket := false
	for i, c := range b {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			b[i] = '_'
		}
	}
	return string(b)
}

// readIndex reads one index file of a modules directory. A missing
// optional file reads as empty.
func readIndex(fsys fs.FS, name string, optional bool) ([]byte, error) {
	b, err := readFileFS(fsys, name, maxIndexSize, ErrBadModuleIndex)
	if optional && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// loadModuleIndex reads the index files of the modules directory fsys,
// dir on the host.
func loadModuleIndex(fsys fs.FS, dir string) (*moduleIndex, error) {
	dep, err := readIndex(fsys, "modules.dep", false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("builder: %s: %w (is it a /lib/modules/KVER directory? run depmod -b ROOT KVER on an unpacked tree)", dir, ErrNoModulesDep)
	}
	if err != nil {
		return nil, err
	}
	ix := &moduleIndex{}
	if err := ix.parseDep(dep); err != nil {
		return nil, fmt.Errorf("builder: %s: %w", filepath.Join(dir, "modules.dep"), err)
	}
	for _, f := range []struct {
		name  string
		parse func([]byte)
	}{
		{"modules.builtin", ix.parseBuiltin},
		{"modules.softdep", ix.parseSoftdep},
		{"modules.alias", ix.parseAlias},
		{"modules.builtin.modinfo", ix.parseBuiltinModinfo},
	} {
		b, err := readIndex(fsys, f.name, true)
		if err != nil {
			return nil, err
		}
		f.parse(b)
	}
	return ix, nil
}

// checkModulePath refuses paths that would copy something from outside the
// tree or that are not module files.
func checkModulePath(p string) error {
	if !filepath.IsLocal(p) || path.Clean(p) != p || strings.Contains(p, "\\") {
		return fmt.Errorf("%w: path %q is not inside the modules directory", ErrBadModuleIndex, p)
	}
	if moduleName(p) == "" {
		return fmt.Errorf("%w: %q is not a module file (%s)", ErrBadModuleIndex, p, strings.Join(moduleExts, ", "))
	}
	return nil
}

// parseDep reads modules.dep: "path: dep-path dep-path ..." per line.
func (ix *moduleIndex) parseDep(b []byte) error {
	ix.path = map[string]string{}
	ix.deps = map[string][]string{}
	for i, line := range lines(b) {
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("line %d: no ':': %w", i+1, ErrBadModuleIndex)
		}
		key = strings.TrimSpace(key)
		if err := checkModulePath(key); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		name := moduleName(key)
		if _, dup := ix.deps[name]; dup {
			continue // depmod lists one file per name; keep the first
		}
		var deps []string
		for _, d := range strings.Fields(rest) {
			if err := checkModulePath(d); err != nil {
				return fmt.Errorf("line %d: %w", i+1, err)
			}
			dn := moduleName(d)
			if _, known := ix.path[dn]; !known {
				ix.path[dn] = d // in case it has no line of its own
			}
			if dn != name && !slices.Contains(deps, dn) {
				deps = append(deps, dn)
			}
		}
		ix.path[name] = key
		ix.deps[name] = deps
	}
	return nil
}

// parseBuiltin reads modules.builtin: one path per line, for code built in.
func (ix *moduleIndex) parseBuiltin(b []byte) {
	ix.builtin = map[string]bool{}
	for _, line := range lines(b) {
		if n := moduleName(strings.TrimSpace(line)); n != "" {
			ix.builtin[n] = true
		}
	}
}

// parseSoftdep reads modules.softdep: "softdep NAME pre: A B post: C".
// Only pre: matters here; post: modules are optional extras.
func (ix *moduleIndex) parseSoftdep(b []byte) {
	ix.softPre = map[string][]string{}
	for _, line := range lines(b) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "softdep" {
			continue
		}
		name := NormalizeModuleName(f[1])
		pre := false
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					ix.softPre[name] = append(ix.softPre[name], NormalizeModuleName(w))
				}
			}
		}
	}
}

// parseAlias reads modules.alias: "alias PATTERN NAME".
func (ix *moduleIndex) parseAlias(b []byte) {
	for _, line := range lines(b) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" {
			ix.aliases.add(f[1], NormalizeModuleName(f[2]))
		}
	}
}

// parseBuiltinModinfo reads modules.builtin.modinfo, NUL-separated
// "name.key=value" strings, for the aliases of built-in code (for example
// crc32c_generic provides "crc32c").
func (ix *moduleIndex) parseBuiltinModinfo(b []byte) {
	for rec := range bytes.SplitSeq(b, []byte{0}) {
		name, alias, ok := strings.Cut(string(rec), ".alias=")
		if ok && name != "" && alias != "" && !strings.Contains(name, "=") {
			ix.builtinAliases.add(alias, NormalizeModuleName(name))
		}
	}
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// lookup resolves a name the way modprobe does, in this order: a module
// file, code built in, an alias of module files, an alias of built-in code.
// It returns the loadable modules, or the built-in name, or neither.
func (ix *moduleIndex) lookup(name string) (mods []string, builtin string, err error) {
	if _, ok := ix.deps[name]; ok {
		return []string{name}, "", nil
	}
	if _, ok := ix.path[name]; ok {
		return []string{name}, "", nil
	}
	if ix.builtin[name] {
		return nil, name, nil
	}
	if ix.mi != nil {
		// Aliases live in the modules themselves: read them all.
		if err := ix.mi.loadAll(ix); err != nil {
			return nil, "", err
		}
	}
	if m := ix.aliases.match(name); len(m) > 0 {
		for _, n := range m {
			if _, ok := ix.path[n]; ok {
				mods = append(mods, n)
			}
		}
		if len(mods) > 0 {
			return mods, "", nil
		}
	}
	if m := ix.builtinAliases.match(name); len(m) > 0 {
		return nil, m[0], nil
	}
	return nil, "", nil
}

// ResolveModules computes which module files of dir, a /lib/modules/KVER
// directory with depmod's index files, must be packed so that the named
// modules load, and in what order. It pulls in the modules.dep closure and
// the modules.softdep "pre:" modules of everything it packs. Names are
// module names ('-' and '_' alike) or aliases; a name the kernel has built
// in is reported in Builtin, a name found nowhere is an error wrapping
// ErrModuleNotFound that names it. The order is deterministic: it depends on
// the set of names, not on their order. ResolveModules reads only dir.
//
// A tree without modules.dep (unpacked from a package, depmod not run) is
// read through the modules' own .modinfo sections instead, and Notes says
// so.
func ResolveModules(dir string, names []string) (*ModuleSet, error) {
	return ResolveModuleSet(dir, names, nil)
}

// ResolveModuleSet is ResolveModules with optional names besides: those the
// tree has (as module files or built in) are resolved like the others, and
// those it lacks are listed in Missing instead of failing.
func ResolveModuleSet(dir string, names, optional []string) (*ModuleSet, error) {
	dir = filepath.Clean(dir)
	return resolveModuleSet(&ModuleSet{Dir: dir, Release: filepath.Base(dir), fsys: hostDir(dir)}, names, optional)
}

// ResolveModules is ResolveModuleSet for the modules directory dir of the
// image tree (a path in it, such as /usr/lib/modules/KVER): every file is
// read through the tree, whose links resolve inside it.
func (s *Sysroot) ResolveModules(dir string, names, optional []string) (*ModuleSet, error) {
	dir = path.Clean("/" + dir)
	return resolveModuleSet(&ModuleSet{Dir: s.display(dir), Release: path.Base(dir),
		fsys: s.FS(dir), sysroot: s, treeDir: dir}, names, optional)
}

func resolveModuleSet(set *ModuleSet, names, optional []string) (*ModuleSet, error) {
	dir := set.Dir
	ix, err := loadModuleIndex(set.fsys, dir)
	if errors.Is(err, ErrNoModulesDep) {
		mix, merr := loadModinfoIndex(set.fsys, dir)
		if merr != nil || (len(mix.path) == 0 && len(mix.builtin) == 0) {
			return nil, err // not a modules tree at all: say what is missing
		}
		ix, err = mix, nil
		set.Notes = append(set.Notes, modinfoNote(dir))
	}
	if err != nil {
		return nil, err
	}
	r := resolver{ix: ix, set: set, state: map[string]int{}}
	var missing []string
	required := SplitModuleNames(names)
	all := SplitModuleNames(append(slices.Clone(names), optional...))
	for _, n := range all {
		mods, builtin, err := ix.lookup(n)
		if err != nil {
			return nil, err
		}
		switch {
		case builtin != "":
			set.Builtin = append(set.Builtin, n)
		case len(mods) == 0 && slices.Contains(required, n):
			missing = append(missing, n)
		case len(mods) == 0:
			set.Missing = append(set.Missing, n)
		}
		for _, m := range mods {
			if err := r.visit(m, nil); err != nil {
				return nil, fmt.Errorf("builder: %s: %w", dir, err)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("builder: %w in %s (neither in modules.dep nor in modules.builtin): %s",
			ErrModuleNotFound, dir, strings.Join(missing, ", "))
	}
	for _, m := range set.Modules {
		fi, err := fs.Stat(set.fsys, m.Path)
		if err != nil {
			return nil, fmt.Errorf("builder: module %s: %w", m.Name, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("builder: module %s: %s is not a regular file: %w", m.Name, m.Path, ErrBadModuleIndex)
		}
	}
	return set, nil
}

type resolver struct {
	ix    *moduleIndex
	set   *ModuleSet
	state map[string]int // 0 unseen, 1 on the current path, 2 placed
}

// visit places name after its soft and hard dependencies (depth first, so
// the result is a topological order). chain is the path of hard
// dependencies leading here, for the cycle error.
func (r *resolver) visit(name string, chain []string) error {
	switch r.state[name] {
	case 2:
		return nil
	case 1:
		return fmt.Errorf("%w: dependency cycle %s → %s", ErrBadModuleIndex, strings.Join(chain, " → "), name)
	}
	r.state[name] = 1
	chain = append(chain, name)
	if err := r.ix.ensure(name); err != nil {
		return err
	}
	m := Module{Name: name, Path: r.ix.path[name], Deps: r.ix.deps[name]}
	for _, s := range r.ix.softPre[name] {
		mods, builtin, err := r.ix.lookup(s)
		if err != nil {
			return err
		}
		switch {
		case builtin != "":
			r.set.Notes = append(r.set.Notes, fmt.Sprintf("%s: soft dependency %s is built in (%s)", name, s, builtin))
		case len(mods) == 0:
			r.set.Notes = append(r.set.Notes, fmt.Sprintf("%s: soft dependency %s not found, skipped", name, s))
		}
		for _, sm := range mods {
			// A soft dependency that needs (or is) a module whose own
			// dependencies are still being placed would close a loop: it is
			// optional, so leave it to load after instead of failing.
			if r.reachesOpen(sm, map[string]bool{}) {
				r.set.Notes = append(r.set.Notes, fmt.Sprintf("%s: soft dependency %s needs it loaded first, skipped", name, sm))
				continue
			}
			if err := r.visit(sm, nil); err != nil {
				return err
			}
			if !slices.Contains(m.Pre, sm) {
				m.Pre = append(m.Pre, sm)
			}
		}
	}
	// modprobe loads modules.dep entries last to first: the list is ordered
	// so that each entry may need the ones after it.
	for _, d := range slices.Backward(m.Deps) {
		if err := r.visit(d, chain); err != nil {
			return err
		}
	}
	r.state[name] = 2
	r.set.Modules = append(r.set.Modules, m)
	return nil
}

// reachesOpen reports whether name, or a module in its modules.dep closure,
// is on the path being placed.
func (r *resolver) reachesOpen(name string, seen map[string]bool) bool {
	if r.state[name] == 1 {
		return true
	}
	if r.state[name] == 2 || seen[name] {
		return false
	}
	seen[name] = true
	if r.ix.ensure(name) != nil {
		return false // visit reports the error
	}
	for _, d := range r.ix.deps[name] {
		if r.reachesOpen(d, seen) {
			return true
		}
	}
	return false
}
