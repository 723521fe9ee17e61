package matrix

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestAppendLoadMerge(t *testing.T) {
	t.Setenv(EnvResults, filepath.Join(t.TempDir(), "sub", "kernels.jsonl"))
	yes := true
	recs := []Record{
		{Test: "TestReaders/latest", Line: "latest", KVer: "7.3.4+deb13-cloud-amd64", VMLinux: &yes,
			Readers: map[Reader]string{DrgnOld: OK, CrashOld: CannotRead}, Notes: map[Reader]string{CrashOld: "seek error"},
			Versions: map[Reader]string{CrashOld: "8.0.2"}},
		{Test: "TestCrash/latest-nvme", Line: "latest", BootToDump: 28.6, Kept31: 23946, User: "0/64", THPkB: 65536,
			Readers: map[Reader]string{DrgnOld: OK}},
		{Test: "TestReaders/6.19", Line: "6.19", KVer: "6.19.14+deb13-cloud-amd64", Unverified: true,
			Readers: map[Reader]string{MDFNew: Fail}},
		{Test: "TestCrash/6.19-nvme", Line: "6.19", Readers: map[Reader]string{MDFNew: OK}},
		{Test: "TestCrash/6.12-nvme", Line: "6.12"},
		{Test: "TestCrash/6.1-nvme", Line: "6.1"},
	}
	// Tests append at once.
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Append(r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := Load(os.Getenv(EnvResults))
	if err != nil || len(got) != len(recs) {
		t.Fatalf("Load: %d records, %v", len(got), err)
	}
	rows := Merge(got)
	var lines []string
	for _, r := range rows {
		lines = append(lines, r.Line)
	}
	if want := []string{"6.1", "6.12", "6.19", "latest"}; !slices.Equal(lines, want) {
		t.Fatalf("rows %v, want %v", lines, want)
	}
	l := rows[3]
	if l.KVer != "7.3.4+deb13-cloud-amd64" || l.BootToDump != 28.6 || l.Kept31 != 23946 || l.VMLinux == nil ||
		l.Readers[DrgnOld] != OK || l.Readers[CrashOld] != CannotRead || len(l.Tests) != 2 {
		t.Errorf("latest merged to %+v", l)
	}
	if rows[2].Readers[MDFNew] != Fail || !rows[2].Unverified {
		t.Errorf("6.19: a failure must stay one whatever else read it: %+v", rows[2])
	}
	var b strings.Builder
	Table(&b, rows)
	for _, s := range []string{"6.19.14+deb13-cloud-amd64 (unverified)", "crash 8.0.2", "28.6s", "23946", "0/64", "64M",
		"latest crash 8.0.2: no: seek error"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
}

func TestLoadMissing(t *testing.T) {
	recs, err := Load(filepath.Join(t.TempDir(), "none"))
	if err != nil || recs != nil {
		t.Errorf("Load of a missing file: %v, %v", recs, err)
	}
}
