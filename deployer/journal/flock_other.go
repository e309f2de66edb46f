//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package journal

import (
	"errors"
	"os"
)

var errNoFlock = errors.New("deploy locks need flock(2), which this system lacks")

func tryLock(f *os.File, exclusive bool) (bool, error) { return false, errNoFlock }

func unlock(f *os.File) error { return errNoFlock }

func pidAlive(pid int) bool { return pid > 0 }

func lockWait(f *os.File) error { return errNoFlock }
