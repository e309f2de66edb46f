package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"deploybot/e2e/ircd"
	"deploybot/e2e/scale"
	"deploybot/sal"
)

// inDeployRepo reports whether installation dh's deploy repository of
// svc holds commit sha.
func (dh *deployHost) inDeployRepo(sha string) bool {
	repo := filepath.Join(dh.dir, "deployment", "svc", "deploy")
	return exec.Command("git", "-C", repo, "cat-file", "-e", sha+"^{commit}").Run() == nil
}

// deployToGate has A's bot deploy rev of svc with the restart on the
// first host of group a held by its gate, and returns once it waits
// there: the canary is on rev, group a's first host in flight, its second
// not reached.
func (h *twoHosts) deployToGate(t *testing.T, rev string) {
	t.Helper()
	h.gate(1, svcPort, rev)
	h.alice.Discard()
	h.alice.Say("#ops", h.a.prefix+"deploy "+svcName+" "+rev[:7])
	expectBot(t, h.alice, h.a.nick, "svc: canary 1/1 ok", scale.D(60*time.Second))
	h.awaitGate(t, 1, svcPort)
}

// wantInterrupted checks B's announcement of the interrupted deploy of
// rev (from the revision from): its hosts by state, and what to do.
func wantInterrupted(t *testing.T, line, from, rev string) {
	t.Helper()
	re := regexp.MustCompile(`^svc: deploy \S+ by alice of ` + rev[:7] + ` \(from ` + from[:7] + `\), started [^,]+, was interrupted\. ` +
		`Hosts: canary: 1 on ` + rev[:7] + `; a: 1 in flight \(state unknown\), 1 not reached\. !rollback svc puts them back on ` + from[:7])
	if !re.MatchString(line) {
		t.Fatalf("interrupted deploy announced as %q, want it to match %s", line, re)
	}
}

// TestTwoDeployHostsRecoverKilledDeploy: A's bot is killed (SIGKILL: its
// database session ends with it) while a deploy waits at a gate; B's bot
// announces the interrupted deploy with the state of each host, once, and
// finishes it on !rollback (every host back on the revision before) and,
// for a second killed deploy, on !continue — each a revision B's deploy
// repository did not hold, cloned before it was committed.
func TestTwoDeployHostsRecoverKilledDeploy(t *testing.T) {
	h := newTwoHosts(t)
	d, alice := h.d, h.alice
	h.b.startBot(t, alice)
	long := scale.D(60 * time.Second)
	v1 := d.Revs["v1"]
	// B deploys first: its deploy repository is cloned now.
	alice.Say("#ops", "!deploy "+svcName)
	expectBot(t, alice, h.b.nick, "Finished deploy [svc@"+v1[:7]+"]", long)

	// killAtGate deploys rev from A and kills A's bot at the gate; it
	// returns B's announcement.
	killAtGate := func(t *testing.T, rev string) string {
		t.Helper()
		h.a.startBot(t, alice)
		h.deployToGate(t, rev)
		h.a.bot.Cmd.Process.Kill()
		h.a.bot.Cmd.Wait()
		killed := time.Now()
		if _, err := alice.Expect(scale.D(15*time.Second), ircd.IsQuitOf(h.a.nick)); err != nil {
			t.Fatalf("A's bot did not leave: %v", err)
		}
		line := expectBot(t, alice, h.b.nick, "was interrupted", scale.D(20*time.Second))
		t.Logf("B announced the interrupted deploy %v after the kill", time.Since(killed).Round(time.Millisecond))
		if h.b.inDeployRepo(rev) {
			t.Fatalf("B's deploy repository holds %.7s already: the test proves nothing", rev)
		}
		return line
	}

	v2 := d.Commit("v2", 200)
	t.Run("rollback", func(t *testing.T) {
		wantInterrupted(t, killAtGate(t, v2), v1, v2)
		alice.Say("#ops", "!rollback "+svcName)
		expectBot(t, alice, h.b.nick, "Rolled back svc to "+v1[:7], long)
		// What the killed deploy left at the gate was stopped: opening it
		// restarts nothing.
		h.gate(1, svcPort, "")
		time.Sleep(scale.D(time.Second))
		d.WantFleet("v1")
		if r := restartsOf(d, 1); len(r) == 0 || r[len(r)-1] != v1 {
			t.Errorf("%s was last restarted on %v", d.Fleet.Hosts[1].Name, r)
		}
	})

	v3 := d.Commit("v3", 200)
	t.Run("continue", func(t *testing.T) {
		wantInterrupted(t, killAtGate(t, v3), v1, v3)
		h.gate(1, svcPort, "")
		alice.Say("#ops", "!continue "+svcName)
		expectBot(t, alice, h.b.nick, "Finished deploy [svc@"+v3[:7]+"]: resuming ", long)
		d.WantFleet("v3")
		if !h.b.inDeployRepo(v3) {
			t.Error("B finished the deploy without the revision in its deploy repository")
		}
	})

	// Each interrupted deploy was announced once, by B only.
	if n := botSaid(alice, h.b.nick, "was interrupted"); n != 2 {
		t.Errorf("B announced %d interrupted deploys, want 2", n)
	}
}

