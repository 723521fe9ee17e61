package codec

import (
	"os"
	"strconv"
	"syscall"
)

// keepFDsFromChildren marks the process's descriptors past stderr
// close-on-exec, so that the C decoder's process does not hold them: a
// fuzzing worker talks to its coordinator over inherited pipes, and a
// child holding them stalls the fuzzer.
func keepFDsFromChildren() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
