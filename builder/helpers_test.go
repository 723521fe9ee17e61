package builder

import (
	"path/filepath"
	"testing"
	"time"
)

// time0 is an arbitrary file time, to show times do not reach the image.
func time0() time.Time { return time.Unix(12345, 0) }

// fakeCheckout makes a module named like this one with an ./initramfs
// main package (mainSrc, or a tiny default), and returns its root.
func fakeCheckout(t *testing.T, mainSrc string) string {
	t.Helper()
	if mainSrc == "" {
		mainSrc = "package main\n\nimport \"os\"\n\nfunc main() { os.Exit(0) }\n"
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "go.mod"), "module "+ModulePath+"\n\ngo 1.26\n")
	writeFile(t, filepath.Join(root, initPackage, "main.go"), mainSrc)
	return root
}
