// Package vm is the core that gokdump's QEMU crash cycles share: the QEMU
// command line of a guest (per architecture, under TCG or KVM) and a boot
// that timestamps the serial console, the probe that tells whether KVM
// really runs a kernel, the target disks and the images packed with the
// project's builder, the capture's result lines on the console, and the
// census of a saved dump (its pages and the run's markers).
//
// qemu-tests/harness (the QEMU tests' own cycles) and qemu-tests/vmtest
// (gokdump vmtest and its Go API) are both built on it, so that what the
// tests prove is what users run.
package vm
