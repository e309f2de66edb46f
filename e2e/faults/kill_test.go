package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"deploybot/deployer/journal"
	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
)

// killPoint is a point of a deploy where the bot is SIGKILLed. arm sets
// the gate up before the !deploy (base is the live revision's sha, sha the
// one deployed); reach waits until the deploy is there; disarm removes
// the gate after the kill.
type killPoint struct {
	name   string
	status int // what the deployed revision's /health answers
	arm    func(e *env, base, sha string)
	reach  func(e *env, notID, base, sha string)
	disarm func(e *env)
}

const (
	canary = 0 // host indexes: the canary, and group a's two hosts
	a1     = 1
	a2     = 2
)

var killPoints = []killPoint{{
	name: "after the repo update",
	// The canary does not answer: the deploy cannot get past dialing it.
	arm: func(e *env, _, _ string) { e.must(e.Fleet.Hosts[canary].Blackhole()) },
	reach: func(e *env, notID, _, _ string) {
		e.waitEvent(notID, func(ev journal.Event) bool { return ev.Type == journal.TypeStarted })
	},
	disarm: func(e *env) { e.must(e.Fleet.Hosts[canary].Unblackhole()) },
}, {
	name:   "mid-fetch",
	arm:    func(e *env, _, _ string) { e.HostFile(canary, "hold-fetch", "1") },
	reach:  func(e *env, _, _, _ string) { e.waitHostFile(canary, "hold-fetch.waiting") },
	disarm: func(e *env) { e.clearHostFiles(canary, "hold-fetch", "hold-fetch.waiting") },
}, {
	// The canary's current points at the new revision; its restart has
	// not begun.
	name:   "mid-promote on the canary",
	arm:    func(e *env, _, sha string) { e.HostFile(canary, "slow", sha) },
	reach:  func(e *env, _, _, _ string) { e.waitHostFile(canary, "restart.pid") },
	disarm: func(e *env) { e.clearHostFiles(canary, "slow", "restart.pid") },
}, {
	name:   "during canary checks",
	arm:    func(e *env, _, _ string) { e.HostFile(canary, "hold-health", "1") },
	reach:  func(e *env, _, _, _ string) { e.waitHostFile(canary, "hold-health.waiting") },
	disarm: func(e *env) { e.clearHostFiles(canary, "hold-health") },
}, {
	name:   "while a prompt waits",
	status: 500,
	arm:    func(*env, string, string) {},
	reach: func(e *env, notID, _, _ string) {
		e.waitEvent(notID, func(ev journal.Event) bool { return ev.Type == journal.TypePrompt })
		e.expect("svc: canary", 30*time.Second)
	},
	disarm: func(*env) {},
}, {
	// Host a1 is done; a2 is in its restart.
	name:   "mid-group",
	arm:    func(e *env, _, sha string) { e.HostFile(a2, "slow", sha) },
	reach:  func(e *env, _, _, _ string) { e.waitHostFile(a2, "restart.pid") },
	disarm: func(e *env) { e.clearHostFiles(a2, "slow", "restart.pid") },
}, {
	// The canary fails, the operator answers !rollback, and the canary's
	// restart on the previous revision is in progress.
	name:   "during rollback",
	status: 500,
	arm:    func(e *env, base, _ string) { e.HostFile(canary, "slow", base) },
	reach: func(e *env, notID, _, _ string) {
		e.waitEvent(notID, func(ev journal.Event) bool { return ev.Type == journal.TypePrompt })
		e.say("!rollback svc")
		e.waitHostFile(canary, "restart.pid")
	},
	disarm: func(e *env) { e.clearHostFiles(canary, "slow", "restart.pid") },
}, {
	// Every host is deployed; a1's finalize is pruning an old revision.
	name:   "during finalize",
	arm:    func(e *env, _, _ string) { e.HostFile(a1, "hold-finalize", "1") },
	reach:  func(e *env, _, _, _ string) { e.waitHostFile(a1, "hold-finalize.waiting") },
	disarm: func(e *env) { e.clearHostFiles(a1, "hold-finalize", "hold-finalize.waiting") },
}}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) clearHostFiles(i int, names ...string) {
	for _, n := range names {
		e.HostFile(i, n, "")
	}
}

// TestBotKilledMidDeploy SIGKILLs the bot at each point of a deploy, on
// a canary and a group of two. The bot started again posts the
// interrupted deploy; !rollback and !continue (in turn) leave every host
// on exactly one revision — the previous one or the new one — with the
// service answering it, the journal finished with that outcome, and the
// lock free.
func TestBotKilledMidDeploy(t *testing.T) {
	e := newEnv(t, "kill", 3, "60s")
	e.startBot()
	e.deploy("v1")
	for i := range e.Fleet.Hosts {
		e.installRefHook(i)
	}
	live := "v1"
	for n, p := range killPoints {
		answer := []string{"rollback", "continue"}[n%2]
		ok := t.Run(p.name+" then "+answer, func(st *testing.T) {
			e.t, e.T = st, st
			defer func() { e.t, e.T = t, t }()
			live = e.killAt(p, n, answer, live)
		})
		if !ok {
			break // the fleet's state is unknown: later points would only mislead
		}
	}
}

