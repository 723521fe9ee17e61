package builder

import (
	"bytes"
	"errors"
	"fmt"
	"path"
)

// ErrBadHook means a hook named in the config is not a static Linux
// executable for the capture kernel's architecture: the capture image
// has no shell, no libc and no dynamic loader to run anything else.
var ErrBadHook = errors.New("not a usable hook")

// HookMode is a hook's mode in the image: only root runs it, and only
// root may read it (hooks may hold credentials for the site's tooling).
const HookMode = 0o700

// hookEntries reads the hooks at paths (from the image tree if s is
// set, else from the host), checks each as a static executable for arch
// and returns the entries that pack each at the same path.
func hookEntries(paths []string, s *Sysroot, arch string) ([]entry, error) {
	var es []entry
	for _, p := range paths {
		if !path.IsAbs(p) || path.Clean(p) != p {
			return nil, fmt.Errorf("builder: hook %q: %w: not a clean absolute path", p, ErrBadHook)
		}
		var (
			data []byte
			err  error
		)
		if s != nil {
			data, err = s.ReadFile(p, maxInputSize)
		} else {
			data, err = readInput(p)
		}
		if err != nil {
			return nil, fmt.Errorf("builder: hook %s: %w", p, err)
		}
		if !bytes.HasPrefix(data, []byte("\x7fELF")) {
			what := "not an ELF executable"
			if bytes.HasPrefix(data, []byte("#!")) {
				what = "a script"
			}
			return nil, fmt.Errorf("builder: hook %s: %w: %s; the capture image has no shell or interpreter: build the hook as a static executable (Go: CGO_ENABLED=0 go build)", p, ErrBadHook, what)
		}
		if err := checkStaticELF(p, bytes.NewReader(data), arch, ErrBadHook,
			"build it static (Go: CGO_ENABLED=0; C: -static)"); err != nil {
			return nil, fmt.Errorf("builder: hook %w", err)
		}
		es = append(es, fileEntry(p, HookMode, data, p))
	}
	return es, nil
}
