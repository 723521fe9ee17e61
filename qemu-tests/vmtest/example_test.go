package vmtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/gokdump/gokdump/qemu-tests/vmtest"
)

// A test suite crash-tests a distribution kernel: its modules are packed
// into the guest's images, the dump disk is virtio-blk, and the first
// kernel dies by PID 1 exiting. (Not run by go test: it boots QEMU.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rep, err := vmtest.Run(ctx, vmtest.Options{
		Kernel:  "/boot/vmlinuz-6.1.0-57-cloud-amd64",
		Modules: "/lib/modules/6.1.0-57-cloud-amd64",
		Disk:    "virtio",
		Crash:   "panic",
		Keep:    "kdump-artifacts", // serial.log, vmcore, vmcore-dmesg.txt, report.json
		Log:     log.Printf,
	})
	if errors.Is(err, vmtest.ErrSetup) {
		log.Fatalf("the test could not run: %v", err) // QEMU missing, no such kernel, …
	}
	rep.WriteText(os.Stdout)
	if !rep.Passed() {
		fmt.Printf("kdump failed in phase %s: %s\n", rep.FailedPhase, rep.Error)
		os.Exit(1)
	}
	f, err := os.Create("kdump-junit.xml")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := rep.WriteJUnit(f); err != nil {
		log.Fatal(err)
	}
}

// A kernel built from source is checked before it boots: here
// configs/kdump.config without CONFIG_CRASH_DUMP.
func ExampleCheckConfig() {
	c, err := vmtest.ReadKConfig("../../configs/kdump.config")
	if err != nil {
		log.Fatal(err)
	}
	delete(c, "CONFIG_CRASH_DUMP")
	r := vmtest.CheckConfig(c, vmtest.ConfigFor{Arch: "amd64", Disk: "nvme", Crash: "sysrq"})
	fmt.Println(r.OK(), r.Missing)
	// Output: false [CONFIG_CRASH_DUMP]
}
