package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the Makefile (-ldflags -X): the release (git describe) and the
// commit of the checkout built. A `go build` of a checkout leaves them
// empty and the Go toolchain records the commit itself (-buildvcs).
var (
	version string
	commit  string
)

func init() {
	register(&command{
		name:  "version",
		short: "print gokdump's version, the commit it was built from, the Go version and build flags",
		setup: func(fs *flag.FlagSet) func([]string, streams) error {
			return func(args []string, s streams) error {
				if err := needArgs(args); err != nil {
					return err
				}
				bi, _ := debug.ReadBuildInfo()
				writeVersion(s.out, bi)
				return nil
			}
		},
	})
}

// versionInfo is what `gokdump version` prints.
type versionInfo struct {
	Version  string // release, module version, or "devel"
	Commit   string // VCS revision, "" when unknown
	Time     string // commit time
	Modified bool   // built from a checkout with changes
	Go       string
	Platform string
	Flags    []string // build settings that change the binary
}

func readVersion(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		v.Go = bi.GoVersion
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "GOARCH", "GOOS", "vcs":
			default:
				if s.Value != "" && s.Value != "false" {
					v.Flags = append(v.Flags, s.Key+"="+s.Value)
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

func writeVersion(w io.Writer, bi *debug.BuildInfo) {
	v := readVersion(bi)
	fmt.Fprintf(w, "gokdump %s\n", v.Version)
	c := v.Commit
	if c == "" {
		c = "unknown (built without VCS information)"
	}
	if v.Modified {
		c += ", with uncommitted changes"
	}
	if v.Time != "" {
		c += ", committed " + v.Time
	}
	fmt.Fprintf(w, "commit:  %s\n", c)
	fmt.Fprintf(w, "go:      %s %s\n", v.Go, v.Platform)
	if len(v.Flags) > 0 {
		fmt.Fprintf(w, "build:   %s\n", strings.Join(v.Flags, " "))
	}
}
