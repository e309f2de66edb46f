package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// reaperEnv, when set in the environment of a binary that links this
// package, turns the binary into a host's reaper (see init).
const reaperEnv = "DEPLOYBOT_FLEET_REAPER"

// init makes every binary that links this package able to act as a host's
// reaper: the harness starts each sshd as `SELF sshd -D …` with reaperEnv
// set, inside the host's namespaces. The reaper marks itself a child
// subreaper, runs sshd and waits for every descendant that is orphaned (a
// service an SSH session left running, sshd's connection processes after
// sshd is killed), so killed processes never pile up as zombies of an init
// that does not reap (as on some VMs and containers). It exits when it has
// no children left, with sshd's exit status.
func init() {
	if os.Getenv(reaperEnv) != "" && len(os.Args) > 1 {
		os.Exit(reaperMain(os.Args[1:]))
	}
}

func reaperMain(args []string) int {
	runtime.LockOSThread() // sshd's Pdeathsig follows this thread
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "fleet reaper: prctl(PR_SET_CHILD_SUBREAPER): %v\n", errno)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, reaperEnv+"=") && !strings.HasPrefix(e, "GOMAXPROCS=") {
			env = append(env, e)
		}
	}
	child, err := syscall.ForkExec(args[0], args, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet reaper: start %s: %v\n", args[0], err)
		return 127
	}
	status := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing left to reap
			return status
		}
		if pid == child {
			switch {
			case ws.Exited():
				status = ws.ExitStatus()
			case ws.Signaled():
				status = 128 + int(ws.Signal())
			}
		}
	}
}

// Processes the harness keeps running (the reapers) are started from one
// goroutine locked to its OS thread for the life of the process, so that
// their Pdeathsig (SIGKILL when the test binary dies) fires only when the
// process dies, never because some thread exited.
var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			for r := range spawnCh {
				r.err <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// A process group of its own: a terminal's SIGINT or SIGHUP meant for
	// the program that runs the fleet (`make demo`) must not reach the
	// hosts, which that program stops in order (Close).
	cmd.SysProcAttr.Setpgid = true
	r := spawnReq{cmd, make(chan error, 1)}
	spawnCh <- r
	return <-r.err
}
