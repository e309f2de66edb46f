package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"deploybot/e2e/fleet"
)

// A sandbox that dies without tearing down (SIGKILL, a crash, a power
// cut) leaves things behind: its `deploybot serve` if that outlived it, the
// IRC servers' working directory, and the fleet's network namespaces,
// bridge, the processes in them and the fleet's temporary directory. The
// next sandbox on the same data directory removes them before it starts
// anything (see claim): it knows them from the state file, which a sandbox
// rewrites whenever it starts one of them, and from the fleet's own records
// (fleet.ReapStale). A sandbox that ends normally removes its state file.
//
// The lock file is held (flock) for the sandbox's whole life, so a second
// sandbox on the same data directory is refused while the first runs, and
// the kernel lets go of it however the first one ends.
const (
	lockName  = "sandbox.lock"
	stateName = "sandbox.state"
)

// state is what a running sandbox has started that outlives it if it dies.
type state struct {
	servePid   int    // deploybot serve
	serveStart string // its start time (fleet.ProcStart)
	ircdDir    string // the IRC servers' temporary working directory
}

func (st state) encode() string {
	return fmt.Sprintf("pid=%d\nserve=%d %s\nircd=%s\n", os.Getpid(), st.servePid, st.serveStart, st.ircdDir)
}

func parseState(b []byte) state {
	var st state
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "serve":
			pid, start, _ := strings.Cut(v, " ")
			st.servePid, _ = strconv.Atoi(pid)
			st.serveStart = start
		case "ircd":
			st.ircdDir = v
		}
	}
	return st
}

// claim takes the data directory's lock (held until the process exits)
// and removes what a previous sandbox that died left behind.
func (s *sandbox) claim() error {
	lf, err := os.OpenFile(filepath.Join(s.data, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("another sandbox is running on %s (stop it first)", s.data)
		}
		return fmt.Errorf("locking %s: %w", lf.Name(), err)
	}
	s.lock = lf // kept open: the lock lasts as long as the process
	b, err := os.ReadFile(filepath.Join(s.data, stateName))
	if err == nil {
		fmt.Println("removing what the previous sandbox left behind …")
		if err := removeLeftovers(parseState(b)); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := fleet.ReapStale(); err != nil {
		return fmt.Errorf("removing stale fleets: %w", err)
	}
	return s.saveState()
}

// removeLeftovers stops a previous sandbox's `deploybot serve` if it is
// still running and removes its IRC servers' working directory. The IRC
// servers themselves die with the sandbox (Pdeathsig).
func removeLeftovers(st state) error {
	if st.servePid > 0 && st.serveStart != "" && fleet.ProcStart(st.servePid) == st.serveStart {
		fmt.Printf("stopping the previous deploybot serve (pid %d) …\n", st.servePid)
		stopPid(st.servePid, st.serveStart, syscall.SIGTERM, 10*time.Second)
		if fleet.ProcStart(st.servePid) == st.serveStart {
			stopPid(st.servePid, st.serveStart, syscall.SIGKILL, 5*time.Second)
		}
		if fleet.ProcStart(st.servePid) == st.serveStart {
			return fmt.Errorf("the previous deploybot serve (pid %d) does not stop", st.servePid)
		}
	}
	// Only a directory the IRC harness made (ircd.Start's temporary one).
	if d := st.ircdDir; d != "" && filepath.IsAbs(d) && strings.HasPrefix(filepath.Base(d), "deploybot-ircd-") {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// stopPid sends sig to pid and waits up to timeout for it to be gone.
func stopPid(pid int, start string, sig syscall.Signal, timeout time.Duration) {
	_ = syscall.Kill(pid, sig)
	for end := time.Now().Add(timeout); time.Now().Before(end) && fleet.ProcStart(pid) == start; {
		time.Sleep(50 * time.Millisecond)
	}
}

// saveState records what this sandbox runs now.
func (s *sandbox) saveState() error {
	path := filepath.Join(s.data, stateName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.state.encode()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// release removes the state file once everything it names is gone.
func (s *sandbox) release() {
	_ = os.Remove(filepath.Join(s.data, stateName))
}
