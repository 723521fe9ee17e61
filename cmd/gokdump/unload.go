package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gokdump/gokdump/internal/kexec"
)

func init() {
	register(&command{
		name:  "unload",
		short: "unload the capture kernel (a crash is then not caught)",
		setup: func(fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) != 0 {
					return errUsage
				}
				if err := kexec.UnloadCrash(); err != nil {
					return err
				}
				fmt.Fprintln(os.Stdout, "unloaded: a crash now is not caught")
				return nil
			}
		},
	})
}