// killAt runs one kill point from a fleet on live and returns the label
// the fleet is on afterwards.
func (e *env) killAt(p killPoint, n int, answer, live string) string {
	t := e.t
	label := fmt.Sprintf("k%d", n+1)
	status := p.status
	if status == 0 {
		status = 200
	}
	base, sha := e.Revs[live], e.Commit(label, status)
	notID := e.latestID()
	p.arm(e, base, sha)
	e.alice.Discard()
	start := time.Now()
	e.say("!deploy svc " + sha[:7])
	p.reach(e, notID, base, sha)
	e.kill()
	killed := e.latest()
	p.disarm(e)
	if killed.Finished || killed.Meta.ID == notID {
		t.Fatalf("killed at %q, the journal %s is finished (%s)", p.name, killed.Meta.ID, killed.Outcome)
	}

	defer e.logJournalOnFailure(killed.Meta.ID)
	e.alice.Discard()
	e.startBot()
	posted := e.expectAny(30*time.Second, "was interrupted", "was waiting for an answer when the bot stopped")
	if !strings.Contains(posted, killed.Meta.ID) {
		t.Errorf("the bot posted %q, not naming deploy %s", posted, killed.Meta.ID)
	}
	e.say("!" + answer + " svc")
	want := live
	if answer == "rollback" {
		e.expect("Rolled back svc to "+base[:7], 60*time.Second)
	} else {
		want = label
		e.expect("Finished deploy [svc@"+sha[:7]+"]", 60*time.Second)
	}
	t.Logf("killed %s, %s: done in %v", p.name, answer, time.Since(start).Round(time.Millisecond))

	e.WantFleet(want)
	e.wantFinished(killed.Meta.ID, answer)
	e.wantUnlocked()
	return want
}

// expectAny waits for the bot's next line containing one of substrs.
func (e *env) expectAny(timeout time.Duration, substrs ...string) string {
	e.t.Helper()
	var ms []ircd.Matcher
	for _, s := range substrs {
		ms = append(ms, ircd.TextContains(s))
	}
	m, err := e.alice.Expect(scale.D(timeout), ircd.And(ircd.IsPrivmsgFrom(e.nick, e.ch), ircd.Or(ms...)))
	if err != nil {
		e.t.Fatalf("no line from the bot containing any of %q: %v\nthe bot said:\n%s", substrs, err, strings.Join(e.lines(), "\n"))
	}
	return ircd.Text(m)
}

// wantFinished checks the journal of the interrupted deploy id: !rollback
// takes it up (a resumed event) and finishes it rolled back; !continue
// marks it ended and finishes the deploy in a new journal "resuming <id>",
// the newest. No deploy is left unfinished.
func (e *env) wantFinished(id, answer string) {
	e.t.Helper()
	path, err := journal.JournalPath(e.Cfg.Deploy.JournalDir, "svc", id)
	e.must(err)
	d, err := journal.Read(path)
	e.must(err)
	resumed := 0
	for _, ev := range d.Events {
		if ev.Type == journal.TypeResumed {
			resumed++
		}
	}
	latest := e.latest()
	switch {
	case answer == "rollback" && (!d.Finished || d.Outcome != journal.OutcomeRolledBack || resumed != 1 || latest.Meta.ID != id):
		e.t.Errorf("journal %s: finished %v, outcome %q, %d resumed events; newest %s", id, d.Finished, d.Outcome, resumed, latest.Meta.ID)
	case answer == "continue" && (!d.Finished || d.Outcome != journal.OutcomeEnded):
		e.t.Errorf("journal %s: finished %v, outcome %q; want ended", id, d.Finished, d.Outcome)
	case answer == "continue" && (latest.Meta.ID == id || !latest.Finished || latest.Outcome != journal.OutcomeSuccess ||
		!strings.HasPrefix(latest.Meta.Message, "resuming "+id)):
		e.t.Errorf("the deploy resuming %s: journal %s, message %q, finished %v, outcome %q", id, latest.Meta.ID, latest.Meta.Message, latest.Finished, latest.Outcome)
	}
	if list, err := journal.Unfinished(e.Cfg.Deploy.JournalDir); err != nil || len(list) != 0 {
		e.t.Errorf("unfinished deploys left: %d %v", len(list), err)
	}
}

// logJournalOnFailure logs deploy id's journal (deploy-log) and the
// newest one if the step has failed.
func (e *env) logJournalOnFailure(id string) {
	if !e.t.Failed() {
		return
	}
	_, out, errOut := e.CLI("", "deploy-log", "--id", id)
	e.t.Logf("journal of %s:\n%s%s", id, out, errOut)
	_, out, errOut = e.CLI("", "deploy-log", "svc", "--latest")
	e.t.Logf("newest journal:\n%s%s", out, errOut)
}
