//go:build !linux || !(amd64 || arm || arm64 || loong64 || ppc || ppc64 || ppc64le || riscv64 || s390x)

package kexec

import (
	"fmt"
	"runtime"
)

// Load fails: this build has no kexec_file_load(2).
func (p *Plan) Load() error {
	return fmt.Errorf("kexec: %w on %s/%s", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// UnloadCrash fails: this build has no kexec_file_load(2).
func UnloadCrash() error {
	return fmt.Errorf("kexec: %w on %s/%s", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}
