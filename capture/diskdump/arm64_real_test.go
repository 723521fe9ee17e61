package diskdump

import (
	"strings"
	"testing"

	"github.com/gokdump/gokdump/internal/fixture"
)

// TestHeaderFromVmcoreARM64: the header's utsname comes from init_uts_ns
// in an arm64 dump's memory (through kimage_voffset), not the defaults.
func TestHeaderFromVmcoreARM64(t *testing.T) {
	for _, d := range fixture.RealDumpsOf(t, "arm64", fixture.ARM64Lines...) {
		t.Run(d.Name(), func(t *testing.T) {
			h := HeaderFromVmcore(d.Open(t))
			if h.Sysname != "Linux" || h.Release != d.KVer || h.Machine != "aarch64" || !strings.HasPrefix(h.Version, "#1 SMP ") || !strings.Contains(h.Version, " Debian ") {
				t.Errorf("utsname %q %q %q %q", h.Sysname, h.Release, h.Version, h.Machine)
			}
		})
	}
}
