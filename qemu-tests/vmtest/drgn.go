package vmtest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed drgn_check.py
var drgnScript []byte

// drgnTimeout bounds drgn's look at a dump: it reads the debug info of
// the vmlinux (hundreds of MiB) first.
const drgnTimeout = 5 * time.Minute

// drgnCheck has drgn (the program drgn, a command line split at spaces)
// open the dump with the vmlinux and read the crashed kernel's release,
// tasks and log; it returns what did not match, "" when all did.
func drgnCheck(ctx context.Context, drgn, dump, vmlinux, dir, release, marker string, reasons []string) (string, error) {
	script := filepath.Join(dir, "drgn_check.py")
	if err := os.WriteFile(script, drgnScript, 0o600); err != nil {
		return "", err
	}
	// Real paths: a drgn run in a chroot or container (a wrapper that
	// binds its file arguments) finds them where they are.
	for _, p := range []*string{&script, &dump, &vmlinux} {
		if real, err := filepath.EvalSymlinks(*p); err == nil {
			*p = real
		}
	}
	ctx, cancel := context.WithTimeout(ctx, drgnTimeout)
	defer cancel()
	argv := append(strings.Fields(drgn), "-q", "-c", dump, "-s", vmlinux, script, marker, strings.Join(reasons, "|"))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Sprintf("%s failed (%v): %s", argv[0], err, lastLines(out.String(), 5)), nil
	}
	got := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	tasks, _ := strconv.Atoi(got["tasks"])
	switch {
	case got["release"] != release:
		return fmt.Sprintf("drgn reads release %q, want %q: %s", got["release"], release, lastLines(out.String(), 5)), nil
	case got["comm"] != "swapper/0":
		return fmt.Sprintf("drgn reads init_task.comm %q, want swapper/0", got["comm"]), nil
	case tasks < 2:
		return fmt.Sprintf("drgn finds %d tasks", tasks), nil
	case got["marker"] != "True":
		return "drgn does not find the kmsg marker in the kernel log", nil
	case got["reason"] != "True":
		return fmt.Sprintf("drgn does not find %q in the kernel log", strings.Join(reasons, " or ")), nil
	}
	return "", nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
