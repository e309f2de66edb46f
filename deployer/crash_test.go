package deployer

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer/fakefleet"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// crash is a deploy process dying at a chosen point: from that moment
// nothing more of its run reaches the journal or the hosts, and the
// session it was starting stays running on its host (fakefleet.Leave).
type crash struct {
	fleet *fakefleet.Fleet
	// at is the session the process dies in: its kind (remote.OpDeploy,
	// OpFinalize, OpRollback) and host.
	kind, host string
	dead       atomic.Bool
}

var errDead = errors.New("the deploy process is dead")

// hit reports whether the process is dead once the session kind on host
// starts, dying there if that is the chosen point.
func (c *crash) hit(kind, host string, t remote.Target) bool {
	if !c.dead.Load() && kind == c.kind && host == c.host {
		c.fleet.Leave(host, t.OpID)
		c.dead.Store(true)
	}
	return c.dead.Load()
}

// crashStore drops every journal event once the process is dead.
type crashStore struct {
	journal.Store
	c *crash
}

func (s crashStore) Create(l journal.Lease, meta journal.Meta) (journal.EventWriter, error) {
	w, err := s.Store.Create(l, meta)
	if err != nil {
		return nil, err
	}
	return crashWriter{w, s.c}, nil
}

type crashWriter struct {
	journal.EventWriter
	c *crash
}

func (w crashWriter) Append(ev journal.Event) error {
	if w.c.dead.Load() {
		return nil
	}
	return w.EventWriter.Append(ev)
}

// crashHost does nothing on the host once the process is dead.
type crashHost struct {
	Host
	name string
	c    *crash
}

func (h crashHost) dead() error {
	return &remote.HostError{Host: h.name, Kind: remote.KindCanceled, Err: errDead}
}

func (h crashHost) Deploy(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, error) {
	if h.c.hit(remote.OpDeploy, h.name, t) {
		return nil, h.dead()
	}
	return h.Host.Deploy(ctx, t, sha, force, timeout)
}

func (h crashHost) Finalize(ctx context.Context, t remote.Target, sha string) (remote.StageResult, error) {
	if h.c.hit(remote.OpFinalize, h.name, t) {
		return remote.StageResult{ExitCode: -1}, h.dead()
	}
	return h.Host.Finalize(ctx, t, sha)
}

func (h crashHost) Rollback(ctx context.Context, t remote.Target) (remote.StageResult, string, error) {
	if h.c.hit(remote.OpRollback, h.name, t) {
		return remote.StageResult{ExitCode: -1}, "", h.dead()
	}
	return h.Host.Rollback(ctx, t)
}

func (h crashHost) Check(ctx context.Context, t remote.Target, chk config.Check) remote.CheckResult {
	if h.c.dead.Load() {
		return remote.CheckResult{Name: chk.Name, Err: errDead.Error()}
	}
	return h.Host.Check(ctx, t, chk)
}

