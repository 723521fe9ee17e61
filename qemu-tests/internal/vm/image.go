package vm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gokdump/gokdump/builder"
	"github.com/gokdump/gokdump/qemu-tests/guest"
)

// WriteImage builds an initramfs with the project's builder at path
// (0600: a capture image may carry an ssh key).
func WriteImage(ctx context.Context, path string, opts builder.Options) (*builder.Result, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	res, err := builder.Build(ctx, f, opts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", filepath.Base(path), err)
	}
	return res, nil
}

// Where the stage-1 image carries the capture kernel and its initramfs.
const (
	Stage1CaptureKernel = "/capture/vmlinuz"
	Stage1CaptureInitrd = "/capture/initrd.img"
)

// Stage1 is the first kernel's initramfs: the stage-1 init with its
// parameters, the modules it loads, and the capture kernel and initramfs
// it loads through gokdump's loader.
type Stage1 struct {
	Init            string // the stage-1 init binary
	Arch            string // its GOARCH
	ModulesDir      string // "" packs no modules
	Modules         []string
	OptionalModules []string // packed when the tree has them
	// Params are the stage-1 init's; Kernel and Initrd are set here.
	Params        guest.Params
	CaptureKernel string // file
	CaptureInitrd string // file; "" loads the capture kernel alone
	Extra         []builder.File
}

// WriteStage1 builds the stage-1 image at path, uncompressed (every kernel
// unpacks a plain newc archive, whatever decompressors it has).
func WriteStage1(ctx context.Context, path string, s Stage1) (*builder.Result, error) {
	p := s.Params
	p.Kernel, p.Initrd = Stage1CaptureKernel, ""
	kernel, err := os.ReadFile(s.CaptureKernel)
	if err != nil {
		return nil, fmt.Errorf("capture kernel: %w", err)
	}
	files := []builder.File{{Path: Stage1CaptureKernel, Data: kernel, Mode: 0o644}}
	if s.CaptureInitrd != "" {
		initrd, err := os.ReadFile(s.CaptureInitrd)
		if err != nil {
			return nil, fmt.Errorf("capture initramfs: %w", err)
		}
		files = append(files, builder.File{Path: Stage1CaptureInitrd, Data: initrd, Mode: 0o644})
		p.Initrd = Stage1CaptureInitrd
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	files = append([]builder.File{{Path: guest.ParamsPath, Data: pj, Mode: 0o644}}, files...)
	return WriteImage(ctx, path, builder.Options{
		Init:            s.Init,
		Arch:            s.Arch,
		ModulesDir:      s.ModulesDir,
		Modules:         s.Modules,
		OptionalModules: s.OptionalModules,
		Compress:        builder.CompressNone,
		Extra:           append(files, s.Extra...),
	})
}
