// Package vmtest crash-tests a kernel's kdump in QEMU: options in, report
// out. It is what `gokdump vmtest` runs, and gokdump's own QEMU tests use
// it, so that what kernel CI gets is what gokdump is tested with.
//
// Run boots Options.Kernel under QEMU (KVM when a probe boots it there,
// else TCG; the report says which and why) with a first-stage init that
// loads the same kernel as the capture kernel through gokdump's loader,
// with a capture initramfs made by gokdump's builder; it crashes the
// kernel (Options.Crash), and checks what the capture saved on the dump
// disk: the dump complete and private, VMCOREINFO's release, the run's
// marker and the crash in the dump's kernel log, user and page-cache pages
// as the dump level says, vmcore-dmesg.txt beside it, and drgn opening it
// when Options.VMLinux is given. The kernel's configuration is checked
// first when it is at hand (CheckConfig): a kernel that cannot work fails
// in PhaseConfig, before anything boots.
//
// # The stable API
//
//   - Run, Options and its Default constants, Level;
//   - Report (Result Pass, Fail or Error; FailedPhase one of the Phase
//     constants; Checks named by the Check constants; Phases; Dump), its
//     Passed, Check, WriteText, WriteJSON and WriteJUnit;
//   - ErrSetup, wrapped by Run's error exactly when the test could not run
//     (Result Error), and ErrUnsupportedArch (an Options.Arch with no QEMU
//     machine);
//   - the configuration check: ReadKConfig, ParseKConfig, CheckConfig,
//     ConfigFor, ConfigReport, Requirements, FindKConfig;
//   - IdentifyKernel and KernelInfo.
//
// A kdump failure is a Report with Result Fail, not an error. The JSON
// keys of Report are documented in gokdump's README ("gokdump vmtest");
// new keys and checks may be added, none renamed.
//
// # What a run needs
//
// qemu-system-x86_64 (qemu-system-aarch64 for an arm64 kernel), mkfs.ext4
// and debugfs (e2fsprogs); drgn for the drgn check. The two inits the guest
// runs are found installed (beside the running program as
// gokdump-vmtest-init and gokdump-init, as make build leaves them in bin/;
// in ../lib/gokdump/ beside it; or in /usr/lib/gokdump/, as make install
// and the Debian package put them; the stage-1 init of another
// architecture in a GOARCH directory in each: Stage1Paths), or
// compiled (Go installed) from a gokdump checkout at or above the working
// directory, else from the gokdump module that the Go module there
// requires: a test suite of another module that imports this package
// needs nothing more (Options.Stage1Init and Options.CaptureInit name
// prebuilt ones).
//
// Kernels are amd64 (QEMU's pc machine) or arm64 (its virt board, -cpu
// max; under TCG on another host). Each Run boots one guest at a time,
// for up to Options.Timeout; a caller that runs several at once bounds them itself
// (gokdump's tests run two).
package vmtest
