package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/gokdump/gokdump/internal/config"
)

// configFlag is a --config FILE flag. The default path may be missing, and
// then the defaults apply; a path given on the command line must exist, so
// that a typo there is an error and not a capture without a target.
type configFlag struct {
	path string
	set  bool // given on the command line
}

func (c *configFlag) String() string { return c.path }

func (c *configFlag) Set(s string) error {
	c.path, c.set = s, true
	return nil
}

// define adds the flag to fs, with path as its default.
func (c *configFlag) define(fs *flag.FlagSet, path, usage string) {
	c.path = path
	fs.Var(c, "config", usage)
}

// load reads the configuration.
func (c *configFlag) load() (*config.Config, error) {
	if c.set {
		return config.LoadFile(c.path)
	}
	return config.Load(c.path)
}

// loadOr is load, from path when the flag has none: the kexec commands
// define it before tests point statusConfigPath at a fixture.
func (c configFlag) loadOr(path string) (*config.Config, error) {
	if c.path == "" {
		c.path = path
	}
	return c.load()
}

// warnNoTarget warns when an image is built with no dump target: the
// capture then has nowhere to save unless its command line names one.
// cfg is the config packed (nil for none), source where it came from.
func warnNoTarget(w io.Writer, cfg *config.Config, source string) {
	why := "no config is packed"
	if cfg != nil {
		c := cfg.Clone()
		_ = c.ApplyCmdline(c.KernelArgs) // kernel_args goes on the capture's command line
		if c.Target != "" {
			return
		}
		why = "the config packed (" + source + ") names no target"
	}
	fmt.Fprintf(w, "gokdump build: warning: %s: a crash will find nowhere to save its dump unless the capture kernel "+
		"command line has gokdump.target= (set target in %s)\n", why, config.DefaultPath)
}
