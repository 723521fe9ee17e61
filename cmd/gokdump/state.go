package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gokdump/gokdump/internal/kexec"
)

// loadStatePath records what `gokdump load` loaded. /run is emptied at
// boot, as the loaded kernel is: the record lives exactly as long.
var loadStatePath = "/run/gokdump/loaded.json"

// loadState is what was loaded, for `gokdump status`.
type loadState struct {
	Kernel     string    `json:"kernel"`
	Initrd     string    `json:"initrd"`
	Cmdline    string    `json:"cmdline"`
	KernelSize int64     `json:"kernel_size"`
	InitrdSize int64     `json:"initrd_size"`
	InitrdTime time.Time `json:"initrd_mtime"`
	LoadedAt   time.Time `json:"loaded_at"`
	// Syscall is the system call that loaded it: kexec.SyscallFile or
	// kexec.SyscallClassic ("" in records from before it was kept).
	Syscall string `json:"syscall,omitempty"`
}

func saveLoadState(p *kexec.Plan) error {
	st := loadState{Kernel: p.Kernel, Initrd: p.Initrd, Cmdline: p.Cmdline,
		KernelSize: p.KernelSize, InitrdSize: p.InitrdSize, LoadedAt: time.Now().UTC(), Syscall: p.Used}
	if fi, err := os.Stat(p.Initrd); err == nil {
		st.InitrdTime = fi.ModTime().UTC()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(loadStatePath), 0o700); err != nil {
		return fmt.Errorf("record the load: %w", err)
	}
	tmp := loadStatePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record the load: %w", err)
	}
	return os.Rename(tmp, loadStatePath)
}

func readLoadState() (*loadState, error) {
	b, err := os.ReadFile(loadStatePath)
	if err != nil {
		return nil, err
	}
	var st loadState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", loadStatePath, err)
	}
	return &st, nil
}
