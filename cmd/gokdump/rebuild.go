package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/kexec"
)

func init() {
	register(&command{
		name:  "rebuild",
		short: "build the capture initramfs for the running kernel and load it (what the service and kernel hook run)",
		long: `The image is host-only (the drivers of the config's target, detected on this
machine, taken from KVER's modules) when the config names a target, else
generic. What it was built as is recorded beside it in IMG.json, and
--if-needed rebuilds an image whose mode, target or drivers are not what
is wanted now, as well as one older than what it is built from.`,
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var f rebuildFlags
			fs.BoolVar(&f.ifNeeded, "if-needed", false, "build only when the image is missing, older than the kernel, config or init, or built\n"+
				"for other drivers than wanted now; load only when not loaded with this image")
			fs.StringVar(&f.kver, "kver", "", "kernel release to build for (default: uname -r); its modules tree must exist unless --drivers none")
			fs.StringVar(&f.image, "o", "", "image `PATH` (default /boot/gokdump-KVER.img beside a kernel in /boot, else\n"+
				builder.VarInitrdDir+"/gokdump-KVER.img)")
			f.config.define(fs, config.DefaultPath, "config `FILE` (the default one may be missing)")
			fs.StringVar(&f.drivers, "drivers", driversAuto, "`MODE`: hostonly, generic, none, or auto: hostonly when the config names a target, else\n"+
				"generic (none when the running kernel has no modules tree)")
			fs.BoolVar(&f.noLoad, "no-load", false, "build only (a kernel being installed is not the running one)")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				return runRebuild(f, s.out, s.err)
			}
		},
	})
}

type rebuildFlags struct {
	ifNeeded, noLoad     bool
	kver, image, drivers string
	config               configFlag
}

// rebuildBuildArgs are added to the build command rebuild runs; tests
// give their init there.
var rebuildBuildArgs []string

// initPaths are where the prebuilt capture init may be, for staleness.
func initPaths() []string {
	exe, _ := os.Executable()
	if exe == "" {
		return []string{"/usr/lib/gokdump/init"}
	}
	return []string{exe + "-init", "/usr/lib/gokdump/init", exe}
}

// imageRecord is what rebuild records beside an image it built
// (IMAGE.json), for --if-needed to compare with what is wanted now.
type imageRecord struct {
	Kver    string `json:"kver"`
	Drivers string `json:"drivers"` // hostonly, generic or none
	Target  string `json:"target,omitempty"`
	// Detected are, for host-only, the modules the target needed on this
	// machine, sorted.
	Detected   []string `json:"detected,omitempty"`
	Config     string   `json:"config,omitempty"` // the file packed, "" for none
	ModulesDir string   `json:"modules_dir,omitempty"`
	// The image the record is about: another file put in its place is
	// not vouched for.
	ImageSize  int64     `json:"image_size"`
	ImageMtime time.Time `json:"image_mtime"`
}

func recordPath(image string) string { return image + ".json" }

func runRebuild(f rebuildFlags, stdout, stderr io.Writer) error {
	running, err := buildRelease()
	if err != nil {
		return err
	}
	kver := f.kver
	if kver == "" {
		kver = running
	}
	k, err := hostKernel(kver)
	if err != nil {
		return err
	}
	if err := k.Missing(); err != nil && f.drivers != driversNone {
		return fmt.Errorf("%w; pass --drivers none for an image without drivers", err)
	}
	kernel, mods := k.Image, k.Modules
	image := f.image
	if image == "" {
		image = k.Initrd
		// The image's own directory (not /boot) may not exist yet.
		if err := os.MkdirAll(filepath.Dir(image), 0o700); err != nil {
			return err
		}
	}
	cfg, err := f.config.load()
	if err != nil {
		return err
	}
	packed := ""
	if _, err := os.Stat(f.config.path); err == nil {
		packed = f.config.path
	}
	want, why, detectErr := wantedImage(f, cfg, kver, mods, packed)
	if want == nil {
		return detectErr
	}
	inputs := append([]string{f.config.path}, initPaths()...)
	if kernel != "" {
		inputs = append(inputs, kernel)
	}
	if mods != "" {
		inputs = append(inputs, filepath.Join(mods, "modules.dep"))
	}

	build, reason := true, "as asked"
	if f.ifNeeded {
		build, reason = needsBuild(image, inputs, want, detectErr)
	}
	if build && detectErr != nil {
		return detectErr
	}
	if detectErr != nil {
		fmt.Fprintf(stderr, "gokdump rebuild: warning: %v; keeping %s\n", detectErr, image)
	}
	if build {
		args := []string{"build", "--force", "-o", image, "--drivers", want.Drivers}
		if mods != "" {
			args = append(args, "--kernel-modules", mods)
		}
		if packed != "" {
			args = append(args, "--config", packed)
		}
		fmt.Fprintf(stdout, "gokdump rebuild: building %s, drivers %s (%s): %s\n", image, want.Drivers, why, reason)
		if rc := run(append(args, rebuildBuildArgs...), stdout, stderr); rc != 0 {
			return fmt.Errorf("build failed")
		}
		if err := writeRecord(image, want); err != nil {
			// The image is good; only --if-needed loses its memory.
			fmt.Fprintf(stderr, "gokdump rebuild: warning: %v\n", err)
		}
	} else {
		fmt.Fprintf(stdout, "gokdump rebuild: %s is up to date\n", image)
	}
	if f.noLoad || kver != running {
		return nil
	}
	s, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot)
	if err != nil {
		return err
	}
	if s.Supported && s.CrashSize == 0 {
		fmt.Fprintln(stdout, "gokdump rebuild: no crashkernel= memory reserved; nothing to load (gokdump estimate says how much)")
		return nil
	}
	if f.ifNeeded && s.Loaded {
		if st, err := readLoadState(); err == nil && st.Initrd == image && st.Kernel == kernel {
			if fi, err := os.Stat(image); err == nil && fi.ModTime().UTC().Equal(st.InitrdTime) {
				fmt.Fprintln(stdout, "gokdump rebuild: already loaded")
				return nil
			}
		}
	}
	if kernel, err = k.ImagePath(); err != nil {
		return err
	}
	load := []string{"load", "--kernel", kernel, "--initrd", image}
	if f.config.set {
		load = append(load, "--config", f.config.path)
	}
	if rc := run(load, stdout, stderr); rc != 0 {
		return fmt.Errorf("load failed")
	}
	return nil
}

