// Package fakefleet is an in-memory fleet of deploy targets for fast tests
// of the deployment engine and its front ends: each host keeps its
// current, done and deploying revisions the way a real target's symlinks
// and markers do, runs no command, and fails, hangs or refuses on demand.
//
// It is for tests only. The tests that decide whether a deploy works run
// against real sshd hosts (package e2e); this fleet makes every engine
// decision (canary failure, failure limits, pauses, aborts, rollback
// order, timeouts) testable without root or servers.
//
// A *Host has the methods of deployer.Host; the engine is given the fleet
// through deployer.DialerFunc.
package fakefleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer/remote"
)

// Behavior is how one host misbehaves. The zero Behavior is a healthy
// host.
type Behavior struct {
	// DialErr: the host cannot be reached (e.g. a *remote.HostError of
	// kind unreachable).
	DialErr error
	// DeployFails: the deploy session fails at its restart stage (after
	// the switch, as a restart script that exits 1 would).
	DeployFails bool
	// Hang: the deploy session never ends by itself: it times out after
	// its timeout (or when the context ends).
	Hang bool
	// Gate, when set, holds every deploy session until it is closed.
	Gate chan struct{}
	// DialGate, when set, holds every dial of the host until it is
	// closed (or the dial's context ends).
	DialGate chan struct{}
	// FailChecks names checks that fail on this host ("port" for the port
	// check), whatever revision runs.
	FailChecks []string
	// FinalizeFails: Finalize exits 1.
	FinalizeFails bool
	// RollbackFails: Rollback exits 1.
	RollbackFails bool
}

// Fleet is a set of hosts, created on first dial.
type Fleet struct {
	mu    sync.Mutex
	hosts map[string]*Host
	calls []string
	bad   map[string]bool // revisions whose health checks fail everywhere
	// Started, when set, receives the host name as each deploy session
	// starts (it must be buffered enough or drained).
	Started chan string
	held    int // held deploy sessions neither finalized nor released
}

// New returns an empty fleet.
func New() *Fleet { return &Fleet{hosts: map[string]*Host{}, bad: map[string]bool{}} }

// Host is one in-memory target.
type Host struct {
	f    *Fleet
	name string

	mu                       sync.Mutex
	b                        Behavior
	current, done, deploying string
	// history: the done revisions, oldest first (as .history).
	history []string
	closed  bool
	// left is the id of an operation still running on the host, left by
	// a deploy whose process died (Leave); it refuses every other one
	// until stopped.
	left string
}

// host returns the host named name, creating it.
func (f *Fleet) host(name string) *Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hosts[name]
	if h == nil {
		h = &Host{f: f, name: name}
		f.hosts[name] = h
	}
	return h
}

// Set gives host its behavior.
func (f *Fleet) Set(host string, b Behavior) {
	h := f.host(host)
	h.mu.Lock()
	h.b = b
	h.mu.Unlock()
}

// Install puts host on rev, done, as a finished earlier deploy would.
func (f *Fleet) Install(host, rev string) {
	h := f.host(host)
	h.mu.Lock()
	h.current, h.done, h.deploying = rev, rev, ""
	h.history = markDone(h.history, rev)
	h.mu.Unlock()
}

// markDone returns history with rev as its newest entry (once).
func markDone(history []string, rev string) []string {
	out := make([]string, 0, len(history)+1)
	for _, r := range history {
		if r != rev {
			out = append(out, r)
		}
	}
	return append(out, rev)
}

// Leave marks an operation of deploy opID as still running on host, as a
// deploy process killed mid-stage leaves it: deploys, finalizes and
// rollbacks there are refused with a *remote.BusyError until Stop ends it.
func (f *Fleet) Leave(host, opID string) {
	h := f.host(host)
	h.mu.Lock()
	h.left = opID
	h.mu.Unlock()
}

// Left returns the operation still running on host ("" if none).
func (f *Fleet) Left(host string) string {
	h := f.host(host)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.left
}

// busy is the error of an operation refused because another one runs.
func (h *Host) busy() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.left == "" {
		return nil
	}
	return &remote.BusyError{Host: h.name, OpID: h.left, PGID: 4242, Kind: remote.OpDeploy}
}

