package main

import (
	"strings"
	"testing"
)

func TestMountPointOf(t *testing.T) {
	info := `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
30 22 259:3 / /var/crash\040dumps rw,relatime shared:2 - xfs /dev/nvme0n1p3 rw
31 22 259:3 /sub /bind rw,relatime shared:2 - xfs /dev/nvme0n1p3 rw
32 22 8:1 /snap /snap rw - ext4 /dev/sda1 rw
`
	for _, tt := range []struct {
		maj, min uint32
		want     string
	}{
		{259, 2, "/"},
		{259, 3, "/var/crash dumps"}, // the mount of the whole filesystem, not a bind of a subdirectory
		{8, 1, ""},                   // only a subdirectory is mounted
		{7, 0, ""},
	} {
		if got := mountPointOf(strings.NewReader(info), tt.maj, tt.min); got != tt.want {
			t.Errorf("%d:%d = %q, want %q", tt.maj, tt.min, got, tt.want)
		}
	}
}