// deployCrashing runs a deploy of shas[2] (request req) on an engine
// sharing f's fleet and journal directory whose process dies at the
// session kind on host; it returns the interrupted deploy's id.
func (f *fleetFixture) deployCrashing(t *testing.T, req Request, kind, host string) string {
	t.Helper()
	c := &crash{fleet: f.fleet, kind: kind, host: host}
	eng := NewWithStore(f.cfg, nil, DialerFunc(func(ctx context.Context, h config.Host) (Host, error) {
		conn, err := f.fleet.Dial(ctx, h)
		if err != nil {
			return nil, err
		}
		return crashHost{conn, h.String(), c}, nil
	}), crashStore{journal.NewFiles(f.cfg.Deploy.JournalDir), c})
	defer eng.Close()
	req.Service, req.Who, req.Rev = "svc", "erin", f.shas[2]
	// After the crash a host fails; the dead process answers nothing
	// that reaches the journal, so any answer will do.
	res, err := eng.Deploy(context.Background(), req, &answerer{e: eng, who: "erin", answers: []Answer{Rollback}}, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if !c.dead.Load() {
		t.Fatalf("the deploy never reached the %s of %s: %+v", kind, host, res)
	}
	d := f.readJournal(t, res.ID)
	if d.Finished {
		t.Fatalf("the crashed deploy's journal is finished: %s", d.Outcome)
	}
	return res.ID
}

// A deploy whose process died during a host's finalize or rollback is
// recovered — continued, rolled back or marked ended — after stopping
// the session it left running there; nothing is refused as "another
// deploybot operation is running".
func TestRecoverAfterCrashInSession(t *testing.T) {
	const hosts = "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2], parallel: 1}]"
	cases := []struct {
		name string
		// svc is the service's configuration; req the crashed deploy's.
		svc  string
		req  Request
		fail string // the host whose deploy fails, starting a rollback
		kind string // the session the process dies in, on a1
	}{
		{name: "early finalize", svc: hosts, kind: remote.OpFinalize},
		{name: "finalize at the end", svc: hosts + "\nkeep_revs: 1", kind: remote.OpFinalize},
		{name: "forced, finalize at the end", svc: hosts, req: Request{Force: true}, kind: remote.OpFinalize},
		{name: "rollback", svc: hosts, fail: "a2", kind: remote.OpRollback},
	}
	for _, tc := range cases {
		for _, action := range []string{"continue", "rollback", "mark ended"} {
			t.Run(tc.name+"/"+action, func(t *testing.T) {
				f := newFleetFixture(t, tc.svc)
				f.installAll(f.shas[0])
				if tc.fail != "" {
					f.fleet.Set(tc.fail, fakefleet.Behavior{DeployFails: true})
				}
				id := f.deployCrashing(t, tc.req, tc.kind, "a1")
				if tc.fail != "" {
					f.fleet.Set(tc.fail, fakefleet.Behavior{})
				}
				res, err := f.recoverAs(id, action)
				if err != nil {
					t.Fatalf("%s: %v", action, err)
				}
				if res.Stopped != 1 || f.fleet.Left("a1") != "" {
					t.Errorf("stopped %d, left on a1 %q; reason %q, failed %+v", res.Stopped, f.fleet.Left("a1"), res.Reason, res.Failed)
				}
				calls := f.fleet.Calls()
				if first := slices.Index(calls, "stop a1"); first < 0 {
					t.Errorf("a1 never stopped: %v", calls)
				}
				f.wantRecovered(t, action, res)
			})
		}
	}
}

// recoverAs acts on the interrupted deploy id as the operator answers.
func (f *fleetFixture) recoverAs(id, action string) (*Result, error) {
	ctx := context.Background()
	// A host that fails asks whether to roll back: yes.
	obs := &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}
	switch action {
	case "continue":
		return f.eng.Resume(ctx, id, "bob", obs, nil)
	case "rollback":
		return f.eng.Recover(ctx, id, RecoverRollback, "bob", obs)
	}
	return f.eng.Recover(ctx, id, RecoverMarkEnded, "bob", nil)
}

// wantRecovered checks the outcome of a recovery and, for continue and
// rollback, that every host is on one revision, done.
func (f *fleetFixture) wantRecovered(t *testing.T, action string, res *Result) {
	t.Helper()
	want, outcome := f.shas[2], OutcomeSuccess
	switch action {
	case "rollback":
		want, outcome = f.shas[0], OutcomeRolledBack
	case "mark ended":
		if res.Outcome != OutcomeEnded {
			t.Errorf("outcome %s (%s)", res.Outcome, res.Reason)
		}
		return
	}
	if res.Outcome != outcome || len(res.Failed) != 0 {
		t.Errorf("outcome %s, want %s; failed %+v", res.Outcome, outcome, res.Failed)
	}
	for _, h := range []string{"c1", "a1", "a2"} {
		if cur, _, _ := f.fleet.State(h); cur != want {
			t.Errorf("%s on %s, want %s", h, short(cur), short(want))
		}
	}
}
