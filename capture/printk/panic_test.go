package printk

import (
	"fmt"
	"strings"
	"testing"
)

func logOf(lines ...string) *Log {
	l := &Log{}
	for i, s := range lines {
		l.Records = append(l.Records, Record{Seq: uint64(i), Text: s})
	}
	return l
}

func filler(n int, prefix string) []string {
	var s []string
	for i := 0; i < n; i++ {
		s = append(s, fmt.Sprintf("%s %d", prefix, i))
	}
	return s
}

func TestPanic(t *testing.T) {
	oops := []string{
		"BUG: kernel NULL pointer dereference, address: 0000000000000000",
		"#PF: supervisor write access in kernel mode",
		"Oops: 0002 [#1] PREEMPT SMP NOPTI",
		"CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-56-cloud-amd64 #1",
		"RIP: 0010:sysrq_handle_crash+0x16/0x20",
		"Call Trace:",
		" <TASK>",
		" __handle_sysrq.cold+0x47/0x113",
		" </TASK>",
		"---[ end trace 0000000000000000 ]---",
		"Kernel panic - not syncing: Fatal exception",
		"Kernel Offset: 0x19800000 from 0xffffffff81000000",
		"---[ end Kernel panic - not syncing: Fatal exception ]---",
	}
	for _, tc := range []struct {
		name        string
		log         *Log
		reason      string
		first, last string // of the context
	}{
		{"none", logOf("a", "b", "BUGS are fine", "Oop"), "", "", ""},
		{"sysrq", logOf(append(append(filler(10, "boot"),
			"GOKDUMP-KMSG-cdcb5eb12573-000000",
			"sysrq: Trigger a crash",
			"Kernel panic - not syncing: sysrq triggered crash",
			"CPU: 0 UID: 0 PID: 1 Comm: init Kdump: loaded Not tainted 6.12.117+deb12-cloud-amd64 #1",
			"Call Trace:",
			" sysrq_handle_crash+0x1a/0x20",
		), filler(200, "after")...)...),
			"Kernel panic - not syncing: sysrq triggered crash", "boot 6", "after 96"},
		{"oops", logOf(append(filler(3, "boot"), oops...)...),
			"BUG: kernel NULL pointer dereference, address: 0000000000000000", "boot 0",
			"---[ end Kernel panic - not syncing: Fatal exception ]---"},
		{"gpf", logOf("x", "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP PTI",
			"RIP: 0010:list_del", "Kernel panic - not syncing: Fatal exception in interrupt"),
			"general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP PTI",
			"x", "Kernel panic - not syncing: Fatal exception in interrupt"},
		{"panic only", logOf("VFS: Cannot open root device", "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", "Call Trace:"),
			"Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", "VFS: Cannot open root device", "Call Trace:"},
		{"old sysrq", logOf("SysRq : Trigger a crash", "sysrq: SysRq : Trigger a crash", "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000"),
			"SysRq : Trigger a crash", "SysRq : Trigger a crash", "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000"},
		{"an earlier incident is not this one", logOf(append(append([]string{"BUG: soft lockup - CPU#0 stuck for 22s!"}, filler(300, "later")...),
			"kernel BUG at mm/slub.c:123!", "invalid opcode: 0000 [#1] SMP")...),
			"kernel BUG at mm/slub.c:123!", "later 295", "invalid opcode: 0000 [#1] SMP"},
		{"a panic after the oops names it", logOf(append(append([]string{}, oops[:10]...), "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009")...),
			"Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009", "BUG: kernel NULL pointer dereference, address: 0000000000000000",
			"Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, ctx := tc.log.Panic()
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			if tc.reason == "" {
				if ctx != nil {
					t.Fatalf("context %v", ctx)
				}
				return
			}
			if len(ctx) == 0 || ctx[0].Text != tc.first || ctx[len(ctx)-1].Text != tc.last {
				var texts []string
				for _, r := range ctx {
					texts = append(texts, r.Text)
				}
				t.Fatalf("context from %q to %q, want %q to %q:\n%s", ctx[0].Text, ctx[len(ctx)-1].Text, tc.first, tc.last, strings.Join(texts, "\n"))
			}
			for i := 1; i < len(ctx); i++ {
				if ctx[i].Seq != ctx[i-1].Seq+1 {
					t.Fatal("context is not contiguous")
				}
			}
		})
	}
}

// TestPanicBounded: a log made only of BUG lines yields a bounded story.
func TestPanicBounded(t *testing.T) {
	var lines []string
	for i := 0; i < 5000; i++ {
		lines = append(lines, fmt.Sprintf("BUG: %d", i))
	}
	reason, ctx := logOf(lines...).Panic()
	if reason == "" || len(ctx) > panicBack+panicBefore+panicAfter+1 {
		t.Fatalf("reason %q, %d records", reason, len(ctx))
	}
	if ctx[len(ctx)-1].Text != "BUG: 4999" {
		t.Fatalf("last %q", ctx[len(ctx)-1].Text)
	}
}
