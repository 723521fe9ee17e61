package builder

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckInit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	static := write("static", fakeELF(t, elf.EM_X86_64, false, []byte("code")))
	dynamic := write("dynamic", fakeELF(t, elf.EM_X86_64, true, []byte("code")))
	script := write("script", []byte("#!/bin/sh\nexec /bin/true\n"))
	for _, tt := range []struct {
		path, arch string
		is         error
		msg        string
	}{
		{static, "amd64", nil, ""},
		{static, "unknownarch", nil, ""},
		{static, "arm64", ErrBadInit, "GOARCH arm64"},
		{dynamic, "amd64", ErrBadInit, "CGO_ENABLED=0"},
		{script, "amd64", ErrBadInit, ""},
		{filepath.Join(dir, "none"), "amd64", os.ErrNotExist, ""},
	} {
		err := CheckInit(tt.path, tt.arch)
		if tt.is == nil && err != nil || tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("CheckInit(%s, %s) = %v, want %v", filepath.Base(tt.path), tt.arch, err, tt.is)
		} else if err != nil && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("CheckInit(%s, %s) = %v, want it to say %q", filepath.Base(tt.path), tt.arch, err, tt.msg)
		}
	}
}

func TestFindInit(t *testing.T) {
	initELF := fakeELF(t, elf.EM_X86_64, false, []byte("code"))
	place := func(t *testing.T, p string, b []byte) {
		t.Helper()
		writeFile(t, p, string(b))
	}
	t.Run("explicit", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "myinit")
		place(t, p, initELF)
		src, err := FindInit(p, "", t.TempDir(), "amd64", false)
		if err != nil || src.Path != p || src.How != "flag" {
			t.Errorf("got %+v, %v", src, err)
		}
		// An explicit init that cannot run is an error, not skipped.
		place(t, p, fakeELF(t, elf.EM_X86_64, true, nil))
		if _, err := FindInit(p, "", t.TempDir(), "amd64", false); !errors.Is(err, ErrBadInit) {
			t.Errorf("dynamic explicit init: %v", err)
		}
	})
	t.Run("beside the executable first", func(t *testing.T) {
		prefix := t.TempDir()
		exe := filepath.Join(prefix, "bin", "gokdump")
		place(t, filepath.Join(prefix, "lib", "gokdump", "init"), initELF)
		src, err := FindInit("", exe, t.TempDir(), "amd64", false)
		if want := filepath.Join(prefix, "lib", "gokdump", "init"); err != nil || src.Path != want {
			t.Errorf("prefix install: got %+v, %v; want %s", src, err, want)
		}
		place(t, filepath.Join(prefix, "bin", "gokdump-init"), initELF)
		src, err = FindInit("", exe, t.TempDir(), "amd64", false)
		if want := filepath.Join(prefix, "bin", "gokdump-init"); err != nil || src.Path != want || src.How != "installed" {
			t.Errorf("bin/: got %+v, %v; want %s", src, err, want)
		}
		// From a checkout, --from-source skips the installed binaries.
		root := fakeCheckout(t, "")
		src, err = FindInit("", exe, filepath.Join(root, initPackage), "amd64", true)
		if err != nil || src.Path != "" || src.SourceDir != root {
			t.Errorf("from source: got %+v, %v", src, err)
		}
	})
	t.Run("wrong arch installed falls through to source", func(t *testing.T) {
		prefix := t.TempDir()
		place(t, filepath.Join(prefix, "gokdump-init"), fakeELF(t, elf.EM_AARCH64, false, nil))
		root := fakeCheckout(t, "")
		src, err := FindInit("", filepath.Join(prefix, "gokdump"), root, "amd64", false)
		if err != nil || src.SourceDir != root {
			t.Errorf("got %+v, %v", src, err)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		if _, err := os.Stat("/usr/lib/gokdump/init"); err == nil {
			t.Skip("/usr/lib/gokdump/init is installed on this machine")
		}
		prefix := t.TempDir()
		place(t, filepath.Join(prefix, "gokdump-init"), fakeELF(t, elf.EM_AARCH64, false, nil))
		_, err := FindInit("", filepath.Join(prefix, "gokdump"), t.TempDir(), "amd64", false)
		if !errors.Is(err, ErrNoInit) {
			t.Fatalf("err = %v", err)
		}
		for _, s := range []string{"--init PATH", "gokdump-init", "/usr/lib/gokdump/init", "skipped", "GOARCH amd64"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		_, err = FindInit("", "", t.TempDir(), "amd64", true)
		if !errors.Is(err, ErrNoInit) || !strings.Contains(err.Error(), "--from-source") {
			t.Errorf("from source outside a checkout: %v", err)
		}
	})
}

func TestFindModuleRoot(t *testing.T) {
	root := fakeCheckout(t, "")
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := FindModuleRoot(deep); err != nil || got != root {
		t.Errorf("FindModuleRoot = %q, %v; want %q", got, err, root)
	}
	// Another module in between is passed over: only ours counts.
	writeFile(t, filepath.Join(root, "a", "go.mod"), "module example.com/other\n")
	if got, err := FindModuleRoot(deep); err != nil || got != root {
		t.Errorf("under another module: %q, %v", got, err)
	}
	if _, err := FindModuleRoot(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outside: %v", err)
	}
	if got := goModPath([]byte("// x\nmodule \"github.com/gokdump/gokdump\" // c\n")); got != ModulePath {
		t.Errorf("goModPath = %q", got)
	}
}

func TestCompileInit(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	if testing.Short() {
		t.Skip("compiles a program")
	}
	root := fakeCheckout(t, "")
	ctx := context.Background()
	a, err := CompileInit(ctx, root, "amd64", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := CompileInit(ctx, root, "amd64", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if len(ab) == 0 || !bytes.Equal(ab, bb) {
		t.Errorf("two compiles differ (%d, %d bytes)", len(ab), len(bb))
	}
	f, err := elf.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".symtab") != nil {
		t.Error("init not stripped (-s)")
	}

	arm, err := CompileInit(ctx, root, "arm64", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckInit(arm, "arm64"); err != nil {
		t.Error(err)
	}

	bad := fakeCheckout(t, "package main\n\nfunc main() { undefined() }\n")
	_, err = CompileInit(ctx, bad, "amd64", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("compile error not reported with the compiler's output: %v", err)
	}

	// Build compiles from the checkout when no init is installed.
	var out bytes.Buffer
	res, err := Build(ctx, &out, Options{Dir: root, FromSource: true, Executable: filepath.Join(t.TempDir(), "gokdump"), Arch: "amd64", Compress: CompressNone})
	if err != nil {
		t.Fatal(err)
	}
	if res.Init.SourceDir != root || res.Init.Path != "" {
		t.Errorf("init source %+v", res.Init)
	}
	recs := readRecords(t, out.Bytes())
	for _, r := range recs {
		if r.Name == "init" && r.FileSize != uint64(len(ab)) {
			t.Errorf("/init is %d bytes, the compiled init %d", r.FileSize, len(ab))
		}
	}
}
