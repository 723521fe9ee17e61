package main

import (
	"flag"

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