// Stop ends the operation opID (any, for "") left running on the host.
func (h *Host) Stop(ctx context.Context, t remote.Target, opID string, grace time.Duration) (remote.StopResult, error) {
	h.f.record("stop %s", h.name)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.left == "":
		return remote.StopResult{}, nil
	case opID != "" && h.left != opID:
		return remote.StopResult{}, &remote.BusyError{Host: h.name, OpID: h.left, PGID: 4242, Kind: remote.OpDeploy}
	}
	res := remote.StopResult{Found: true, OpID: h.left, PGID: 4242, Kind: remote.OpDeploy, Signal: "TERM", Waited: 10 * time.Millisecond}
	h.left = ""
	return res, nil
}

// BadRevision makes the health checks of every host running rev fail.
func (f *Fleet) BadRevision(rev string) {
	f.mu.Lock()
	f.bad[rev] = true
	f.mu.Unlock()
}

// State returns the revisions of host: current, done and deploying.
func (f *Fleet) State(host string) (current, done, deploying string) {
	h := f.host(host)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current, h.done, h.deploying
}

// Calls returns what was done, in order: "dial HOST", "deploy HOST", "finalize HOST",
// "rollback HOST", "stop HOST", "check HOST NAME", "status HOST".
func (f *Fleet) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Note adds line to Calls, so that a test orders what it observed among
// the fleet's calls.
func (f *Fleet) Note(line string) { f.record("%s", line) }

func (f *Fleet) record(format string, args ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *Fleet) isBad(rev string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bad[rev]
}

// Dial connects to h; it fails with the host's DialErr.
func (f *Fleet) Dial(ctx context.Context, h config.Host) (*Host, error) {
	host := f.host(h.String())
	f.record("dial %s", host.name)
	if g := host.behavior().DialGate; g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return nil, &remote.HostError{Host: host.name, Kind: remote.KindCanceled, Err: ctx.Err()}
		}
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.b.DialErr != nil {
		return nil, host.b.DialErr
	}
	if err := ctx.Err(); err != nil {
		return nil, &remote.HostError{Host: host.name, Kind: remote.KindCanceled, Err: err}
	}
	host.closed = false
	return host, nil
}

func (h *Host) behavior() Behavior {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b
}

// Deploy switches the host to sha (fetch, promote, restart).
func (h *Host) Deploy(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, error) {
	h.f.record("deploy %s", h.name)
	if err := h.busy(); err != nil {
		return nil, err
	}
	if h.f.Started != nil {
		h.f.Started <- h.name
	}
	b := h.behavior()
	if b.Gate != nil {
		select {
		case <-b.Gate:
		case <-ctx.Done():
			return nil, &remote.HostError{Host: h.name, Kind: remote.KindCanceled, Err: ctx.Err()}
		}
	}
	if b.Hang {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		<-tctx.Done()
		st := remote.StageResult{Stage: remote.StageFetch, ExitCode: -1, TimedOut: true, Command: "git fetch"}
		return []remote.StageResult{st}, &remote.HostError{Host: h.name, Kind: remote.KindCommandTimeout, Err: tctx.Err()}
	}
	h.mu.Lock()
	h.deploying, h.current = sha, sha
	h.mu.Unlock()
	stages := []remote.StageResult{
		{Stage: remote.StageFetch, Command: "git fetch", Duration: time.Millisecond},
		{Stage: remote.StagePromote, Command: "ln -sfn", Duration: time.Millisecond},
		{Stage: remote.StageRestart, Command: t.Restart, Duration: time.Millisecond},
	}
	if b.DeployFails {
		stages[2].ExitCode, stages[2].Output = 1, "restart failed"
		return stages, &remote.StageError{Host: h.name, Stage: remote.StageRestart, ExitCode: 1, Output: "restart failed"}
	}
	return stages, nil
}

// DeployHeld is Deploy, its session then held as remote.Conn.DeployHeld
// holds it: the Held's Finalize is Finalize; Held counts the sessions
// neither finalized nor released.
func (h *Host) DeployHeld(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, remote.Held, error) {
	stages, err := h.Deploy(ctx, t, sha, force, timeout)
	if err != nil {
		return stages, nil, err
	}
	h.f.mu.Lock()
	h.f.held++
	h.f.mu.Unlock()
	return stages, &held{h: h, t: t, sha: sha}, nil
}

// Held returns how many held deploy sessions are still open: after a
// deploy, none should be.
func (f *Fleet) Held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// held is the remote.Held of a Host's DeployHeld.
type held struct {
	h    *Host
	t    remote.Target
	sha  string
	once sync.Once
}

