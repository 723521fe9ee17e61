package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gokdump/gokdump/internal/crashdir"
	"golang.org/x/sys/unix"
)

// statusMountInfo is where status learns the mounts; tests repoint it.
var statusMountInfo = "/proc/self/mountinfo"

// mountPointOf returns where the block device dev (major:minor) is
// mounted, from a mountinfo file; "" when it is not.
func mountPointOf(r io.Reader, major, minor uint32) string {
	want := fmt.Sprintf("%d:%d", major, minor)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && f[2] == want && f[3] == "/" {
			return unescapeMount(f[4])
		}
	}
	return ""
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dumpsOn lists the dumps in dir on the target device dev, if it is
// mounted here.
func dumpsOn(dev, dir string) (where string, dumps []crashdir.Dump, err error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", nil, err
	}
	f, err := os.Open(statusMountInfo)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	mnt := mountPointOf(f, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	if mnt == "" {
		return "", nil, fmt.Errorf("%s is not mounted here", dev)
	}
	where = filepath.Join(mnt, dir)
	dumps, err = crashdir.Scan(where)
	return where, dumps, err
}
