package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const stream = `{"Action":"start","Package":"github.com/gokdump/gokdump/qemu-tests"}
{"Action":"run","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestEmbeddedCaptureKernel"}
{"Action":"output","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestEmbeddedCaptureKernel","Output":"=== RUN   TestEmbeddedCaptureKernel\n"}
{"Action":"output","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestEmbeddedCaptureKernel","Output":"    embed_test.go:34: no dedicated capture kernel built yet\n"}
{"Action":"output","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestEmbeddedCaptureKernel","Output":"--- SKIP: TestEmbeddedCaptureKernel (0.00s)\n"}
{"Action":"skip","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestEmbeddedCaptureKernel"}
{"Action":"run","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestCrash/6.1-nvme"}
{"Action":"output","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestCrash/6.1-nvme","Output":"    crash_test.go:9: no real dump\n"}
{"Action":"skip","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestCrash/6.1-nvme"}
{"Action":"output","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestCrash/6.12-nvme","Output":"    crash_test.go:50: dump format ELF, want kdump\n"}
{"Action":"fail","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestCrash/6.12-nvme"}
{"Action":"pass","Package":"github.com/gokdump/gokdump/qemu-tests","Test":"TestReaders/6.1"}
{"Action":"output","Package":"github.com/gokdump/gokdump/qemu-tests","Output":"FAIL\tgithub.com/gokdump/gokdump/qemu-tests\t9.1s\n"}
{"Action":"fail","Package":"github.com/gokdump/gokdump/qemu-tests"}
{"Action":"skip","Package":"github.com/gokdump/gokdump/cmd/none"}
`

func TestReport(t *testing.T) {
	allow := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(allow, []byte("# comment\nqemu qemu-tests TestEmbedded.*: needs a 35-minute build\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := readAllow(allow)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r := &report{module: "github.com/gokdump/gokdump", out: &out}
	if err := r.read(strings.NewReader(stream), "qemu"); err != nil {
		t.Fatal(err)
	}
	if n := r.judgeSkips(rules); n != 1 {
		t.Errorf("%d skips not allowed, want 1 (TestCrash/6.1-nvme)", n)
	}
	if r.summary(1, allow, true) {
		t.Error("summary passed a run with a failed test and an unlisted skip")
	}
	for _, s := range []string{
		"crash_test.go:50: dump format ELF, want kdump", // a failed test's output
		"FAIL\tgithub.com/gokdump/gokdump/qemu-tests\t9.1s",
		"allowed  qemu qemu-tests TestEmbeddedCaptureKernel: embed_test.go:34: no dedicated capture kernel built yet",
		"NOT ALLOWED  qemu qemu-tests TestCrash/6.1-nvme: crash_test.go:9: no real dump",
		"qemu: qemu-tests TestCrash/6.12-nvme",
		"tests: 1 passed, 1 failed, 2 skipped",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "=== RUN") {
		t.Errorf("report shows go test's own lines:\n%s", out.String())
	}
}

func TestReadAllowErrors(t *testing.T) {
	for _, bad := range []string{"qemu qemu-tests TestX\n", "qemu TestX: why\n", "qemu qemu-tests Test(: why\n", "qemu qemu-tests TestX:  \n"} {
		p := filepath.Join(t.TempDir(), "allow")
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := readAllow(p); err == nil {
			t.Errorf("readAllow(%q) took it", bad)
		}
	}
}
