// Package faults injects the faults of the QEMU fault tests into a
// capture, through the test-only config key test_panic. The capture
// itself knows nothing of them: Apply sets hooks and wrappers on its Env,
// and the /init calls Apply only when test_panic is set.
//
//	capture    a panic in the capture's own goroutine, before anything is
//	           written (recovered: FAILED, then the failure action)
//	goroutine  a panic in another goroutine once the dump is being written,
//	           as a bug in a worker would (the capture process dies; the
//	           supervisor reports it and takes the failure action)
//	hang       once the dump is being written, block for good in a system
//	           call (the time budget ends the capture)
//	vmcore     treat /proc/vmcore as unparseable (a raw copy is saved)
package faults
