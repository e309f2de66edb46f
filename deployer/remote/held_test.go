package remote

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

// TestDeployHeld: a held deploy runs its stages in one session, which
// then waits with the operation recorded and the service up; Finalize
// marks the revision done in that same session, Release ends it with the
// revision live but not done; either way the operation file is gone and
// the service outlives the session, as it does when the connection drops
// while the script holds. A no-op or a failed stage does not hold.
func TestDeployHeld(t *testing.T) {
	f, d := startFleet(t, 1)
	g := newGitFixture(t, net.JoinHostPort(f.GatewayIP, "0"), 4)
	sha := g.SHAs
	h := f.Hosts[0]
	copyHelper(t, h)
	tg := Target{Service: "svc", Dir: "/srv/deployment/svc/deploy", ServeURL: g.ServeURL, Repo: g.Repo,
		Submodules: []string{"lib"}, Restart: serviceRestart, KeepRevs: 2, OpID: "held1"}
	root := filepath.Join(h.Root, "svc", "deploy-cache")
	opFile := filepath.Join(root, ".deploybot-op")
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(root, name))
		return strings.TrimSpace(string(b))
	}
	ctx := context.Background()
	timeout := scale.D(30 * time.Second)
	c := dialT(t, d, h)
	serviceUp := func(when string) {
		t.Helper()
		if r := c.CheckPort(ctx, servicePort, scale.D(10*time.Second)); !r.OK {
			t.Fatalf("%s: the service is down: %+v", when, r)
		}
	}
	waitGone := func(p string) {
		t.Helper()
		for deadline := time.Now().Add(scale.D(10 * time.Second)); ; time.Sleep(scale.D(20 * time.Millisecond)) {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is still there", p)
			}
		}
	}

	// Held, then finalized: one session in all.
	stages, held, err := c.DeployHeld(ctx, tg, sha[0], false, timeout)
	if err != nil || held == nil || len(stages) != 4 || stages[3].Stage != StageRestart {
		t.Fatalf("held deploy: %v %v %+v", err, held, stages)
	}
	if op := read(".deploybot-op"); !strings.HasPrefix(op, "held1 ") || !strings.Contains(op, " deploy ") {
		t.Errorf("while held, the operation file is %q", op)
	}
	if done := read(".done"); done != "" {
		t.Errorf("done before finalize: %q", done)
	}
	serviceUp("while held")
	st, err := held.Finalize(ctx, timeout)
	if err != nil || st.Stage != StageFinalize || st.ExitCode != 0 || !strings.Contains(st.Output, "done: "+sha[0]) ||
		!strings.Contains(st.Command, "mark_done() {") {
		t.Fatalf("finalize: %v %+v", err, st)
	}
	if done := read(".done"); done != sha[0] {
		t.Errorf(".done = %q, want %s", done, sha[0])
	}
	if dep := read(".deploying"); dep != "" {
		t.Errorf(".deploying = %q after finalize", dep)
	}
	waitGone(opFile)
	if n := c.Sessions(); n != 1 {
		t.Errorf("held deploy and finalize used %d sessions, want 1", n)
	}
	serviceUp("after the held session ended")
	if _, err := held.Finalize(ctx, timeout); err == nil {
		t.Error("a second Finalize succeeded")
	}

	// Held, then released: live, not done; a Finalize of its own still
	// marks it done.
	stages, held, err = c.DeployHeld(ctx, tg, sha[1], false, timeout)
	if err != nil || held == nil || len(stages) != 4 {
		t.Fatalf("held deploy of %s: %v %v %+v", sha[1][:8], err, held, stages)
	}
	held.Release()
	waitGone(opFile)
	if l, _ := os.Readlink(filepath.Join(root, "current")); l != "revs/"+sha[1] {
		t.Errorf("after release, current -> %q", l)
	}
	if done, dep := read(".done"), read(".deploying"); done != sha[0] || dep != sha[1] {
		t.Errorf("after release: .done %q, .deploying %q; want %s, %s", done, dep, sha[0][:8], sha[1][:8])
	}
	serviceUp("after release")
	if st, err := c.Finalize(ctx, tg, sha[1]); err != nil || read(".done") != sha[1] {
		t.Fatalf("finalize after release: %v %+v", err, st)
	}

	// Live and done: a no-op, which does not hold.
	stages, held, err = c.DeployHeld(ctx, tg, sha[1], false, timeout)
	if err != nil || held != nil || len(stages) != 1 || stages[0].Stage != StageNoop {
		t.Fatalf("no-op held deploy: %v %v %+v", err, held, stages)
	}

	// A failed stage does not hold: the error is the stage's.
	bad := tg
	bad.Restart = "echo no; exit 4"
	stages, held, err = c.DeployHeld(ctx, bad, sha[2], false, timeout)
	var se *StageError
	if held != nil || !errors.As(err, &se) || se.Stage != StageRestart || se.ExitCode != 4 {
		t.Fatalf("failing held deploy: %v %v %+v", err, held, stages)
	}
	waitGone(opFile)

	// Stopped while it holds, as a recovery from another deploybot would:
	// the script's process group is stopped, and the service its restart
	// started, in a group of its own, stays up.
	stages, held, err = c.DeployHeld(ctx, tg, sha[2], false, timeout)
	if err != nil || held == nil {
		t.Fatalf("held deploy of %s: %v %+v", sha[2][:8], err, stages)
	}
	b, _ := os.ReadFile(filepath.Join(h.Root, "svc.pid"))
	svcPID := atoi(string(b))
	if svcPID < 2 || procGroup(svcPID) == 0 {
		t.Fatalf("service pid %d not running", svcPID)
	}
	other := dialT(t, d, h)
	sr, err := other.Stop(ctx, tg, "held1", scale.D(5*time.Second))
	if err != nil || !sr.Found || sr.OpID != "held1" || sr.Signal == "" {
		t.Fatalf("stop of the held script: %+v %v", sr, err)
	}
	if procGroup(svcPID) == 0 {
		t.Fatal("stopping the held script killed the service its restart started")
	}
	serviceUp("after the held script was stopped")
	if _, err := held.Finalize(ctx, timeout); err == nil {
		t.Error("Finalize of a stopped script succeeded")
	}
	if done := read(".done"); done != sha[1] {
		t.Errorf(".done = %q after the stop, want %s", done, sha[1][:8])
	}
	waitGone(opFile)

	// The connection drops while the script holds: the script ends by
	// itself, the operation file goes, the service stays.
	stages, held, err = c.DeployHeld(ctx, tg, sha[3], false, timeout)
	if err != nil || held == nil {
		t.Fatalf("held deploy of %s: %v %+v", sha[3][:8], err, stages)
	}
	c.Close()
	waitGone(opFile)
	c = dialT(t, d, h)
	serviceUp("after the connection of a held session dropped")
	if done := read(".done"); done != sha[1] {
		t.Errorf(".done = %q after the drop, want %s", done, sha[1][:8])
	}
	if _, err := held.Finalize(ctx, timeout); err == nil {
		t.Error("Finalize on a dropped connection succeeded")
	}
}
