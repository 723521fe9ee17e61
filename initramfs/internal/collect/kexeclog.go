package collect

import (
	"bytes"
	"fmt"

	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
)

// kexecLogMax bounds the capture kernel's own log in kexec-dmesg.log.
const kexecLogMax = 4 << 20

// kexecLog is kexec-dmesg.log: the capture kernel's own kernel log, as
// dmesg prints it, then what the capture printed on the console (its
// notes and result lines), which the kernel log does not hold, and how
// the dump on this target went (res), which the console says later.
func kexecLog(env *Env, res *Result) []byte {
	var b bytes.Buffer
	b.WriteString("--- the capture kernel's log ---\n")
	if env.KernelLog == nil {
		b.WriteString("(not available)\n")
	} else if klog, err := env.KernelLog(); err != nil {
		fmt.Fprintf(&b, "(cannot be read: %v)\n", err)
	} else {
		b.Write(cutHead(klog, kexecLogMax))
		if len(klog) > 0 && klog[len(klog)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	b.WriteString("--- gokdump's console ---\n")
	b.Write(env.Console.Text())
	fmt.Fprintf(&b, "--- this target ---\n%s\n", res.Line(env.since(env.Console.Start()).Seconds()))
	return b.Bytes()
}

// place is where one target's dump went, for what follows the dump.
type place struct {
	// dir is the dump's directory as the capture kernel sees it, ""
	// when the target is not mounted (a raw device, an ssh server).
	dir string
	// write creates a file beside the dump, 0600; nil when there is no
	// directory to write in.
	write func(name string, data []byte) error
}

// afterTarget ends the capture's work on one target: the post hooks,
// after a dump (whole or incomplete), with the target still mounted;
// then, whatever the outcome, kexec-dmesg.log beside the dump, last so
// that it tells the whole story.
func afterTarget(env *Env, cfg *config.Config, src *source, t *config.Target, res *Result, at place) {
	if (res.Status == StatusSaved || res.Status == StatusIncomplete) && len(cfg.PostHooks) > 0 {
		// Their failure is theirs: the dump is saved.
		runHooks(env, cfg, HookPost, cfg.PostHooks, hookVars(cfg, src, HookPost, t, res, at.dir), false)
	}
	if at.write == nil {
		return
	}
	env.logf("saving the capture kernel's log as %s", crashdir.KexecDmesgFile)
	if err := at.write(crashdir.KexecDmesgFile, kexecLog(env, res)); err != nil {
		env.logf("%s: %v", crashdir.KexecDmesgFile, err)
	}
}
