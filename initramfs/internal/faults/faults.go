package faults

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gokdump/gokdump/capture/vmcore"
	"github.com/gokdump/gokdump/initramfs/internal/collect"
	"golang.org/x/sys/unix"
)

// Points are the values of test_panic that Apply knows.
var Points = []string{"capture", "goroutine", "hang", "vmcore"}

// Apply arms the fault point names in env. An unknown point is an error
// and arms nothing.
func Apply(env *collect.Env, point string) error {
	var once sync.Once
	switch point {
	case "capture":
		env.Hooks.Start = func() { panic("test_panic=capture: injected panic") }
	case "goroutine":
		env.Hooks.Writing = func() {
			once.Do(func() {
				env.Console.Logf("test_panic=goroutine: panicking in a new goroutine")
				go func() { panic("test_panic=goroutine: injected panic in a goroutine") }()
				time.Sleep(time.Minute) // the process dies meanwhile
			})
		}
	case "hang":
		env.Hooks.Writing = func() {
			once.Do(func() {
				env.Console.Logf("test_panic=hang: blocking in read(2) for good")
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err == nil {
					var b [1]byte
					unix.Read(p[0], b[:]) // nobody ever writes
				}
				for {
					time.Sleep(time.Hour)
				}
			})
		}
	case "vmcore":
		env.OpenVmcore = func(string) (*vmcore.File, error) {
			return nil, errors.New("test_panic=vmcore: parsing refused on purpose")
		}
	default:
		return fmt.Errorf("test_panic %q: no such fault (known: %v)", point, Points)
	}
	return nil
}
