package main

import (
	"flag"
	"fmt"

	"github.com/gokdump/gokdump/internal/kexec"
)

func init() {
	register(&command{
		name:  "unload",
		short: "unload the capture kernel (a crash is then not caught)",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				if err := kexec.UnloadCrash(); err != nil {
					return err
				}
				fmt.Fprintln(s.out, "unloaded: a crash now is not caught")
				return nil
			}
		},
	})
}
