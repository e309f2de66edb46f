package bot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deploybot/deployer/journal"
)

// runAs dispatches text from nick!user@host with account, and returns
// what the bot sent.
func (b *Bot) runAs(t *testing.T, w *fakeWire, nick, user, host, account, text string) []string {
	t.Helper()
	r := &request{nick: nick, user: user, host: host, account: account, channel: "#ops", replyTo: "#ops"}
	if !parseCommand(b.cfg.IRC.Prefix, text, r) {
		t.Fatalf("not a command: %q", text)
	}
	b.dispatch(context.Background(), r)
	b.out.drainTo(w)
	return w.take()
}

func newDeployBot(t *testing.T) (*Bot, *fakeWire) {
	t.Helper()
	b, w, _ := newTestBot(t)
	b.accountTags = true
	if d := b.cfg.Deploy.JournalDir; !filepath.IsAbs(d) || filepath.Base(d) != "deploys" {
		t.Fatalf("journal dir %q", b.cfg.Deploy.JournalDir)
	}
	b.SetDeployer(realEngine(t, b))
	b.dep.ctx = context.Background()
	return b, w
}

func one(t *testing.T, got []string, want string) {
	t.Helper()
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Fatalf("reply = %q, want one line containing %q", got, want)
	}
}

func held(t *testing.T, b *Bot, service string) *journal.Holder {
	t.Helper()
	h, err := journal.Held(b.cfg.Deploy.JournalDir, service)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestDeployerAuthorization(t *testing.T) {
	b, w := newDeployBot(t)
	refused := "you are not a deployer of citoid (log in to a services account listed in access.deployers or services.citoid.deployers)"
	cases := []struct {
		name                      string
		nick, user, host, account string
		service                   string
		ok                        bool
	}{
		{"global account", "al", "u", "h", "alice", "citoid", true},
		{"global account, other case: services spell it alice", "al", "u", "h", "ALICE", "citoid", false},
		{"per-service account", "d", "u", "h", "dave", "citoid", true},
		{"per-service account on another service", "d", "u", "h", "dave", "mathoid", false},
		{"unlisted account", "mallory", "u", "h", "mallory", "citoid", false},
		{"no account, no mask", "mallory", "u", "h", "", "citoid", false},
		{"nick alone", "alice", "u", "h", "", "citoid", false},
		{"global mask", "x", "~x", "wikimedia/ops/x", "", "mathoid", true},
		{"second global mask, ? glob", "Carol", "~carol", "10.0.0.7", "", "citoid", true},
		{"? matches one character only", "carol", "~carol", "10.0.0.17", "", "citoid", false},
		{"per-service mask", "y", "y", "cloak/citoid/y", "", "citoid", true},
		{"per-service mask on another service", "y", "y", "cloak/citoid/y", "", "mathoid", false},
		{"no mask matches", "z", "z", "example.org", "", "citoid", false},
	}
	for _, c := range cases {
		got := b.runAs(t, w, c.nick, c.user, c.host, c.account, "!lock "+c.service+" testing "+c.name)
		if c.ok {
			one(t, got, "Locked "+c.service+": testing "+c.name)
			if h := held(t, b, c.service); h == nil {
				t.Fatalf("%s: not locked", c.name)
			}
			one(t, b.runAs(t, w, c.nick, c.user, c.host, c.account, "!unlock "+c.service), "Unlocked "+c.service)
		} else {
			want := strings.ReplaceAll(refused, "citoid", c.service)
			if len(got) != 1 || got[0] != "#ops "+c.nick+": "+want {
				t.Fatalf("%s: reply = %q, want %q", c.name, got, want)
			}
			if h := held(t, b, c.service); h != nil {
				t.Fatalf("%s: locked anyway by %+v", c.name, h)
			}
		}
	}

	// Without account-tag only hostmasks authorize.
	b.accountTags = false
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!lock citoid x"), "you are not a deployer of citoid")
	one(t, b.runAs(t, w, "x", "x", "wikimedia/ops/x", "", "!lock citoid x"), "Locked citoid: x")
	b.accountTags = true

	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!lock nosuch because"), `unknown service "nosuch". Services: citoid, mathoid.`)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!lock citoid"), "missing argument. Usage: !lock <service> <reason…>")
	one(t, b.runAs(t, w, "mallory", "u", "h", "", "!unlock citoid"), "you are not a deployer of citoid")
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{
		{"*", "", true}, {"*!*@*", "a!b@c/d", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*@wm/*", "n!u@wm/x/y", true}, {"*@wm/*", "n!u@wmx/y", false}, {"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false}, {"?", "é", true}, {"abc", "abcd", false},
	} {
		if got := globMatch(c.p, c.s); got != c.ok {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestLockUnlock(t *testing.T) {
	b, w := newDeployBot(t)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!unlock citoid"), "citoid is not locked")
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!lock citoid db   migration"), "#ops alice: Locked citoid: db migration")
	h := held(t, b, "citoid")
	if h == nil || h.Who != "alice" || h.Why != "db   migration" {
		t.Fatalf("held = %+v", h)
	}
	one(t, b.runAs(t, w, "d", "u", "h", "dave", "!lock citoid again"), "citoid is locked by alice since ")
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!status citoid"), "; locked by alice since ")
	got := b.runAs(t, w, "d", "u", "h", "dave", "!unlock citoid")
	one(t, got, "Unlocked citoid (was locked by alice since ")
	if !strings.HasSuffix(got[0], " UTC: db migration)") {
		t.Fatalf("unlock = %q", got)
	}
	if held(t, b, "citoid") != nil {
		t.Fatal("still locked")
	}
}

func TestStatusAndDeploylog(t *testing.T) {
	b, w := newDeployBot(t)
	dir := b.cfg.Deploy.JournalDir

	got := b.runAs(t, w, "bob", "u", "h", "", "!status")
	if len(got) != 2 || got[0] != "#ops citoid: idle; live revision unknown (no successful deploy recorded)" || !strings.HasPrefix(got[1], "#ops mathoid: idle") {
		t.Fatalf("status = %q", got)
	}
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!deploylog citoid"), "no deploys of citoid recorded yet.")
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!deploylog nosuch"), `unknown service "nosuch"`)
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!status nosuch"), `unknown service "nosuch"`)
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!deploylog"), "missing argument. Usage: !deploylog <service> [<n>]")
	for _, bad := range []string{"0", "51", "x", "-1"} {
		one(t, b.runAs(t, w, "bob", "u", "h", "", "!deploylog citoid "+bad), "want a number from 1 (the last deploy) to 50")
	}

	// Two deploys: a success two hours ago, then a failure.
	old := time.Now().Add(-2*time.Hour - time.Minute).UTC()
	write := func(id, rev, from string, outcome journal.Outcome, started time.Time) {
		t.Helper()
		jw, err := journal.Create(dir, "citoid", journal.Meta{ID: id, Who: "alice", Rev: rev, FromRev: from, Started: started,
			Hosts: map[string][]string{"canary": {"scb1001"}}, GroupOrder: []string{"canary"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := jw.Append(journal.Event{Type: journal.TypeFinished, Outcome: outcome, Time: started.Add(time.Minute), Duration: time.Minute}); err != nil {
			t.Fatal(err)
		}
		jw.Close()
	}
	id1, _ := journal.NewID("citoid", old)
	write(id1, "5d6e7f8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "1a2b3c4bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", journal.OutcomeSuccess, old)
	id2, _ := journal.NewID("citoid", old.Add(time.Hour))
	write(id2, "9999999cccccccccccccccccccccccccccccccccc", "5d6e7f8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", journal.OutcomeFailed, old.Add(time.Hour))

	one(t, b.runAs(t, w, "bob", "u", "h", "", "!status citoid"), "#ops bob: citoid: idle; live 5d6e7f8 (deployed by alice 2h ago), per group: canary 5d6e7f8")
	got = b.runAs(t, w, "bob", "u", "h", "", "!deploylog citoid")
	one(t, got, id2+" alice 5d6e7f8..9999999 failed")
	one(t, got, "full log: https://sal.example.org/deploys/"+id2)
	got = b.runAs(t, w, "bob", "u", "h", "", "!deploylog citoid 2")
	one(t, got, id1+" alice 1a2b3c4..5d6e7f8 success")
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!deploylog citoid 3"), "citoid has only 2 deploy(s) recorded.")

	l, err := journal.AcquireDeploy(dir, "mathoid", journal.Holder{Who: "erin", Why: "deploying abc1234", DeployID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!status mathoid"), "mathoid: deploying by erin since ")
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!status mathoid"), ": deploying abc1234; live revision unknown")
}

// !status of a deploy in progress: its group, hosts done, failed and in
// flight, and the open question.
func TestStatusOfRunningDeploy(t *testing.T) {
	b, w := newDeployBot(t)
	dir := b.cfg.Deploy.JournalDir
	id, _ := journal.NewID("citoid", time.Now())
	l, err := journal.AcquireDeploy(dir, "citoid", journal.Holder{Who: "erin", Why: "deploying 5d6e7f8", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	jw, err := journal.Create(dir, "citoid", journal.Meta{ID: id, Who: "erin", Rev: revB, FromRev: revA,
		Hosts: map[string][]string{"canary": {"scb1001"}, "eqiad": {"scb1002", "scb1003"}}, GroupOrder: []string{"canary", "eqiad"}})
	if err != nil {
		t.Fatal(err)
	}
	defer jw.Close()
	for _, ev := range []journal.Event{
		{Type: journal.TypeGroupStarted, Group: "canary"},
		{Type: journal.TypeHostDone, Group: "canary", Host: "scb1001", Rev: revB},
		{Type: journal.TypeGroupStarted, Group: "eqiad"},
		{Type: journal.TypeHostFailed, Group: "eqiad", Host: "scb1002", Err: "unreachable"},
		{Type: journal.TypeStageStarted, Group: "eqiad", Host: "scb1003", Stage: "deploy"},
	} {
		if err := jw.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!status citoid"), ": deploying 5d6e7f8 — group eqiad, 1/3 hosts done, 1 failed, 1 in flight; ")
	jw.Append(journal.Event{Type: journal.TypePrompt, Group: "eqiad", Prompt: "group eqiad failed"})
	one(t, b.runAs(t, w, "bob", "u", "h", "", "!status citoid"), ", waiting for !rollback citoid or !continue citoid; ")
}
