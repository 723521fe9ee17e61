// Package shell is the operator's console of the capture kernel: a shell
// on the console for someone standing at the machine, without busybox.
// It opens when the capture fails and failure_action is "shell", or before
// anything is saved when the capture kernel's command line has
// gokdump.shell=1.
//
// The language is POSIX shell (mvdan.cc/sh's interpreter: pipes,
// variables, if, for, redirections), and the commands are written in Go
// on gokdump's own packages: ls, cat, head, tail, grep, devices, mount,
// umount, ip, dmesg, info, save, sync, help, and reboot, poweroff and
// halt. "save" runs the capture's own pipeline to any target.
//
// An unattended machine never waits here for good: with no keystroke for
// shell_timeout the console is left, as it is by exit, and final_action
// follows. A command runs at most time_budget; ^C stops it. The console
// is read in non-canonical mode, so that every keystroke counts and ^C
// reaches the shell as a byte, without a controlling terminal.
package shell
