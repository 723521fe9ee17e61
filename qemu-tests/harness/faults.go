package harness

import "github.com/gokdump/gokdump/qemu-tests/internal/vm"

// Outcome is what the capture /init reported on the console through its
// machine-readable lines (README, "Output"), and when.
type Outcome = vm.Outcome

// Outcome parses the capture's result lines from the log. Only the
// capture kernel's part counts: lines after the first capture line.
func (r *Run) Outcome() Outcome { return vm.ParseOutcome(r.Log) }

// ExtractFrom copies a file out of an ext4 image with debugfs (no root
// needed) into dst, created 0600.
func ExtractFrom(img, path, dst string) error { return vm.ExtractFrom(img, path, dst) }

// Entry is a directory entry of an ext4 image.
type Entry = vm.Entry

// LsFrom lists a directory of an ext4 image with debugfs: name → entry.
func LsFrom(img, dir string) (map[string]Entry, error) { return vm.LsFrom(img, dir) }