// end ends the held session; it reports false when it had ended already.
func (x *held) end() bool {
	ended := false
	x.once.Do(func() {
		ended = true
		x.h.f.mu.Lock()
		x.h.f.held--
		x.h.f.mu.Unlock()
	})
	return ended
}

// Finalize implements remote.Held.
func (x *held) Finalize(ctx context.Context, timeout time.Duration) (remote.StageResult, error) {
	if !x.end() {
		return remote.StageResult{Stage: remote.StageFinalize, ExitCode: -1}, errors.New("fakefleet: held deploy already ended")
	}
	return x.h.Finalize(ctx, x.t, x.sha)
}

// Release implements remote.Held.
func (x *held) Release() { x.end() }

// Finalize marks sha done.
func (h *Host) Finalize(ctx context.Context, t remote.Target, sha string) (remote.StageResult, error) {
	h.f.record("finalize %s", h.name)
	st := remote.StageResult{Stage: remote.StageFinalize, Command: "finalize " + sha}
	if err := h.busy(); err != nil {
		return st, err
	}
	if h.behavior().FinalizeFails {
		st.ExitCode, st.Output = 1, "disk full"
		return st, &remote.StageError{Host: h.name, Stage: remote.StageFinalize, ExitCode: 1, Output: "disk full"}
	}
	h.mu.Lock()
	h.done, h.deploying = sha, ""
	h.history = markDone(h.history, sha)
	h.mu.Unlock()
	return st, nil
}

// Rollback points the host back at its done revision; with t.Undo naming
// the done revision, the one done before it first (as rollback.sh).
func (h *Host) Rollback(ctx context.Context, t remote.Target) (remote.StageResult, string, error) {
	h.f.record("rollback %s", h.name)
	st := remote.StageResult{Stage: remote.StageRollback, Command: "rollback"}
	if err := h.busy(); err != nil {
		return st, "", err
	}
	if h.behavior().RollbackFails {
		st.ExitCode = 1
		return st, "", &remote.StageError{Host: h.name, Stage: remote.StageRollback, ExitCode: 1, Output: "rollback failed"}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.Undo != "" && h.done == t.Undo {
		prev := h.history[:len(h.history)-1]
		if len(prev) == 0 {
			st.ExitCode = 3
			return st, "", remote.ErrNothingToRollBack
		}
		h.history, h.done = prev, prev[len(prev)-1]
		st.Output = "undid done " + t.Undo
	}
	if h.done == "" {
		st.ExitCode = 3
		return st, "", remote.ErrNothingToRollBack
	}
	h.current, h.deploying = h.done, ""
	return st, h.done, nil
}

// Status reads the host's revisions.
func (h *Host) Status(ctx context.Context, t remote.Target) (remote.TargetState, error) {
	h.f.record("status %s", h.name)
	h.mu.Lock()
	defer h.mu.Unlock()
	return remote.TargetState{Current: h.current, Done: h.done, Deploying: h.deploying}, nil
}

// CheckPort passes unless "port" is in FailChecks.
func (h *Host) CheckPort(ctx context.Context, port int, within time.Duration) remote.CheckResult {
	h.f.record("check %s port", h.name)
	cr := remote.CheckResult{Name: "port", Kind: remote.CheckKindPort, OK: true, Latency: time.Millisecond}
	if slices.Contains(h.behavior().FailChecks, "port") {
		cr.OK, cr.Err = false, "connection refused"
	}
	return cr
}

// Check fails when its name is in FailChecks or the host runs a bad
// revision.
func (h *Host) Check(ctx context.Context, t remote.Target, chk config.Check) remote.CheckResult {
	h.f.record("check %s %s", h.name, chk.Name)
	kind := remote.CheckKindCommand
	if chk.HTTP != "" {
		kind = remote.CheckKindHTTP
	}
	cr := remote.CheckResult{Name: chk.Name, Kind: kind, OK: true, Status: 200, Latency: time.Millisecond}
	h.mu.Lock()
	cur := h.current
	h.mu.Unlock()
	if slices.Contains(h.behavior().FailChecks, chk.Name) || h.f.isBad(cur) {
		cr.OK, cr.Status, cr.Err = false, 500, "status 500"
	}
	return cr
}

// Err is non-nil once the host was closed.
func (h *Host) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("closed")
	}
	return nil
}

// Close closes the connection.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	return nil
}
