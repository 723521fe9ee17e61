package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gokdump/gokdump/internal/kexec"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{
		name:  "test",
		short: "check that a crash would be caught, then crash this machine for real (needs --yes)",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			yes := fs.Bool("yes", false, "really crash the machine")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				return runTest(*yes, s.out)
			}
		},
	})
}

// sysrqTrigger is where the crash is triggered; tests point it elsewhere.
var sysrqTrigger = "/proc/sysrq-trigger"

func runTest(yes bool, w io.Writer) error {
	s, err := kexec.ReadStatus(kexecSysfsRoot, kexecProcRoot)
	if err != nil {
		return err
	}
	if !s.Ready() {
		printStatus(w, s)
		return errors.New("not crashing: the crash would not be caught")
	}
	if !yes {
		return errors.New("this crashes the machine (the capture kernel saves a dump, then it reboots): run with --yes")
	}
	fmt.Fprintln(w, "capture kernel loaded; crashing in 3 seconds (sysrq c)")
	unix.Sync()
	time.Sleep(3 * time.Second)
	unix.Sync()
	// sysrq c panics whatever kernel.sysrq says.
	return os.WriteFile(sysrqTrigger, []byte("c"), 0)
}
