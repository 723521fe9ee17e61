package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/sshdump"
	"golang.org/x/crypto/ssh"
)

func init() {
	register(&command{
		name:  "show",
		args:  "",
		short: "print the effective capture configuration and where each value comes from",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			var cf configFlag
			cf.define(fs, config.DefaultPath, "configuration `FILE` (the default one may be missing: then the defaults)")
			cmdline := fs.String("cmdline", "", "capture kernel command `LINE` whose gokdump.KEY=VALUE overrides to apply")
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				return runShow(s.out, &cf, *cmdline)
			}
		},
	})
}

// runShow prints the configuration cf names with cmdline's overrides
// applied. An invalid configuration is still printed, so that the values
// the errors name can be seen; the errors are returned after.
func runShow(w io.Writer, cf *configFlag, cmdline string) error {
	c, err := cf.load()
	if err != nil {
		return err
	}
	cmdErr := c.ApplyCmdline(cmdline)
	if err := c.WriteTOML(w); err != nil {
		return err
	}
	showSSHKey(w, c)
	showCaptureCPUs(w, c)
	if err := errors.Join(cmdErr, c.Validate()); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

// showSSHKey says which key an ssh target logs in with: its type and
// fingerprint, never the key.
func showSSHKey(w io.Writer, c *config.Config) {
	for _, t := range c.NetworkTargets() {
		if t.Kind != config.KindSSH {
			continue
		}
		s, err := sshdump.LoadSigner(c.SSHKey)
		if err != nil {
			fmt.Fprintf(w, "# ssh_key: %v\n", err)
		} else {
			fmt.Fprintf(w, "# ssh_key: %s %s (the private key is not shown)\n", s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey()))
		}
		return
	}
}

// showCaptureCPUs says what capture_cpus = "auto" comes to on this
// machine: the nr_cpus= gokdump load would pass.
func showCaptureCPUs(w io.Writer, c *config.Config) {
	if c.CaptureCPUs != config.CaptureCPUsAuto {
		return
	}
	ram, err := memTotal(kexecProcRoot + "/meminfo")
	n, why := captureCPUs(c, "", ram, err)
	fmt.Fprintf(w, "# capture_cpus: %d on this machine (%s)\n", n, why)
}