// TestTwoDeployHostsPostgresRestart: the database restarts while A's bot
// deploys (its restart held at a gate on the first host of group a). A's
// lease is lost: the deploy stops, no new host starts, the journal keeps
// what was done before; the interruption is announced once in the channel
// though both bots watch the shared state; B's !continue then finishes
// the deploy.
func TestTwoDeployHostsPostgresRestart(t *testing.T) {
	h := newTwoHosts(t)
	d, alice := h.d, h.alice
	h.a.startBot(t, alice)
	h.b.startBot(t, alice)
	long := scale.D(60 * time.Second)
	v1 := d.Revs["v1"]
	alice.Say("#ops", "!deploy "+svcName)
	expectBot(t, alice, h.b.nick, "Finished deploy [svc@"+v1[:7]+"]", long)

	v2 := d.Commit("v2", 200)
	h.deployToGate(t, v2)
	if err := h.pg.Restart(0); err != nil {
		t.Fatalf("restarting PostgreSQL: %v", err)
	}
	waitLog(t, h.a.bot, "deploy interrupted")
	// The held restart goes on once its gate opens (nothing stops it
	// there), but the deploy started nothing more.
	h.gate(1, svcPort, "")
	m, err := alice.Expect(scale.D(30*time.Second), ircd.And(ircd.Or(ircd.IsPrivmsgFrom(h.a.nick, "#ops"), ircd.IsPrivmsgFrom(h.b.nick, "#ops")),
		ircd.TextContains("was interrupted")))
	if err != nil {
		t.Fatalf("no bot announced the interrupted deploy: %v", err)
	}
	wantInterrupted(t, ircd.Text(m), v1, v2)
	if r := restartsOf(d, 2); len(r) != 1 || r[0] != v1 {
		t.Errorf("%s was restarted on %v after the lease was lost, want only %.7s", d.Fleet.Hosts[2].Name, r, v1)
	}
	d.WantFleet("v1", 2)

	// The journal holds what was done before the restart, and nothing
	// after: read from B.
	code, out, errOut := h.b.run(t, "deploy-log", svcName, "--latest")
	if code != 0 {
		t.Fatalf("deploy-log --latest on B: exit %d\n%s\n%s", code, out, errOut)
	}
	summary := strings.SplitN(out, "\n\n", 2)[0]
	for _, want := range []string{d.Fleet.Hosts[0].IP + ": done, switched to " + v2[:7], d.Fleet.Hosts[1].IP + ": interrupted during deploy", d.Fleet.Hosts[2].IP + ": not reached"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the journal's summary lacks %q:\n%s", want, out)
		}
	}

	// Both bots watch the state: the interruption is announced once.
	time.Sleep(scale.D(12 * time.Second)) // two rounds of each watcher
	n := botSaid(alice, h.a.nick, "was interrupted") + botSaid(alice, h.b.nick, "was interrupted")
	if n != 1 {
		t.Errorf("the interruption was announced %d times:\n%s\n%s", n, strings.Join(botLines(alice, h.a.nick), "\n"), strings.Join(botLines(alice, h.b.nick), "\n"))
	}

	alice.Say("#ops", "!continue "+svcName)
	expectBot(t, alice, h.b.nick, "Finished deploy [svc@"+v2[:7]+"]: resuming ", long)
	d.WantFleet("v2")
	if n := botSaid(alice, h.a.nick, "deploying svc") + botSaid(alice, h.b.nick, "deploying svc "+v1[:7]+".."+v2[:7]+" (1 commit: "); n != 2 {
		t.Errorf("the deploy and its resumption were announced %d times, want 2", n)
	}
	if n := botSaid(alice, h.a.nick, "Finished deploy [svc@"+v2[:7]) + botSaid(alice, h.b.nick, "Finished deploy [svc@"+v2[:7]); n != 1 {
		t.Errorf("the end of the deploy was announced %d times", n)
	}
	// Nor twice in the shared SAL, though its database restarted while
	// A's bot wrote to it.
	count := map[string]int{}
	for _, e := range h.salEntries(t) {
		if e.Source == sal.SourceDeploy {
			count[e.Message]++
		}
	}
	if len(count) < 4 {
		t.Errorf("the SAL holds %d deploy entries: %v", len(count), count)
	}
	for msg, n := range count {
		if n != 1 {
			t.Errorf("the SAL holds %q %d times", msg, n)
		}
	}
}

// salEntries is the shared SAL, once both installations' spools are
// drained.
func (h *twoHosts) salEntries(t *testing.T) []sal.Entry {
	t.Helper()
	for _, dh := range []*deployHost{h.a, h.b} {
		p := filepath.Join(dh.dir, "sal.spool")
		for deadline := time.Now().Add(scale.D(20 * time.Second)); ; time.Sleep(50 * time.Millisecond) {
			fi, err := os.Stat(p)
			if err != nil || fi.Size() == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's SAL spool was not drained", dh.name)
			}
		}
	}
	store, err := sal.Open(h.url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list, err := store.List(context.Background(), sal.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return list
}
