package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gokdump/gokdump/capture/kexec"
)

// errNotCaught makes status exit 1.
var errNotCaught = errors.New("a crash now would not be caught")

func init() {
	register(&command{
		name:  "status",
		short: "tell whether a crash now would be caught (exit 0) or not (exit 1)",
		setup: func(fs *flag.FlagSet) func([]string) error {
			asJSON := fs.Bool("json", false, "print the status as JSON")
			return func(args []string) error {
				if len(args) != 0 {
					return errUsage
				}
				return runStatus(os.Stdout, *asJSON)
			}
		},
	})
}

// statusJSON is Status with its verdict, as --json prints it.
type statusJSON struct {
	kexec.Status
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems"`
}

func runStatus(w io.Writer, asJSON bool) error {
	s, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(statusJSON{Status: s, Ready: s.Ready(), Problems: append([]string{}, s.Problems()...)}); err != nil {
			return err
		}
	} else {
		printStatus(w, s)
	}
	if !s.Ready() {
		return errNotCaught
	}
	return nil
}

func printStatus(w io.Writer, s kexec.Status) {
	if s.Supported {
		reserved := "none"
		if s.CrashSize > 0 {
			reserved = fmt.Sprintf("%s (%d bytes)", kexec.MiB(s.CrashSize), s.CrashSize)
		}
		fmt.Fprintf(w, "reserved:       %s\n", reserved)
	}
	ck := "not on the kernel command line"
	if len(s.Crashkernel) > 0 {
		ck = "crashkernel=" + strings.Join(s.Crashkernel, " crashkernel=")
	}
	fmt.Fprintf(w, "boot parameter: %s\n", ck)
	if s.Supported {
		loaded := "not loaded"
		if s.Loaded {
			loaded = "loaded"
		}
		fmt.Fprintf(w, "capture kernel: %s\n", loaded)
	}
	if s.Lockdown != "" {
		fmt.Fprintf(w, "lockdown:       %s\n", s.Lockdown)
	}
	if s.KexecLoadDisabled {
		fmt.Fprintf(w, "kexec:          disabled until reboot (kernel.kexec_load_disabled)\n")
	}
	if s.Ready() {
		fmt.Fprintln(w, "a crash now would be caught")
		return
	}
	fmt.Fprintln(w, "a crash now would NOT be caught:")
	for _, p := range s.Problems() {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}
