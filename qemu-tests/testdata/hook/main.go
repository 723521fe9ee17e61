// Command hook is the QEMU tests' hook, built static by the test and
// packed by the image builder: it checks the environment the capture
// gives a hook (README: "Hooks") and leaves a trace. Every phase prints
// "HOOK <phase> ok" or "HOOK <phase> missing VAR" on the console and
// fails when something is missing; the post hook also writes
// hook-post.txt (its environment) into the dump's directory.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	phase := os.Getenv("GOKDUMP_PHASE")
	need := []string{"GOKDUMP_PHASE", "GOKDUMP_TARGET"}
	switch phase {
	case "pre":
		need = append(need, "GOKDUMP_VMCORE", "GOKDUMP_KERNEL_RELEASE", "GOKDUMP_PANIC", "GOKDUMP_CRASH_TIME")
	case "post":
		need = append(need, "GOKDUMP_VMCORE", "GOKDUMP_KERNEL_RELEASE", "GOKDUMP_PANIC", "GOKDUMP_STATUS",
			"GOKDUMP_DUMP", "GOKDUMP_DUMP_DIR", "GOKDUMP_LEVEL", "GOKDUMP_FORMAT", "GOKDUMP_BYTES")
	case "failure":
		need = append(need, "GOKDUMP_STATUS", "GOKDUMP_REASON")
	default:
		fmt.Printf("HOOK unknown phase %q\n", phase)
		os.Exit(1)
	}
	for _, v := range need {
		if os.Getenv(v) == "" {
			fmt.Printf("HOOK %s missing %s\n", phase, v)
			os.Exit(1)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOKDUMP_") {
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	if phase == "post" {
		p := filepath.Join(os.Getenv("GOKDUMP_DUMP_DIR"), "hook-post.txt")
		if err := os.WriteFile(p, []byte(strings.Join(env, "\n")+"\n"), 0o600); err != nil {
			fmt.Printf("HOOK post cannot write: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Printf("HOOK %s ok release=%s status=%s\n", phase, os.Getenv("GOKDUMP_KERNEL_RELEASE"), os.Getenv("GOKDUMP_STATUS"))
}
