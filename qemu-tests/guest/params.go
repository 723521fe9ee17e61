// Package guest holds what the QEMU crash tests and their first-stage init
// share: the parameters the harness writes into the stage-1 image, and the
// marker strings both sides agree on.
package guest

import (
	"fmt"
	"strings"
)

// ParamsPath is where the harness puts Params in the stage-1 image.
const ParamsPath = "/stage1.json"

// Params drive the first-stage init.
type Params struct {
	ID          string     // run id, part of every marker
	Kernel      string     // capture kernel in the stage-1 image
	Initrd      string     // capture initramfs in the stage-1 image ("" = none)
	Append      string     // extra capture kernel arguments
	Cmdline     string     // full capture command line, replacing the derived one
	AnonMiB     int        // random anonymous memory, one user marker per MiB
	ZeroMiB     int        // anonymous memory written with zeros
	CacheDevice string     // device to mount read-only for the page-cache workload
	CacheFSType string     // its filesystem type
	CacheFile   string     // file on it to read into the page cache
	Commands    [][]string // programs to run after loading, before the crash
	NoCrash     bool       // power off instead of crashing
}

// Marker returns GOKDUMP-<kind>-<id>-<n>. Kinds: USER (anonymous memory,
// one per MiB), CACHE (the page-cache file, one per MiB), KMSG (the kernel
// log line). Searching for MarkerPrefix finds every marker of a run.
func Marker(kind, id string, n int) string {
	return MarkerPrefix(kind, id) + fmt.Sprintf("%06d", n)
}

// MarkerPrefix is the part of a marker before its number. It is built at
// run time so the whole string never sits in a binary's text.
func MarkerPrefix(kind, id string) string {
	return strings.Join([]string{"GOKDUMP", kind, id, ""}, "-")
}
