package faults

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"github.com/gokdump/gokdump/internal/config"
)

func TestApply(t *testing.T) {
	newEnv := func() *collect.Env {
		return &collect.Env{Console: collect.NewConsole(&bytes.Buffer{}, time.Now(), time.Now), Clock: collect.RealClock{}}
	}
	// Unarmed, the capture path has no hooks at all.
	if env := newEnv(); env.Hooks.Start != nil || env.Hooks.Writing != nil || env.OpenVmcore != nil {
		t.Fatal("an Env has hooks before Apply")
	}

	env := newEnv()
	if err := Apply(env, "capture"); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if res := collect.Capture(env, &cfg); res.Status != collect.StatusFailed || res.Reason != "panic in capture: test_panic=capture: injected panic" {
		t.Errorf("capture: %+v", res)
	}

	env = newEnv()
	if err := Apply(env, "vmcore"); err != nil {
		t.Fatal(err)
	}
	if f, err := env.OpenVmcore("/proc/vmcore"); f != nil || err == nil || !strings.Contains(err.Error(), "test_panic=vmcore") {
		t.Errorf("vmcore: %v, %v", f, err)
	}

	for _, point := range []string{"goroutine", "hang"} {
		env = newEnv()
		if err := Apply(env, point); err != nil || env.Hooks.Writing == nil || env.Hooks.Start != nil {
			t.Errorf("%s: %v; hooks %+v", point, err, env.Hooks)
		}
	}

	env = newEnv()
	if err := Apply(env, "explode"); err == nil || env.Hooks.Start != nil || env.Hooks.Writing != nil {
		t.Errorf("unknown point: %v", err)
	}
}
