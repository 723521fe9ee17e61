package shell

import (
	"os"

	"golang.org/x/sys/unix"
)

// keyMode puts the terminal f in the mode the console reads it in:
// every key as it comes (no canonical line editing), no echo (the
// editor echoes what it takes) and no signals (^C is a byte the shell
// sees); output is processed as before ("\n" becomes "\r\n"). It returns
// whether f is a terminal, and what puts it back.
func keyMode(f *os.File) (bool, func()) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return false, func() {}
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO | unix.ECHONL | unix.ISIG | unix.IEXTEN
	t.Iflag &^= unix.IXON // ^S and ^Q are keys, not flow control
	t.Iflag |= unix.ICRNL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	// TCSETS, not TCSETSF: keys typed ahead stay.
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return false, func() {}
	}
	return true, func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}
