package vmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/qemu-tests/internal/vm"
)

// Files Options.Keep gets, when the run made them.
const (
	KeepSerial     = "serial.log"            // the guest's console, timestamped
	KeepFirstBoot  = "serial-first-boot.log" // a first boot that died early, when booted again
	KeepReportJSON = "report.json"           // the report, as --json prints it
)

// keepFiles moves what the run left in its work directory into
// o.Keep (0700; files 0600: a dump holds the guest's memory): the serial
// logs, the dump and vmcore-dmesg.txt.
func (w *work) keepFiles() error {
	if err := os.MkdirAll(w.o.Keep, 0o700); err != nil {
		return err
	}
	for _, name := range []string{KeepSerial, KeepFirstBoot, crashdir.VMCore, crashdir.VMCoreIncomplete, crashdir.DmesgFile} {
		src := filepath.Join(w.dir, name)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		dst := filepath.Join(w.o.Keep, name)
		if err := vm.MoveFile(src, dst); err != nil {
			return fmt.Errorf("keep %s: %w", name, err)
		}
		w.r.Kept = append(w.r.Kept, dst)
		if w.r.Dump != nil && (name == crashdir.VMCore || name == crashdir.VMCoreIncomplete) {
			w.r.Dump.Kept = dst
		}
	}
	return nil
}

// keepReport writes the report into dir as report.json.
func keepReport(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p := filepath.Join(dir, KeepReportJSON)
	r.Kept = append(r.Kept, p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = r.WriteJSON(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