// wantedImage decides what image to build for kver: its driver mode and,
// for host-only, the drivers the target needs on this machine now. A nil
// record comes with the error that stops the build. A record with an
// error is host-only whose drivers could not be detected: an image built
// before for the same target may be kept, a new one cannot be built.
func wantedImage(f rebuildFlags, cfg *config.Config, kver, mods, packed string) (*imageRecord, string, error) {
	// mods is "" when FindKernel found no modules tree for kver.
	haveMods := mods != ""
	where := mods
	if !haveMods {
		where = "looked in " + strings.Join(builder.ModulesDirPaths(kver), ", ")
	}
	rec := &imageRecord{Kver: kver, Config: packed}
	if haveMods {
		rec.ModulesDir = mods
	}
	mode, why := f.drivers, "as asked"
	switch {
	case mode != "" && mode != driversAuto:
		switch mode {
		case driversHostOnly, driversGeneric, driversNone:
		default:
			return nil, "", usagef("--drivers %q: want %s, %s, %s or %s", mode, driversAuto, driversHostOnly, driversGeneric, driversNone)
		}
	case !haveMods && f.kver == "":
		mode, why = driversNone, fmt.Sprintf("the running kernel has no modules tree (%s): its drivers are built in", where)
	case cfg.Target != "":
		mode, why = driversHostOnly, "the config names target "+cfg.Target
	default:
		mode, why = driversGeneric, "no target in the config to detect drivers for"
	}
	if mode != driversNone && !haveMods {
		return nil, "", fmt.Errorf("no modules for kernel %s (%s); install them, or pass --drivers none for an image without drivers",
			kver, where)
	}
	rec.Drivers = mode
	if mode != driversHostOnly {
		return rec, why, nil
	}
	if cfg.Target == "" {
		return nil, "", fmt.Errorf("--drivers hostonly needs a config with a target (%s has none)", packed)
	}
	rec.Target = cfg.Target
	req, opt, _, err := detectTargetModules(cfg, io.Discard)
	if err != nil {
		return rec, why, err
	}
	rec.Detected = append(req, opt...)
	slices.Sort(rec.Detected)
	rec.Detected = slices.Compact(rec.Detected)
	return rec, why, nil
}

// needsBuild says whether image must be built again for --if-needed, and
// why: missing, older than one of its inputs, or built other than want.
// With detectErr, the drivers the target needs now are unknown: an image
// host-only for the same target is kept.
func needsBuild(image string, inputs []string, want *imageRecord, detectErr error) (bool, string) {
	fi, err := os.Stat(image)
	if err != nil {
		return true, image + " is missing"
	}
	if stale(image, inputs) {
		return true, image + " is older than the kernel, the config, the modules or the init"
	}
	have, err := readRecord(image)
	switch {
	case err != nil:
		return true, fmt.Sprintf("no record of how %s was built (%v)", image, err)
	case have.ImageSize != fi.Size() || !have.ImageMtime.Equal(fi.ModTime().UTC()):
		return true, fmt.Sprintf("%s changed since rebuild built it", image)
	case have.Drivers != want.Drivers:
		return true, fmt.Sprintf("%s has drivers %s", image, have.Drivers)
	case have.Target != want.Target:
		return true, fmt.Sprintf("%s was built for target %q", image, have.Target)
	case detectErr == nil && !slices.Equal(have.Detected, want.Detected):
		return true, fmt.Sprintf("the target's drivers are now %s, %s has %s",
			strings.Join(want.Detected, " "), image, strings.Join(have.Detected, " "))
	case have.Config != want.Config:
		return true, fmt.Sprintf("%s was built with config %q", image, have.Config)
	case have.ModulesDir != want.ModulesDir || have.Kver != want.Kver:
		return true, fmt.Sprintf("%s was built from %s", image, have.ModulesDir)
	}
	return false, "up to date"
}

func readRecord(image string) (*imageRecord, error) {
	b, err := os.ReadFile(recordPath(image))
	if err != nil {
		return nil, err
	}
	var r imageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", recordPath(image), err)
	}
	return &r, nil
}

// writeRecord records beside image how it was built.
func writeRecord(image string, r *imageRecord) error {
	fi, err := os.Stat(image)
	if err != nil {
		return err
	}
	r.ImageSize, r.ImageMtime = fi.Size(), fi.ModTime().UTC()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	o, err := createOutput(recordPath(image), true)
	if err != nil {
		return err
	}
	if _, err := o.Write(append(b, '\n')); err != nil {
		o.discard()
		return err
	}
	return o.commit()
}

// stale reports whether target is missing or older than any input that
// exists.
func stale(target string, inputs []string) bool {
	fi, err := os.Stat(target)
	if err != nil {
		return true
	}
	t := fi.ModTime()
	for _, in := range inputs {
		if ii, err := os.Stat(in); err == nil && ii.ModTime().After(t) {
			return true
		}
	}
	return false
}
