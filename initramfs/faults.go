package main

import (
	"sync"
	"time"

	"github.com/gokdump/gokdump/internal/config"
	"golang.org/x/sys/unix"
)

// Fault injection for the QEMU fault tests, through the test-only config
// key test_panic:
//
//	capture    a panic in the capture's own goroutine, before anything is
//	           written (recovered: FAILED, then the failure action)
//	goroutine  a panic in another goroutine once the dump is being written,
//	           as a bug in a worker would (the capture process dies; the
//	           supervisor reports it and takes the failure action)
//	hang       once the dump is being written, block for good in a system
//	           call (the time budget ends the capture)
//	vmcore     treat /proc/vmcore as unparseable (a raw copy is saved)

// inject carries out the fault named point if the config asks for it.
func inject(cfg *config.Config, point string) {
	if cfg.TestPanic == point && point == "capture" {
		panic("test_panic=capture: injected panic")
	}
}

// midDumpFault returns the hook the progress callback runs, once the
// dump's pages are being written, for the faults that strike then; nil
// when there are none.
func midDumpFault(cfg *config.Config) func() {
	var once sync.Once
	switch cfg.TestPanic {
	case "goroutine":
		return func() {
			once.Do(func() {
				logf("test_panic=goroutine: panicking in a new goroutine")
				go func() { panic("test_panic=goroutine: injected panic in a goroutine") }()
				time.Sleep(time.Minute) // the process dies meanwhile
			})
		}
	case "hang":
		return func() {
			once.Do(func() {
				logf("test_panic=hang: blocking in read(2) for good")
				var p [2]int
				if err := unix.Pipe(p[:]); err == nil {
					var b [1]byte
					unix.Read(p[0], b[:]) // nobody ever writes
				}
				for {
					time.Sleep(time.Hour)
				}
			})
		}
	}
	return nil
}
